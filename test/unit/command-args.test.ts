import { describe, expect, it } from 'vitest';
import type { Command } from '../../cli/command.js';
import { UsageError, parseCommandArgs } from '../../cli/command.js';
import { isCommentedQuery, sqlCommand } from '../../cli/commands/sql.js';

// How `routewatch sql` splits its arguments: a query that opens with a `--` comment (every
// example of docs/sql-views.md) is the query, every real option still parses.
const parse = (args: string[]) => parseCommandArgs(sqlCommand as Command<unknown>, args);
const QUERY = '-- The ten most expensive tasks.\nSELECT task_id FROM v_tasks LIMIT 10;';

describe('isCommentedQuery', () => {
  it.each([
    '-- a comment\nSELECT 1',
    '-- a comment, one line',
    '--tight\nSELECT 1',
    '--\tTab after the dashes',
    "--a=1 is no option name\nSELECT 'x'",
  ])('takes %j for a query', (arg) => {
    expect(isCommentedQuery(arg)).toBe(true);
  });

  it.each(['--', '--format', '--format=json', '--url=http://127.0.0.1:4818', '-', 'SELECT 1'])(
    'leaves %j to the option parser',
    (arg) => {
      expect(isCommentedQuery(arg)).toBe(false);
    },
  );
});

describe('parseCommandArgs for routewatch sql', () => {
  it.each([
    [[QUERY]],
    [['--format', 'json', QUERY]],
    [[QUERY, '--format', 'json']],
    [['--format=json', QUERY, '--url', 'http://127.0.0.1:4818']],
    [['--format', 'json', '--', QUERY]],
  ])('takes the commented query beside the options: %j', (args) => {
    const parsed = parse(args);
    expect(parsed.help).toBe(false);
    if (parsed.help) return;
    expect(parsed.positionals).toEqual([QUERY]);
    expect(parsed.values['format']).toBe(args.some((a) => a.includes('json')) ? 'json' : 'table');
    expect(parsed.values['url']).toBe(args.includes('--url') ? 'http://127.0.0.1:4818' : undefined);
  });

  it('keeps - (standard input) and an ordinary query as they were', () => {
    expect(parse(['-'])).toMatchObject({ positionals: ['-'] });
    expect(parse(['--format', 'csv', 'SELECT 1'])).toMatchObject({
      positionals: ['SELECT 1'],
      values: { format: 'csv' },
    });
  });

  it('still refuses an unknown option, an option without its value, and two queries', () => {
    expect(() => parse(['--fromat', 'json', QUERY])).toThrow(/Unknown option '--fromat'/);
    expect(() => parse([QUERY, '--url'])).toThrow(UsageError);
    expect(() => parse([QUERY, '-- a second\nSELECT 2'])).toThrow(/takes 1 query argument/);
  });
});
