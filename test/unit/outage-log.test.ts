import { describe, expect, it } from 'vitest';
import { OutageLog } from '../../storage/outage-log.js';
import { StorageError, storageFailure } from '../../storage/errors.js';
import { storeUnreachable } from '../support/outage.js';

/** Every line logged, as [level, message, fields]. */
function recordingLog() {
  const lines: Array<[string, string, Record<string, unknown>]> = [];
  const at = (level: string) => (fields: object, message: string) =>
    lines.push([level, message, fields as Record<string, unknown>]);
  return {
    lines,
    log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
}

const refused = storeUnreachable;

describe('OutageLog', () => {
  it('says an outage once, as a warning naming what waits, and once more when the store answers again', () => {
    const { lines, log } = recordingLog();
    const outage = new OutageLog(log, 'rollup refresh', 'the views stay exact meanwhile');
    for (let turn = 0; turn < 20; turn++) outage.failed(refused(), {}, 'rollup refresh failed');
    expect(outage.storeDown).toBe(true);
    outage.succeeded();
    outage.succeeded();
    expect(outage.storeDown).toBe(false);
    expect(
      lines.filter(([level]) => level !== 'debug').map(([level, message]) => [level, message]),
    ).toEqual([
      [
        'warn',
        'rollup refresh skipped: the store does not answer (ClickHouse server did not answer: connect ECONNREFUSED 127.0.0.1:8123); the views stay exact meanwhile. Said once: the next line is when it answers again',
      ],
      ['info', 'rollup refresh: the store answers again'],
    ]);
    expect(lines.filter(([level]) => level === 'debug')).toHaveLength(19);
    // A second outage is said again.
    outage.failed(refused(), {}, 'rollup refresh failed');
    expect(lines.at(-1)?.[0]).toBe('warn');
  });

  it('logs any other failure as an error every time, with its cause, outage or not', () => {
    const { lines, log } = recordingLog();
    const outage = new OutageLog(log, 'alert evaluation', 'no alert is raised meanwhile');
    const broken = new StorageError('QUERY_FAILED', 'Code: 47. Unknown identifier cohortt');
    outage.failed(broken, { at: 1 }, 'alert evaluation failed');
    outage.failed(refused(), {}, 'alert evaluation failed');
    outage.failed(broken, { at: 2 }, 'alert evaluation failed');
    expect(lines.map(([level, message]) => [level, message.split(':')[0]])).toEqual([
      ['error', 'alert evaluation failed'],
      ['warn', 'alert evaluation skipped'],
      ['error', 'alert evaluation failed'],
    ]);
    expect(lines[0]![2]).toMatchObject({ at: 1, err: broken, message: broken.message });
    // An error is no sign that the store answers: the outage is not said to be over.
    expect(outage.storeDown).toBe(true);
  });

  it('takes a server that answers with an error for no outage: out of memory, over its time, the client timing out', () => {
    // review diff-8 #1: these went quiet after one warning, while the job failed at every turn.
    const { lines, log } = recordingLog();
    const outage = new OutageLog(log, 'alert evaluation', 'no alert is raised meanwhile');
    const answered = [
      storageFailure(
        'QUERY_FAILED',
        'ClickHouse query failed',
        Object.assign(new Error('Memory limit (for query) exceeded: would use 9.31 GiB'), {
          code: '241',
        }),
      ),
      storageFailure(
        'QUERY_FAILED',
        'ClickHouse query failed',
        Object.assign(new Error('Timeout exceeded: elapsed 30 seconds'), { code: '159' }),
      ),
      storageFailure('QUERY_FAILED', 'ClickHouse query failed', new Error('Timeout error.')),
    ];
    for (let turn = 0; turn < 2; turn++)
      for (const error of answered) outage.failed(error, {}, 'alert evaluation failed');
    expect(lines.map(([level]) => level)).toEqual(Array(6).fill('error'));
    expect(outage.storeDown).toBe(false);
  });

  it('logs errors as the text `describe` gives when it is given (the notifier leaves URLs out)', () => {
    const { lines, log } = recordingLog();
    const describe = (error: unknown) =>
      (error as Error).message.replace(/https?:\/\/\S+/g, '<url>');
    const outage = new OutageLog(log, 'a read', 'meanwhile nothing', describe);
    outage.failed(
      new Error('bad answer from https://hooks.example.com/secret'),
      { channel: 'slack' },
      'failed',
    );
    expect(lines).toEqual([
      ['error', 'failed', { channel: 'slack', err: 'bad answer from <url>' }],
    ]);
  });
});
