/**
 * The cost of leaving resolved incidents out of a baseline read (analyzer/series.ts
 * excludedTasksSql): the same aggregate over a plain MergeTree of synthetic tasks, read plain,
 * with the spans written into the statement (as routewatch does), and with the same test over
 * array parameters (as it did first). Ratios to the plain read, in the same run. Not a test.
 *
 * Usage: npm run bench:exclusion -- [--rows 2000000] [--spans 100]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { aggregateCounts } from '../../analyzer/series.js';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { benchArgs } from '../cli-args.js';
import { describeMachine } from '../instrumentation/machine.js';

const USAGE = 'Usage: npm run bench:exclusion -- [--rows 2000000] [--spans 100]';
const { values } = benchArgs(
  {
    options: {
      rows: { type: 'string', default: '2000000' },
      spans: { type: 'string', default: '100' },
    },
  },
  USAGE,
);
const ROWS = Number(values.rows);
const SPANS = Number(values.spans);
for (const [name, value] of [
  ['--rows', ROWS],
  ['--spans', SPANS],
] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} takes a whole number of at least 1\n${USAGE}`);
    process.exit(2);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'routewatch-bench-exclusion-'));
const store = await EmbeddedStore.open(dir);
try {
  const t0 = Date.UTC(2026, 10, 1);
  const stepMs = 120;
  await store.exec(
    `CREATE TABLE t (cohort LowCardinality(String), primary_route LowCardinality(String),
       started_at DateTime64(9, 'UTC'), latency_ms Float64) ENGINE = MergeTree ORDER BY started_at`,
  );
  await store.exec(
    `INSERT INTO t SELECT concat('cohort-', toString(number % 40)), if(number % 3 = 0, 'large', 'small'),
       fromUnixTimestamp64Milli(toInt64(${t0} + number * ${stepMs}), 'UTC'), rand() % 1000
     FROM numbers(${ROWS})`,
  );
  const span = (ROWS * stepMs) / SPANS;
  const spans = Array.from({ length: SPANS }, (_, i) => ({
    cohort: `cohort-${i % 40}`,
    route: 'small',
    fromMs: t0 + i * span,
    toMs: t0 + i * span + span / 2,
  }));
  // The statement routewatch writes, taken from its own read: `{view}` stands for the table.
  let written = '';
  const capture = {
    ...store,
    query: async (sql: string) => {
      written = sql;
      return [];
    },
  } as unknown as EmbeddedStore;
  await aggregateCounts(capture, new Date(t0), new Date(t0 + 1), {
    callBudget: 10,
    byVersion: false,
    exclude: spans,
  }).catch(() => undefined);
  const inline = /AND NOT \(([\s\S]*)\)\) AS t/.exec(written)?.[1];
  if (!inline) throw new Error('the exclusion was not found in the statement routewatch writes');
  const base = (cond: string) =>
    `SELECT cohort, primary_route, count() AS c, quantileExact(0.95)(latency_ms) AS p
     FROM (SELECT * FROM t WHERE started_at >= {from:DateTime64(9, 'UTC')}
       AND started_at < {to:DateTime64(9, 'UTC')} ${cond})
     GROUP BY cohort, primary_route ORDER BY cohort, primary_route`;
  const variants: [string, string][] = [
    ['plain read', ''],
    ['spans in the statement (now)', `AND NOT (${inline})`],
    [
      'spans as array parameters (first)',
      `AND NOT arrayExists((k, f, tt) -> k = concat(cohort, '\\t', primary_route)
         AND toUnixTimestamp64Milli(started_at) >= toInt64(f)
         AND toUnixTimestamp64Milli(started_at) < toInt64(tt),
         {keys:Array(String)}, {froms:Array(String)}, {tos:Array(String)})`,
    ],
  ];
  const params = {
    from: '2026-01-01 00:00:00',
    to: '2027-01-01 00:00:00',
    keys: spans.map((s) => `${s.cohort}\t${s.route}`),
    froms: spans.map((s) => String(s.fromMs)),
    tos: spans.map((s) => String(s.toMs)),
  };
  console.log(describeMachine().join('\n'));
  console.log(`${ROWS} rows, ${SPANS} spans left out; median of 5 reads each\n`);
  console.log('| read | median ms | × plain | rows counted |');
  console.log('| --- | ---: | ---: | ---: |');
  let plain = 0;
  const counted = new Set<number>();
  for (const [name, cond] of variants) {
    const times: number[] = [];
    let total = 0;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const rows = await store.query(base(cond), params, z.object({ c: z.coerce.number() }));
      times.push(performance.now() - started);
      total = rows.reduce((n, r) => n + r.c, 0);
    }
    const median = times.sort((a, b) => a - b)[2]!;
    if (name === 'plain read') plain = median;
    else counted.add(total);
    console.log(`| ${name} | ${median.toFixed(0)} | ${(median / plain).toFixed(2)} | ${total} |`);
  }
  if (counted.size !== 1) throw new Error('the two ways of leaving spans out counted differently');
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
