import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { clusterStatements } from '../../storage/cluster-ddl.js';
import { clusterDdl } from '../../storage/migrations.js';
import { retentionTtls } from '../../storage/rollups.js';
import { openTempStore } from '../support/store.js';

// There is no ClickHouse cluster (nor server) on this machine: the cluster form of the migrations
// is generated for a named cluster, checked statement by statement, and parsed by the ClickHouse
// parser of the embedded engine (EXPLAIN AST), which accepts ON CLUSTER without running it.

const CLUSTER = 'routewatch_cluster';
const ddl = [
  ...clusterDdl(CLUSTER),
  ...retentionTtls({ rawDays: 30, rollupDays: 400 }).flatMap(({ table, ttl }) =>
    clusterStatements(`ALTER TABLE ${table} MODIFY TTL ${ttl}`, CLUSTER),
  ),
];
const tables = ddl.filter((s) => s.startsWith('CREATE TABLE'));
const nameOf = (statement: string) => /^CREATE TABLE IF NOT EXISTS (\w+)/.exec(statement)![1]!;
const localTables = tables.filter((s) => !/ENGINE = Distributed\(/.test(s)).map(nameOf);
const distributedTables = tables.filter((s) => /ENGINE = Distributed\(/.test(s));

let temp: Awaited<ReturnType<typeof openTempStore>>;
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp?.dispose();
});

describe(`the cluster DDL, generated for cluster ${CLUSTER}`, () => {
  it('covers every table, view and materialized view of a single-server store', async () => {
    const single = await temp.store.query(
      "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name NOT LIKE '.%'",
      {},
      z.object({ name: z.string(), engine: z.string() }),
    );
    for (const { name, engine } of single) {
      if (engine === 'View' || engine === 'MaterializedView') {
        const created = new RegExp(`VIEW (IF NOT EXISTS )?${name} ON CLUSTER ${CLUSTER}\\b`);
        expect(ddl.some((s) => created.test(s))).toBe(true);
      } else {
        expect(localTables).toContain(`${name}_local`);
        expect(distributedTables.map(nameOf)).toContain(name);
      }
    }
  });

  it('runs every DDL statement ON CLUSTER; only INSERT … SELECT runs once, through the Distributed tables', () => {
    for (const statement of ddl) {
      if (statement.startsWith('INSERT INTO')) continue;
      expect(statement, statement.slice(0, 80)).toMatch(new RegExp(`\\bON CLUSTER ${CLUSTER}\\b`));
    }
    const inserts = ddl.filter((s) => s.startsWith('INSERT INTO'));
    // 0005 and 0008 copy late outcomes, 0032 copies the stored spans and reports to task_events,
    // 0033 and 0034 rebuild the hourly and daily rollups.
    expect(inserts).toHaveLength(6);
    for (const insert of inserts) expect(insert).not.toMatch(/_local\b/);
  });

  it('adds a column to the Distributed table whenever it adds one to the local table', () => {
    const columnChanges = ddl.filter((s) =>
      /^ALTER TABLE \w+_local ON CLUSTER \w+ (ADD|DROP|MODIFY|RENAME) COLUMN\b/.test(s),
    );
    // 0010, 0021, 0031, 0033, 0035 and 0036 add columns to tables created earlier.
    expect(columnChanges.length).toBeGreaterThanOrEqual(9);
    for (const local of columnChanges) {
      const distributed = local.replace(/^ALTER TABLE (\w+)_local /, 'ALTER TABLE $1 ');
      expect(ddl, distributed.slice(0, 100)).toContain(distributed);
      expect(ddl.indexOf(distributed)).toBeGreaterThan(ddl.indexOf(local));
    }
    // Settings and TTLs belong to the local tables only: a Distributed table has neither.
    for (const statement of ddl.filter((s) =>
      /^ALTER TABLE \w+ ON CLUSTER \w+ MODIFY (TTL|SETTING)\b/.test(s),
    )) {
      expect(statement).toMatch(/^ALTER TABLE \w+_local /);
    }
  });

  it('makes every table Replicated, keyed in ZooKeeper/Keeper by shard and table, one replica each', () => {
    expect(localTables.length).toBeGreaterThan(0);
    for (const statement of tables.filter((s) => !/ENGINE = Distributed\(/.test(s))) {
      const name = nameOf(statement);
      expect(name).toMatch(/_local$/);
      expect(statement).toMatch(
        new RegExp(
          `ENGINE = Replicated(Replacing|Aggregating)?MergeTree\\('/clickhouse/tables/\\{shard\\}/\\{database\\}/${name}', '\\{replica\\}'`,
        ),
      );
    }
    expect(ddl.join('\n')).not.toMatch(/ENGINE = (Replacing|Aggregating)?MergeTree\b/);
  });

  it('points every Distributed table at its own local table, on the same cluster, sharded by a hash', () => {
    expect(distributedTables).toHaveLength(localTables.length);
    for (const statement of distributedTables) {
      const name = nameOf(statement);
      expect(statement).toContain(`AS ${name}_local\n`);
      const engine = /ENGINE = Distributed\((\w+), currentDatabase\(\), (\w+), (.+)\)$/.exec(
        statement,
      );
      expect(engine?.[1]).toBe(CLUSTER);
      expect(engine?.[2]).toBe(`${name}_local`);
      expect(localTables).toContain(engine?.[2]);
      expect(engine?.[3]).toMatch(/^(cityHash64\(.+\)|0)$/);
    }
    // A task's spans, reports, events and snapshot rows on one shard, copies included.
    for (const table of ['spans', 'late_outcomes', 'task_events', 'task_snapshot']) {
      expect(distributedTables.find((s) => nameOf(s) === table)).toMatch(
        /, cityHash64\(task_id\)\)$/,
      );
    }
    expect(distributedTables.find((s) => nameOf(s) === 'cohort_route_hourly')).toContain(
      'cityHash64(hour, cohort, primary_route, policy_version, service_name)',
    );
    expect(distributedTables.find((s) => nameOf(s) === 'cohort_route_daily')).toContain(
      'cityHash64(day, cohort, primary_route, policy_version, service_name)',
    );
  });

  it('has the materialized views read and write local tables, and the views read the Distributed ones', () => {
    const materialized = ddl.filter((s) => s.startsWith('CREATE MATERIALIZED VIEW'));
    expect(materialized).toHaveLength(2);
    for (const statement of materialized) {
      const target = /\bTO (\w+) AS/.exec(statement)?.[1];
      const source = /\bFROM (\w+)/.exec(statement)?.[1];
      expect(localTables).toContain(target);
      expect(localTables).toContain(source);
    }
    for (const view of ddl.filter((s) => s.startsWith('CREATE OR REPLACE VIEW'))) {
      expect(view).not.toMatch(/\b\w+_local\b/);
    }
  });

  it('alters the local tables, for retention too', () => {
    // Column changes go to the Distributed table as well (the test above).
    const columnChange = /^ALTER TABLE \w+ ON CLUSTER \w+ (ADD|DROP|MODIFY|RENAME) COLUMN\b/;
    for (const alter of ddl.filter((s) => s.startsWith('ALTER TABLE') && !columnChange.test(s))) {
      expect(localTables).toContain(/^ALTER TABLE (\w+)/.exec(alter)?.[1]);
    }
    const alters = ddl.filter((s) => s.startsWith('ALTER TABLE') && s.includes('MODIFY TTL'));
    expect(alters.map((s) => /^ALTER TABLE (\w+)/.exec(s)?.[1]).sort()).toEqual([
      'cohort_route_daily_local',
      'cohort_route_hourly_local',
      'spans_local',
      'task_events_local',
      'task_snapshot_local',
    ]);
  });

  it('parses, every statement, with the ClickHouse parser', async () => {
    // The parser is really checking: a malformed ON CLUSTER statement is refused.
    await expect(
      temp.store.query(`EXPLAIN AST CREATE TABLE x ON CLUSTER (a Int8)`, {}, z.unknown()),
    ).rejects.toThrow(/Syntax error/);
    for (const statement of ddl) {
      const ast = await temp.store.query(
        `EXPLAIN AST ${statement}`,
        {},
        z.object({ explain: z.string() }),
      );
      expect(ast.length, statement.slice(0, 80)).toBeGreaterThan(0);
    }
  });
});
