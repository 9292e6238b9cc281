import { describe, expect, it } from 'vitest';
import { serverSupportProblem, splitStatements } from '../../storage/migrations.js';

describe('splitStatements', () => {
  it('splits at a semicolon ending a line and drops comment lines', () => {
    expect(splitStatements("-- a comment; here\nSELECT 1;\nSELECT ';'\nFROM x;\n")).toEqual([
      'SELECT 1',
      "SELECT ';'\nFROM x",
    ]);
  });

  it('drops indented comment lines inside a statement and keeps a last statement without a semicolon', () => {
    expect(
      splitStatements('CREATE TABLE t\n(\n    -- why: a comment\n    x UInt8\n);\nSELECT 2'),
    ).toEqual(['CREATE TABLE t\n(\n    x UInt8\n)', 'SELECT 2']);
  });
});

describe('serverSupportProblem', () => {
  it('takes 24.8 and newer with the new analyzer, and refuses older servers saying what to do', () => {
    for (const version of [
      '24.8.1.2684',
      '24.10.1',
      '25.3.6.56',
      '25.8.2.29',
      '26.7.2.1',
      '100.1',
      'unknown',
    ])
      expect(serverSupportProblem(version, 1), version).toBeUndefined();
    for (const version of ['24.7.3.42', '24.3.18.7', '23.12.1', '22.8.21.38']) {
      expect(serverSupportProblem(version, 1), version).toMatch(
        new RegExp(
          `^routewatch needs ClickHouse 24\\.8 or newer, and this server is ${version.replaceAll('.', '\\.')}: .*Upgrade the server`,
        ),
      );
    }
  });

  it('refuses the old analyzer, naming the statement that turns the new one on for this user', () => {
    expect(serverSupportProblem('25.8.2.29', 0, 'routewatch')).toMatch(
      /^the new query analyzer is off for this ClickHouse user .*ALTER USER routewatch SETTINGS enable_analyzer = 1/,
    );
    expect(serverSupportProblem('25.8.2.29', 0, 'svc-rw')).toMatch(
      /ALTER USER `svc-rw` SETTINGS enable_analyzer = 1/,
    );
  });
});
