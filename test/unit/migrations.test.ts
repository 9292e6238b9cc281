import { describe, expect, it } from 'vitest';
import { splitStatements } from '../../storage/migrations.js';

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
