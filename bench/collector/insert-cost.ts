/**
 * What the embedded engine spends to insert the collector's rows, by body format and by table
 * definition, in one run: the rows the pipeline makes of LLM spans, 10 000 per insert, as
 * JSONEachRow (the writer's format before issue 13), JSONCompactEachRow and TSV; into `spans` as
 * the migrations define it, and into copies of it with other codecs or another ordering key.
 * Merges are stopped on every table while measuring, so each figure is the insert alone; the tables
 * are emptied between rounds. CPU is this process's (chDB runs the engine in-process).
 *
 * Then the cost by insert size: the same rows into `spans` in the writer's format (SPAN_INSERT),
 * 500 to 10 000 rows per insert, merges stopped as well — what an insert costs whatever its size.
 *
 * Usage: node dist/bench/collector/insert-cost.js [--rows 50000] [--rounds 3]
 *        [--sizes 500,1000,2000,5000,10000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { createIngest } from '../../collector/ingest.js';
import { SPAN_COLUMNS, SPAN_INSERT, preparedLines } from '../../collector/span-lines.js';
import { configWith } from '../../server/config.js';
import { ingestSettings } from '../../server/start.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { migrate } from '../../storage/migrations.js';
import type { InsertOptions } from '../../storage/store.js';
import { describeMachine, loadAverage } from '../instrumentation/machine.js';
import { median } from '../instrumentation/stats.js';
import { encode, makeRequests } from './workload.js';
import { benchArgs } from '../cli-args.js';

const USAGE = `Usage: node dist/bench/collector/insert-cost.js [--rows 50000] [--rounds 3]
       [--sizes 500,1000,2000,5000,10000]`;
const { values } = benchArgs(
  {
    options: {
      rows: { type: 'string', default: '50000' },
      rounds: { type: 'string', default: '3' },
      /** Rows per insert for the cost by insert size; empty to skip it. */
      sizes: { type: 'string', default: '500,1000,2000,5000,10000' },
    },
  },
  USAGE,
);
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const BATCH = 10_000;

type Row = Record<string, unknown>;

/** A TSV field: ClickHouse's TabSeparated escaping. */
const tsvEscape = (text: string) =>
  text.replace(/[\\\t\n\r\b\f\0]/g, (c) =>
    c === '\\'
      ? '\\\\'
      : c === '\t'
        ? '\\t'
        : c === '\n'
          ? '\\n'
          : c === '\r'
            ? '\\r'
            : c === '\b'
              ? '\\b'
              : c === '\f'
                ? '\\f'
                : '\\0',
  );
/** A map as a TSV field: `{'key':'value',…}`, quotes and backslashes escaped inside. */
const quoted = (text: string) => `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
function tsvField(value: unknown): string {
  if (value === null) return '\\N';
  if (typeof value === 'object') {
    return tsvEscape(
      `{${Object.entries(value as Record<string, string>)
        .map(([k, v]) => `${quoted(k)}:${quoted(v)}`)
        .join(',')}}`,
    );
  }
  return tsvEscape(String(value));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-insert-'));
  const store = await EmbeddedStore.open(dir);
  try {
    await migrate(store);
    console.log('routewatch bench: the engine insert cost of span rows, by format and table');
    for (const line of describeMachine().slice(0, 2)) console.log(line);

    const ingest = createIngest(ingestSettings(configWith({})));
    const lines: string[] = [];
    for (const spans of makeRequests('llm', ROWS))
      lines.push(...preparedLines(ingest(encode(spans, 'protobuf'), 'protobuf', Date.now())));
    // The writer's lines are JSONCompactEachRow arrays in SPAN_COLUMNS order.
    const columns: string[] = [...SPAN_COLUMNS];
    const rows = lines.map((line) => {
      const values = JSON.parse(line) as unknown[];
      return Object.fromEntries(columns.map((c, i) => [c, values[i]])) as Row;
    });

    const [created] = await store.query(
      'SHOW CREATE TABLE spans',
      {},
      z.object({ statement: z.string() }),
    );
    const spansDdl = created!.statement;
    const tables: Record<string, string> = {
      spans_current: spansDdl,
      // Default codec (LZ4) everywhere: no ZSTD, no Delta.
      spans_lz4: spansDdl.replace(/ CODEC\([^()]*(\([^()]*\)[^()]*)*\)/g, ''),
      // ZSTD kept on the id and text columns, LZ4 on the two maps.
      spans_maps_lz4: spansDdl.replace(
        /(`(attributes|resource)` Map\(LowCardinality\(String\), String\)) CODEC\(ZSTD\(1\)\)/g,
        '$1',
      ),
      // Sorted by span key alone: the sort of an insert block is cheaper, reads by cohort are not.
      spans_order_ids: spansDdl.replace(
        /ORDER BY \([^)]*\([^)]*\)[^)]*\)/,
        'ORDER BY (trace_id, span_id)',
      ),
    };
    for (const [name, ddl] of Object.entries(tables)) {
      await store.exec(`DROP TABLE IF EXISTS ${name}`);
      await store.exec(ddl.replace(/CREATE TABLE [\w.]*spans\b/, `CREATE TABLE ${name}`));
      await store.exec(`SYSTEM STOP MERGES ${name}`);
    }

    const batches = (format: string): { bodies: Buffer[]; options: InsertOptions } => {
      const bodies: Buffer[] = [];
      for (let i = 0; i < rows.length; i += BATCH) {
        const slice = rows.slice(i, i + BATCH);
        const text =
          format === 'JSONEachRow'
            ? slice.map((r) => JSON.stringify(r)).join('\n')
            : format === 'JSONCompactEachRow'
              ? slice.map((r) => JSON.stringify(columns.map((c) => r[c]))).join('\n')
              : slice.map((r) => columns.map((c) => tsvField(r[c])).join('\t')).join('\n');
        bodies.push(Buffer.from(text + '\n'));
      }
      return format === 'JSONEachRow'
        ? { bodies, options: {} }
        : { bodies, options: { format: format as 'JSONCompactEachRow' | 'TSV', columns } };
    };
    const formats = {
      JSONEachRow: batches('JSONEachRow'),
      JSONCompactEachRow: batches('JSONCompactEachRow'),
      TSV: batches('TSV'),
    };
    const variants: { name: string; table: string; format: keyof typeof formats }[] = [
      { name: 'spans · JSONEachRow', table: 'spans_current', format: 'JSONEachRow' },
      { name: 'spans · JSONCompactEachRow', table: 'spans_current', format: 'JSONCompactEachRow' },
      { name: 'spans · TSV', table: 'spans_current', format: 'TSV' },
      { name: 'LZ4 everywhere · JSONEachRow', table: 'spans_lz4', format: 'JSONEachRow' },
      { name: 'maps LZ4 · JSONEachRow', table: 'spans_maps_lz4', format: 'JSONEachRow' },
      { name: 'ORDER BY ids · JSONEachRow', table: 'spans_order_ids', format: 'JSONEachRow' },
    ];
    console.log(
      `${rows.length} rows of ${columns.length} columns, ${BATCH} per insert, ${ROUNDS} rounds · ` +
        `body bytes per row: ${Object.entries(formats)
          .map(
            ([f, b]) =>
              `${f} ${Math.round(b.bodies.reduce((n, x) => n + x.length, 0) / rows.length)}`,
          )
          .join(', ')} · load average before: ${loadAverage()}\n`,
    );
    const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const wall = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    for (let round = 0; round < ROUNDS + 1; round++) {
      for (const table of Object.keys(tables)) await store.exec(`TRUNCATE TABLE ${table}`);
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const variant of order) {
        const { bodies, options } = formats[variant.format];
        const before = process.cpuUsage();
        const t0 = performance.now();
        for (const body of bodies) await store.insertJsonEachRow(variant.table, body, options);
        const used = process.cpuUsage(before);
        // Round 0 warms up the engine and the tables; it is not counted.
        if (round === 0) continue;
        cpu.get(variant.name)!.push((used.user + used.system) / 1000);
        wall.get(variant.name)!.push(performance.now() - t0);
      }
    }
    for (const table of Object.keys(tables)) {
      const [count] = await store.query(
        `SELECT count() AS n FROM ${table}`,
        {},
        z.object({ n: z.coerce.number() }),
      );
      const expected = rows.length * variants.filter((v) => v.table === table).length;
      if (count!.n !== expected)
        throw new Error(`${table} holds ${count!.n} rows, not ${expected}`);
    }
    const base = median(cpu.get(variants[0]!.name)!);
    console.log('variant                          CPU ms/1k rows   × spans·JSONEachRow   rows/s');
    for (const variant of variants) {
      const c = median(cpu.get(variant.name)!);
      const w = median(wall.get(variant.name)!);
      console.log(
        `${variant.name.padEnd(32)} ${(c / (rows.length / 1000)).toFixed(1).padStart(14)}   ${(c / base).toFixed(2).padStart(19)}   ${Math.round(
          rows.length / (w / 1000),
        )
          .toLocaleString('en')
          .padStart(7)}`,
      );
    }
    await costBySize(store, lines);
    console.log(`\nload average after: ${loadAverage()}`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The writer's lines into `spans` (merges stopped), SIZES rows per insert, every size once per
 * round in rotating order after a warm-up round; CPU per 1 000 rows and per insert.
 */
async function costBySize(store: EmbeddedStore, lines: readonly string[]): Promise<void> {
  const sizes = values.sizes
    .split(',')
    .filter((size) => size.trim() !== '')
    .map(Number);
  if (sizes.length === 0) return;
  await store.exec('SYSTEM STOP MERGES spans');
  const bodies = new Map<number, Buffer[]>();
  for (const size of sizes) {
    const list: Buffer[] = [];
    for (let i = 0; i < lines.length; i += size)
      list.push(Buffer.from(lines.slice(i, i + size).join('\n') + '\n'));
    bodies.set(size, list);
  }
  const cpu = new Map<number, number[]>(sizes.map((size) => [size, []]));
  for (let round = 0; round < ROUNDS + 1; round++) {
    const order = sizes.map((_, i) => sizes[(i + round) % sizes.length]!);
    for (const size of order) {
      await store.exec('TRUNCATE TABLE spans');
      const before = process.cpuUsage();
      for (const body of bodies.get(size)!)
        await store.insertJsonEachRow('spans', body, SPAN_INSERT);
      const used = process.cpuUsage(before);
      const [count] = await store.query(
        'SELECT count() AS n FROM spans',
        {},
        z.object({ n: z.coerce.number() }),
      );
      if (count!.n !== lines.length)
        throw new Error(`spans holds ${count!.n} rows, not ${lines.length}`);
      if (round > 0) cpu.get(size)!.push((used.user + used.system) / 1000);
    }
  }
  await store.exec('SYSTEM START MERGES spans');
  console.log(
    `\nby insert size: ${lines.length} rows into spans (SPAN_INSERT, merges stopped), medians of ${ROUNDS}`,
  );
  console.log('rows per insert   CPU ms/1k rows   CPU ms per insert');
  for (const size of sizes) {
    const c = median(cpu.get(size)!);
    const inserts = Math.ceil(lines.length / size);
    console.log(
      `${String(size).padStart(15)}   ${(c / (lines.length / 1000)).toFixed(1).padStart(14)}   ${(c / inserts).toFixed(1).padStart(17)}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
