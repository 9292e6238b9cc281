import { spawn, spawnSync } from 'node:child_process';
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WriteAheadLog, encodeRecord } from '../../collector/wal.js';
import { REPO_ROOT } from '../support/child-process.js';
import { CLI, runCli, startInstance } from '../support/cli.js';
import type { StartedInstance } from '../support/cli.js';
import { hexId, otlpBody } from '../support/otlp.js';
import { nsAt } from '../support/time.js';

// `routewatch sql` as a user runs it: the built CLI against `routewatch start` in another
// process, on the embedded store, with small limits so that each can be crossed cheaply.
const dataDir = mkdtempSync(join(tmpdir(), 'routewatch-sql-'));
const TOKEN = 'sql-test-token-0123456789';
const LIMITS = {
  ROUTEWATCH_SQL_MAX_ROWS: '100',
  ROUTEWATCH_SQL_MAX_TIME: '500ms',
  ROUTEWATCH_SQL_MAX_MEMORY_BYTES: String(32 * 1024 * 1024),
  ROUTEWATCH_SQL_MAX_RESULT_BYTES: String(1024 * 1024),
};
let instance: StartedInstance;
const clientEnv = () => ({ ROUTEWATCH_URL: instance.url, ROUTEWATCH_TOKEN: TOKEN });
const sql = (args: string[]) => runCli(['sql', ...args], { env: clientEnv() });
/** POST /api/v1/sql on the same instance, for the cases that need no second process. */
async function api(
  query: string,
): Promise<{ status: number; body: { error: { code: string; message: string } } }> {
  const response = await fetch(`${instance.url}/api/v1/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ sql: query }),
  });
  return { status: response.status, body: (await response.json()) as never };
}

beforeAll(async () => {
  instance = await startInstance({
    ROUTEWATCH_DATA_DIR: dataDir,
    ROUTEWATCH_TOKEN: TOKEN,
    ...LIMITS,
  });
  const spans = ['faq', 'faq', 'extraction'].map((cohort, i) => ({
    traceId: hexId(16),
    name: `routewatch.task ${cohort}`,
    kind: 1,
    start: nsAt(i * 1000),
    end: nsAt(i * 1000 + 200),
    attributes: { 'routewatch.cohort': cohort, 'routewatch.outcome': 'success' },
  }));
  const ingest = await fetch(`${instance.url}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(otlpBody(spans)),
  });
  expect(ingest.status).toBe(200);
});

afterAll(async () => {
  await instance?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('routewatch sql on a running instance', () => {
  it('prints the rows of a query on the views as a table', async () => {
    const run = await sql([
      'SELECT cohort, count() AS tasks FROM v_tasks GROUP BY cohort ORDER BY cohort',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^cohort\s+tasks\n─+\s+─+\nextraction\s+1\nfaq\s+2\n\n2 rows · /);
  });

  it('prints JSON objects and CSV with a header row', async () => {
    const query =
      'SELECT cohort, count() AS tasks, \'a,"b"\' AS note FROM v_tasks GROUP BY cohort ORDER BY cohort';
    const json = await sql(['--format', 'json', query]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { cohort: 'extraction', tasks: '1', note: 'a,"b"' },
      { cohort: 'faq', tasks: '2', note: 'a,"b"' },
    ]);
    const csv = await sql(['--format', 'csv', query]);
    expect(csv.code).toBe(0);
    expect(csv.stdout).toBe('cohort,tasks,note\r\nextraction,1,"a,""b"""\r\nfaq,2,"a,""b"""\r\n');
  });

  it('reads the query from standard input with -', async () => {
    const run = spawnSync(process.execPath, [CLI, 'sql', '-'], {
      input: 'SELECT 40 + 2\n  AS answer',
      env: { PATH: process.env['PATH'] ?? '', ...clientEnv() },
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/answer\n─+\n\s*42\n/);
  });

  it('takes a query that opens with a -- comment, as docs/sql-views.md writes them, beside its options', async () => {
    // The example verbatim, comment line, line breaks and trailing semicolon included; a light
    // one, so that the instance's 0.5 s time limit holds on a busy machine.
    const example = readFileSync(join(REPO_ROOT, 'docs/sql-views.md'), 'utf8')
      .match(/^```sql\n([\s\S]*?)^```$/gm)!
      .map((block) => block.replace(/^```sql\n|```$/g, ''))
      .find((query) => query.startsWith('-- The views and the checksums'))!;
    expect(example).toMatch(/^-- .*\nSELECT [\s\S]*;\n$/);
    const views = readdirSync(join(REPO_ROOT, 'sql/views'))
      .filter((file) => file.endsWith('.sql'))
      .map((file) => file.replace(/\.sql$/, ''))
      .sort();
    for (const args of [
      ['--format', 'json', example],
      [example, '--format', 'json'],
      ['--format=json', '--url', instance.url, example],
      ['--format', 'json', '--', example],
    ]) {
      const run = await sql(args);
      expect([args.length, run.stderr, run.code]).toEqual([args.length, '', 0]);
      const rows = JSON.parse(run.stdout) as { name: string }[];
      expect(rows.map((row) => row.name)).toEqual(views);
    }
    // A comment with no space after the dashes, ended by the line break.
    const tight = await sql(['--format', 'json', '--tasks\nSELECT count() AS n FROM v_tasks']);
    expect([tight.stderr, JSON.parse(tight.stdout)]).toEqual(['', [{ n: '3' }]]);
  });

  it('still refuses an unknown option, and a second query', async () => {
    const unknown = await sql(['--fromat', 'json', 'SELECT 1']);
    expect([unknown.code, unknown.stderr]).toEqual([
      2,
      expect.stringMatching(/Unknown option '--fromat'/),
    ]);
    const two = await sql(['-- one\nSELECT 1', '-- two\nSELECT 2']);
    expect([two.code, two.stderr]).toEqual([
      2,
      expect.stringMatching(/takes 1 query argument\(s\), got 2/),
    ]);
  });

  it('has the engine refuse a write (readonly), which changes nothing', async () => {
    const run = await sql(['DROP TABLE spans']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /answered 403: SQL here is read-only: DROP statements are not run here: only SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN/,
    );
    // What gets past the statement check, the engine's readonly refuses.
    const settings = await api('SELECT 1 SETTINGS readonly = 0');
    expect(settings.status).toBe(403);
    expect(settings.body.error.message).toMatch(
      /^SQL here is read-only: ClickHouse refused the statement \(setting readonly = 1\)\. Code: 164\..*readonly mode/,
    );
    for (const statement of [
      "INSERT INTO spans (span_id) VALUES ('x')",
      "ALTER TABLE spans DELETE WHERE cohort = 'faq'",
      'CREATE TABLE sneaky (x UInt8) ENGINE = Memory',
      'SET readonly = 0',
      // Table functions reach files and the network: readonly = 1 refuses them too.
      "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
      "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    ]) {
      const answer = await api(statement);
      expect([statement, answer.status]).toEqual([statement, 403]);
      expect(answer.body.error.code).toBe('PERMISSION_DENIED');
    }
    const count = await sql(['--format', 'json', 'SELECT count() AS n FROM v_tasks']);
    expect(JSON.parse(count.stdout)).toEqual([{ n: '3' }]);
  });

  it('refuses what readonly lets through on the embedded engine: writing a file, reading one', async () => {
    // clickhouse-local writes INTO OUTFILE itself and has the scalar file() read any path: as the
    // routewatch process, a file write (its own code, next start) and every secret of its
    // environment. However the clause or the call is spelled, it is refused before it runs.
    const scratch = mkdtempSync(join(tmpdir(), 'routewatch-sql-outfile-'));
    const target = join(scratch, 'written');
    try {
      const refused = [
        [
          `SELECT 'x' INTO OUTFILE '${target}' TRUNCATE FORMAT TSVRaw`,
          /INTO OUTFILE would write a file/,
        ],
        [`select 1 into/* a comment */outfile '${target}'`, /INTO OUTFILE would write a file/],
        [`SHOW TABLES INTO OUTFILE '${target}'`, /INTO OUTFILE would write a file/],
        [`(SELECT 1) INTO OUTFILE '${target}' APPEND`, /INTO OUTFILE would write a file/],
        [`EXPLAIN SELECT 1 INTO OUTFILE '${target}'`, /INTO OUTFILE would write a file/],
        [
          `SELECT 1 AS \`a\nSelectQuery\` INTO OUTFILE '${target}'`,
          /INTO OUTFILE would write a file/,
        ],
        ["SELECT file('/proc/self/environ')", /file\(\) reaches files/],
        ["SELECT `file`('/etc/hostname') AS h", /file\(\) reaches files/],
        ['SELECT "file" (\'/etc/hostname\')', /file\(\) reaches files/],
        ["WITH file('/etc/hostname') AS f SELECT length(f)", /file\(\) reaches files/],
        ["DESC (SELECT file('/etc/hostname'))", /file\(\) reaches files/],
        [
          "SELECT * FROM icebergS3Cluster('c', 'http://127.0.0.1:9/')",
          /icebergS3Cluster\(\) reaches/,
        ],
        [
          `BACKUP TABLE spans TO File('${target}')`,
          /^SQL here is read-only: BACKUP statements are not run here: only SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN/,
        ],
      ] as const;
      for (const [statement, message] of refused) {
        const answer = await api(statement);
        expect([statement, answer.status, answer.body.error.code]).toEqual([
          statement,
          403,
          'PERMISSION_DENIED',
        ]);
        expect(answer.body.error.message, statement).toMatch(message);
      }
      // A second statement is not run either, on the engine that would run it.
      const several = await api(`SELECT 1; SELECT 2 INTO OUTFILE '${target}'`);
      expect([several.status, several.body.error.message]).toEqual([
        400,
        'the query holds several statements: send one statement at a time',
      ]);
      expect(readdirSync(scratch)).toEqual([]);
      // The same words in a string, and the reads the console is for, still run.
      const run = await sql([
        '--format',
        'json',
        "SELECT 'INTO OUTFILE' AS words, 'file(x)' AS call, count() AS n FROM v_tasks",
      ]);
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual([{ words: 'INTO OUTFILE', call: 'file(x)', n: '3' }]);
      for (const statement of [
        'SHOW TABLES',
        'DESCRIBE v_tasks',
        'EXISTS v_tasks',
        'EXPLAIN SELECT 1',
      ]) {
        const answer = await api(statement);
        expect([statement, answer.status]).toEqual([statement, 200]);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("answers a syntax error with the engine's message for the query sent", async () => {
    const answer = await api('SELECT cohort FROM v_tasks WHERE (');
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toMatch(
      /^ClickHouse refused the query: Code: 62\. DB::Exception: Syntax error: failed at position \d+ .*Unmatched parentheses.*\(SYNTAX_ERROR\)$/,
    );
    expect(answer.body.error.message).not.toMatch(/formatQuerySingleLine/);
  });

  it('refuses a query that tries to lift a limit with its own SETTINGS', async () => {
    const run = await sql(['SELECT number FROM numbers(1000) SETTINGS max_result_rows = 0']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /read-only.*Cannot modify 'max_result_rows' setting in readonly mode/,
    );
  });

  it('answers a result over the row limit with an error naming the limit and its setting', async () => {
    expect((await sql(['SELECT number FROM numbers(100)'])).code).toBe(0);
    const run = await sql(['SELECT number FROM numbers(101)']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /answered 400: the result has more than 100 rows, the limit ROUTEWATCH_SQL_MAX_ROWS \(ClickHouse setting max_result_rows\): add a LIMIT/,
    );
  });

  it('answers a query over the time limit with an error naming the limit and its setting', async () => {
    const run = await sql(['SELECT sleep(3)']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /answered 400: the query ran longer than 0\.5 s, the limit ROUTEWATCH_SQL_MAX_TIME \(ClickHouse setting max_execution_time\)/,
    );
  });

  it('answers an answer over the size limit with an error naming the limit, however few its rows', async () => {
    // One value in one block: the engine's max_result_bytes counts from the second block on.
    const one = await api("SELECT repeat('a', 900000) || repeat('b', 900000) AS x");
    expect([one.status, one.body.error.code]).toEqual([400, 'RESOURCE_EXHAUSTED']);
    expect(one.body.error.message).toMatch(
      /^the answer is larger than 1 MiB, the limit ROUTEWATCH_SQL_MAX_RESULT_BYTES \(ClickHouse setting max_result_bytes\): select fewer/,
    );
    const many = await api("SELECT repeat('a', 20000) AS x FROM numbers(90)");
    expect(many.status).toBe(400);
    expect(many.body.error.message).toMatch(/ROUTEWATCH_SQL_MAX_RESULT_BYTES/);
    expect((await api("SELECT repeat('a', 1000) AS x FROM numbers(90)")).status).toBe(200);
  });

  it('answers a query over the memory limit with an error naming the limit and its setting', async () => {
    const run = await sql(['SELECT groupArray(number) FROM numbers(10000000)']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /answered 400: the query needed more than 32 MiB of memory, the limit ROUTEWATCH_SQL_MAX_MEMORY_BYTES \(ClickHouse setting max_memory_usage\)/,
    );
  });

  it("answers the user's SQL errors with the engine's message, several statements and a FORMAT clause with what to do", async () => {
    const typo = await sql(['SELECT cohort FROM v_taskz']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/answered 400: ClickHouse refused the query: Code: 60\..*v_taskz/);
    const several = await api('SELECT 1; SELECT 2');
    expect([several.status, several.body.error.message]).toEqual([
      400,
      'the query holds several statements: send one statement at a time',
    ]);
    const format = await api('SELECT 1 FORMAT CSV');
    expect(format.status).toBe(400);
    expect(format.body.error.message).toMatch(/leave out the FORMAT clause/);
  });

  it('needs the token like every API route', async () => {
    const run = await runCli(['sql', 'SELECT 1'], { env: { ROUTEWATCH_URL: instance.url } });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/answered 401: .*<ROUTEWATCH_TOKEN>\. Set ROUTEWATCH_TOKEN/);
  });

  it('says to ask the running instance when --data-dir names the directory it holds', async () => {
    const run = await runCli(['sql', '--data-dir', dataDir, 'SELECT 1']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^routewatch: .* is held by a running routewatch \(process \d+\).*routewatch sql --url/,
    );
    // Review audit-B: the engine's own "Code: 76 … Cannot lock file" line came first.
    expect(run.stderr).not.toMatch(/Cannot lock file|DB::Exception/);
    // The same through a symlink to the directory (diff-review-10 #5).
    const link = join(mkdtempSync(join(tmpdir(), 'routewatch-sql-link-')), 'data');
    symlinkSync(dataDir, link);
    const viaLink = await runCli(['sql', '--data-dir', link, 'SELECT 1']);
    expect(viaLink.code).toBe(1);
    expect(viaLink.stderr).toMatch(/is held by a running routewatch \(process \d+\)/);
    expect(viaLink.stderr).not.toMatch(/Cannot lock file|DB::Exception/);
    rmSync(dirname(link), { recursive: true, force: true });
  });

  it.each([
    [['--format', 'xml', 'SELECT 1'], /--format must be one of table, json, csv/],
    [[], /takes 1 query argument\(s\), got 0/],
    [
      ['--url', 'http://127.0.0.1:9', '--data-dir', '/tmp', 'SELECT 1'],
      /either --url or --data-dir/,
    ],
    [['--data-dir', '/nonexistent/routewatch', 'SELECT 1'], /holds no routewatch data/],
  ])('exits 2 for the usage error in %j', async (args, message) => {
    const run = await runCli(['sql', ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});

describe('routewatch sql --data-dir on a stopped instance', () => {
  it('opens the data directory itself once nothing holds it, with the limits of its environment', async () => {
    expect(await instance.stop()).toBe(0);
    const run = await runCli(
      ['sql', '--data-dir', dataDir, '--format', 'json', 'SELECT count() AS n FROM v_tasks'],
      { env: LIMITS },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([{ n: '3' }]);
    const write = await runCli(['sql', '--data-dir', dataDir, 'DROP TABLE spans']);
    expect(write.code).toBe(1);
    expect(write.stderr).toMatch(/read-only/);
    const limit = await runCli(['sql', '--data-dir', dataDir, 'SELECT number FROM numbers(101)'], {
      env: LIMITS,
    });
    expect(limit.stderr).toMatch(/more than 100 rows, the limit ROUTEWATCH_SQL_MAX_ROWS/);
  });

  it('warns that the answer leaves out what the write-ahead log still holds unstored', async () => {
    // A routewatch killed before its drainer caught up leaves acknowledged batches in its log:
    // written here as its appends would be (review newcomer #1: 52 tasks shown, 60 stored later).
    const wal = await WriteAheadLog.open({ dir: join(dataDir, 'wal'), maxBytes: 1 << 20 });
    const keys = ['k0', 'k1'];
    await wal.append([
      encodeRecord({
        format: 'JSONEachRow',
        writtenAtMs: Date.now(),
        keys,
        lines: keys.map((key) => JSON.stringify({ key })),
      }),
    ]);
    await wal.close();
    try {
      const run = await runCli(['sql', '--data-dir', dataDir, 'SELECT count() AS n FROM v_tasks']);
      expect(run.code).toBe(0);
      expect(run.stderr).toMatch(
        /^warning: the write-ahead log \(.*wal\) still holds 2 acknowledged spans in 1 batch that the store does not have yet .*Start routewatch on this directory once/,
      );
    } finally {
      rmSync(join(dataDir, 'wal'), { recursive: true, force: true });
    }
  });

  it('opens it when the status file of a process that died names a PID another process now has', async () => {
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(
        join(dataDir, 'status'),
        `PID: ${other.pid}\nStarted at: 2026-12-05 10:00:00\n`,
      );
      const run = await runCli(['sql', '--data-dir', dataDir, 'SELECT count() AS n FROM v_tasks']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    } finally {
      other.kill();
    }
  });
});
