import { describe, expect, it } from 'vitest';
import { clusterStatements, localTableName } from '../../storage/cluster-ddl.js';
import { MigrationError } from '../../storage/errors.js';

describe('clusterStatements', () => {
  it('turns a table into a Replicated local table and a Distributed table over it, sharded by its sorting key', () => {
    const [local, distributed] = clusterStatements(
      `CREATE TABLE IF NOT EXISTS things
(
    id String,
    at DateTime64(9, 'UTC'),
    version UInt64,
    INDEX at_minmax at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(at)
ORDER BY (toStartOfHour(at), id)
SETTINGS index_granularity = 1024`,
      'main',
    );
    expect(local).toMatch(/^CREATE TABLE IF NOT EXISTS things_local ON CLUSTER main\n\(/);
    expect(local).toContain(
      "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/things_local', '{replica}', version)",
    );
    // Columns, index, partitioning, key and settings are kept.
    expect(local).toContain('INDEX at_minmax at TYPE minmax GRANULARITY 1');
    expect(local).toMatch(
      /PARTITION BY toYYYYMM\(at\)\nORDER BY \(toStartOfHour\(at\), id\)\nSETTINGS index_granularity = 1024$/,
    );
    expect(distributed).toBe(
      'CREATE TABLE IF NOT EXISTS things ON CLUSTER main AS things_local\n' +
        'ENGINE = Distributed(main, currentDatabase(), things_local, cityHash64(toStartOfHour(at), id))',
    );
  });

  it('shards a table with a task id by the task id', () => {
    const [, distributed] = clusterStatements(
      'CREATE TABLE IF NOT EXISTS events\n(\n    task_id String,\n    n UInt64\n)\nENGINE = ReplacingMergeTree\nORDER BY (task_id, n)',
      'main',
    );
    expect(distributed).toMatch(
      /Distributed\(main, currentDatabase\(\), events_local, cityHash64\(task_id\)\)$/,
    );
  });

  it('handles an engine without arguments, a single-column key and a table keyed by nothing', () => {
    const [plain, plainDistributed] = clusterStatements(
      'CREATE TABLE IF NOT EXISTS s (version UInt32) ENGINE = ReplacingMergeTree ORDER BY version',
      'c1',
    );
    expect(plain).toContain(
      "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/s_local', '{replica}') ORDER BY version",
    );
    expect(plainDistributed).toMatch(
      /Distributed\(c1, currentDatabase\(\), s_local, cityHash64\(version\)\)$/,
    );
    const [, single] = clusterStatements(
      'CREATE TABLE IF NOT EXISTS one (x UInt8) ENGINE = ReplacingMergeTree(x) ORDER BY tuple()',
      'c1',
    );
    // One row of state: every copy on one shard.
    expect(single).toMatch(/Distributed\(c1, currentDatabase\(\), one_local, 0\)$/);
  });

  it('points a materialized view at the local tables, so each node folds its own inserts', () => {
    expect(
      clusterStatements(
        'CREATE MATERIALIZED VIEW IF NOT EXISTS mv TO target AS\nSELECT id, count() AS n\nFROM source\nGROUP BY id',
        'main',
      ),
    ).toEqual([
      'CREATE MATERIALIZED VIEW IF NOT EXISTS mv ON CLUSTER main TO target_local AS\nSELECT id, count() AS n\nFROM source_local\nGROUP BY id',
    ]);
  });

  it('creates views ON CLUSTER over the Distributed tables, and drops and alters ON CLUSTER', () => {
    expect(clusterStatements('CREATE OR REPLACE VIEW v AS SELECT * FROM spans', 'main')).toEqual([
      'CREATE OR REPLACE VIEW v ON CLUSTER main AS SELECT * FROM spans',
    ]);
    expect(clusterStatements('DROP TABLE IF EXISTS old', 'main')).toEqual([
      'DROP TABLE IF EXISTS old ON CLUSTER main SYNC',
      'DROP TABLE IF EXISTS old_local ON CLUSTER main SYNC',
    ]);
    expect(
      clusterStatements(
        'ALTER TABLE spans MODIFY TTL toDateTime(timestamp) + toIntervalDay(30)',
        'main',
      ),
    ).toEqual([
      'ALTER TABLE spans_local ON CLUSTER main MODIFY TTL toDateTime(timestamp) + toIntervalDay(30)',
    ]);
  });

  it('runs an INSERT … SELECT once, through the Distributed tables', () => {
    const insert = 'INSERT INTO b (x) SELECT x FROM a';
    expect(clusterStatements(insert, 'main')).toEqual([insert]);
  });

  it('refuses a statement it has no cluster form for, and a cluster name that is not an identifier', () => {
    expect(() => clusterStatements('OPTIMIZE TABLE spans FINAL', 'main')).toThrow(MigrationError);
    expect(() =>
      clusterStatements('CREATE TABLE IF NOT EXISTS m (x UInt8) ENGINE = Memory', 'main'),
    ).toThrow(/no cluster form/);
    expect(() => clusterStatements('DROP TABLE IF EXISTS x', "main' SYNC; DROP")).toThrow(
      /not an identifier/,
    );
    expect(localTableName('spans')).toBe('spans_local');
  });
});
