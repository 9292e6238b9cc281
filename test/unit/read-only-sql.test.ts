import { describe, expect, it } from 'vitest';
import { hasFormatClause, readOnlySqlProblem } from '../../storage/read-only-sql.js';

// The check runs on the engine's canonical text of the query (formatQuerySingleLine); these are
// texts in that form, and some it does not produce, which must not confuse the check either.
describe('readOnlySqlProblem', () => {
  it('lets reads through, whatever their strings and names say', () => {
    for (const sql of [
      'SELECT 1',
      "SELECT 'INTO OUTFILE' AS s, 'file(\\'x\\')' AS t",
      "SELECT 'it''s' AS a, `into` AS b FROM t",
      'SELECT `a\\nSelectQuery` FROM v_tasks',
      'WITH 1 AS a SELECT a FROM v_window_metrics(`from` = now(), to = now(), cohorts = [], routes = [], services = [], policies = [])',
      '(SELECT 1) UNION ALL (SELECT 2)',
      "SHOW TABLES LIKE 'v_%'",
      'DESCRIBE TABLE v_tasks',
      'EXISTS TABLE v_tasks',
      'EXPLAIN SELECT 1',
      "SELECT filesystemAvailable(), URLHierarchy('http://a/b'), profile FROM t",
      'SELECT t.file FROM t',
    ])
      expect(readOnlySqlProblem(sql), sql).toBeUndefined();
  });

  it('refuses INTO OUTFILE wherever it stands', () => {
    for (const sql of [
      "SELECT 1 INTO OUTFILE 'x'",
      "SELECT 'a\\'' INTO OUTFILE 'x' TRUNCATE",
      "SHOW TABLES INTO OUTFILE 'x'",
      "EXPLAIN SELECT 1 INTO OUTFILE 'x'",
      "select 1 into outfile 'x'",
    ])
      expect(readOnlySqlProblem(sql), sql).toMatch(/^INTO OUTFILE would write a file/);
  });

  it('refuses the functions that reach files, processes and other servers, quoted or not', () => {
    for (const [sql, name] of [
      ["SELECT file('/etc/passwd')", 'file'],
      ["SELECT `file`('/etc/passwd')", 'file'],
      ['SELECT "file" (\'/etc/passwd\')', 'file'],
      ["SELECT * FROM url('http://x', 'CSV')", 'url'],
      ["SELECT * FROM icebergS3Cluster('c', 'x')", 'icebergS3Cluster'],
      ["SELECT * FROM remoteSecure('h', db.t)", 'remoteSecure'],
      ["SELECT * FROM executable('x', 'TSV', 'a String')", 'executable'],
    ])
      expect(readOnlySqlProblem(sql!), sql).toMatch(new RegExp(`^${name}\\(\\) reaches files`));
  });

  it('refuses other statements, naming the ones it runs', () => {
    expect(readOnlySqlProblem("BACKUP TABLE t TO File('x')")).toBe(
      'BACKUP statements are not run here: only SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN',
    );
    expect(readOnlySqlProblem('SYSTEM FLUSH LOGS')).toMatch(/^SYSTEM statements are not run here/);
  });
});

describe('hasFormatClause', () => {
  it('finds the FORMAT clause the formatter writes, and not a column, alias or function called format', () => {
    for (const sql of [
      'SELECT 1 FORMAT CSV',
      'SELECT 1 FORMAT JSON SETTINGS max_threads = 1',
      'SHOW TABLES FORMAT CSV',
    ])
      expect(hasFormatClause(sql), sql).toBe(true);
    for (const sql of [
      'SELECT format FROM t',
      'SELECT FORMAT FROM t',
      'SELECT 1 AS FORMAT',
      "SELECT format('{}', 1)",
      "SELECT 'FORMAT CSV'",
    ])
      expect(hasFormatClause(sql), sql).toBe(false);
  });
});
