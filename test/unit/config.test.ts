import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  INSTRUMENTATION_SETTINGS,
  assertSafeExposure,
  batchDelayMs,
  configWith,
  isLoopback,
  parseConfig,
  unknownSettings,
} from '../../server/config.js';
import { listenFailure, walDir, writerOptions } from '../../server/start.js';
import {
  TimeArgumentError,
  formatDuration,
  parseDuration,
  parseInstant,
  resolveWindow,
} from '../../server/time.js';

describe('isLoopback', () => {
  it.each(['localhost', 'LOCALHOST', '::1', '[::1]', '127.0.0.1', '127.1.2.3', '127.255.255.255'])(
    'accepts %s',
    (host) => {
      expect(isLoopback(host)).toBe(true);
    },
  );

  it.each([
    '127.example.com',
    '127.0.0.1.nip.io',
    '127.256.0.1',
    '127.0.0',
    '127.0.0.01',
    '128.0.0.1',
    '0.0.0.0',
    '::',
    'example.com',
    '',
  ])('refuses %j', (host) => {
    expect(isLoopback(host)).toBe(false);
  });
});

describe('parseConfig', () => {
  it('gives every setting its default from an empty environment', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      ROUTEWATCH_HOST: '127.0.0.1',
      ROUTEWATCH_PORT: 4318,
      ROUTEWATCH_MAX_BODY_BYTES: 20 * 1024 * 1024,
      ROUTEWATCH_MAX_QUEUE_WAIT: 5_000,
      ROUTEWATCH_RETENTION_DAYS: 30,
      ROUTEWATCH_URL: 'http://127.0.0.1:4318',
    });
    expect(config.ROUTEWATCH_TOKEN).toBeUndefined();
    expect(config.ROUTEWATCH_BATCH_DELAY).toBeUndefined();
  });

  it('treats empty values as unset and reads durations with units', () => {
    const config = parseConfig({ ROUTEWATCH_PORT: '', ROUTEWATCH_BODY_TIMEOUT: '90s' });
    expect(config.ROUTEWATCH_PORT).toBe(4318);
    expect(config.ROUTEWATCH_BODY_TIMEOUT).toBe(90_000);
  });

  it.each([
    ['ROUTEWATCH_PORT', '70000'],
    ['ROUTEWATCH_PORT', 'http'],
    ['ROUTEWATCH_BATCH_DELAY', 'soon'],
    ['ROUTEWATCH_TOKEN', 'short'],
    ['ROUTEWATCH_TOKEN', '                        '],
    ['ROUTEWATCH_TOKEN', 'has a space in the middle of it'],
    ['CLICKHOUSE_URL', 'ftp://example.com'],
    ['ROUTEWATCH_LOG_LEVEL', 'loud'],
    ['ROUTEWATCH_WAL', 'maybe'],
    ['ROUTEWATCH_WAL_MAX_BYTES', '1000'],
  ])('refuses %s=%j, naming the variable', (name, value) => {
    expect(() => parseConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => parseConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('keeps the rollups 400 days and refreshes them every 10 s by default', () => {
    expect(parseConfig({})).toMatchObject({
      ROUTEWATCH_ROLLUP_RETENTION_DAYS: 400,
      ROUTEWATCH_ROLLUP_INTERVAL: 10_000,
    });
    expect(parseConfig({}).ROUTEWATCH_CLICKHOUSE_CLUSTER).toBeUndefined();
  });

  it.each([
    [
      { ROUTEWATCH_RETENTION_DAYS: '90', ROUTEWATCH_ROLLUP_RETENTION_DAYS: '60' },
      /ROUTEWATCH_RETENTION_DAYS and ROUTEWATCH_ROLLUP_RETENTION_DAYS: raw spans would be kept 90 days but the rollups only 60;.*set ROUTEWATCH_ROLLUP_RETENTION_DAYS to 90 or more as well, or lower ROUTEWATCH_RETENTION_DAYS/,
    ],
    // Only the raw spans' retention set: the message names the other setting and its default.
    [
      { ROUTEWATCH_RETENTION_DAYS: '500' },
      /ROUTEWATCH_RETENTION_DAYS and ROUTEWATCH_ROLLUP_RETENTION_DAYS: raw spans would be kept 500 days but the rollups only 400 \(the default\);.*set ROUTEWATCH_ROLLUP_RETENTION_DAYS to 500 or more as well/,
    ],
    [
      { ROUTEWATCH_CLICKHOUSE_CLUSTER: 'main' },
      /ROUTEWATCH_CLICKHOUSE_CLUSTER: needs CLICKHOUSE_URL/,
    ],
    [
      { CLICKHOUSE_URL: 'http://ch:8123', ROUTEWATCH_CLICKHOUSE_CLUSTER: 'main; DROP' },
      /ROUTEWATCH_CLICKHOUSE_CLUSTER/,
    ],
    [{ ROUTEWATCH_ROLLUP_INTERVAL: '100ms' }, /ROUTEWATCH_ROLLUP_INTERVAL/],
    [
      { ROUTEWATCH_EVALUATE_EVERY: '1ms' },
      /ROUTEWATCH_EVALUATE_EVERY.*use 0 \(no periodic evaluation\) or at least 10s/,
    ],
  ])('refuses settings that do not go together: %j', (settings, message) => {
    expect(() => parseConfig(settings)).toThrow(ConfigError);
    expect(() => parseConfig(settings)).toThrow(message);
  });

  it.each([
    'ROUTEWATCH_EVALUATE_EVERY',
    'ROUTEWATCH_ROLLUP_INTERVAL',
    'ROUTEWATCH_BODY_TIMEOUT',
    'ROUTEWATCH_BODY_IDLE_TIMEOUT',
    'ROUTEWATCH_KEEPALIVE_TIMEOUT',
    'ROUTEWATCH_BATCH_DELAY',
  ])(
    'refuses %s longer than a timer can wait (24.8 days), which would fire it every millisecond',
    (name) => {
      expect(parseConfig({ [name]: '24d' })[name as keyof ReturnType<typeof parseConfig>]).toBe(
        24 * 86_400_000,
      );
      expect(() => parseConfig({ [name]: '25d' })).toThrow(
        new RegExp(`${name}: must be at most 24d: a longer wait overflows the timer`),
      );
    },
  );

  it.each([
    [
      'ROUTEWATCH_PORT',
      '6000',
      /ROUTEWATCH_PORT: is a port browsers and fetch refuse.*the dashboard/,
    ],
    [
      'ROUTEWATCH_URL',
      'http://127.0.0.1:6666',
      /ROUTEWATCH_URL: its port is a port browsers and fetch refuse/,
    ],
    ['ROUTEWATCH_SLACK_WEBHOOK_URL', 'http://127.0.0.1:9/hook', /the notifier could not reach it/],
    [
      'ROUTEWATCH_WEBHOOK_URL',
      'https://hooks.example.com:5060/x',
      /the notifier could not reach it/,
    ],
    ['ROUTEWATCH_PUBLIC_URL', 'http://rw.example.com:10080', /a browser following a link/],
    // Not a URL at all, or not http(s): said as what to give (it was "Invalid URL").
    [
      'ROUTEWATCH_SLACK_WEBHOOK_URL',
      'hooks.slack.com/services/T/B/X',
      /ROUTEWATCH_SLACK_WEBHOOK_URL: not an http\(s\) URL: give the whole URL, scheme included/,
    ],
    ['ROUTEWATCH_WEBHOOK_URL', 'ftp://127.0.0.1/x', /not an http\(s\) URL/],
    [
      'CLICKHOUSE_URL',
      'clickhouse:9000',
      /CLICKHOUSE_URL: not an http\(s\) URL: give ClickHouse's HTTP interface, scheme included \(http:\/\/user:password@host:8123\/database\)/,
    ],
    ['CLICKHOUSE_URL', 'tcp://clickhouse:9000/routewatch', /CLICKHOUSE_URL: not an http\(s\) URL/],
  ])(
    'refuses %s=%s, a URL fetch will not call (a bad port, no scheme), instead of failing at the first call',
    (name, value, message) => {
      expect(() => parseConfig({ [name]: value })).toThrow(message);
    },
  );

  it('takes CLICKHOUSE_URL on any port: the ClickHouse client does connect to a port fetch refuses', async () => {
    const url = 'http://routewatch:secret@127.0.0.1:6000/routewatch';
    expect(parseConfig({ CLICKHOUSE_URL: url }).CLICKHOUSE_URL).toBe(url);
    // @clickhouse/client goes through Node's http module: it connects (refused, where nothing
    // listens), where fetch gives up on the port itself ("bad port", the test below).
    const client = createClient({ url, log: { level: ClickHouseLogLevel.OFF } });
    try {
      const ping = await client.ping();
      const error = ping.success ? undefined : (ping.error as Error & { code?: string });
      expect(error?.message ?? '').not.toMatch(/bad port/);
      expect(ping.success ? 'reached' : error?.code).toMatch(/^(reached|ECONN[A-Z]+)$/);
    } finally {
      await client.close();
    }
  });

  it('takes the ports next to the blocked ones, and URLs on their default port', async () => {
    const config = parseConfig({
      ROUTEWATCH_PORT: '6001',
      ROUTEWATCH_URL: 'http://127.0.0.1:5999',
      ROUTEWATCH_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T000/B000/XXX',
    });
    expect(config.ROUTEWATCH_PORT).toBe(6001);
    // What the configuration lets through, fetch does try to reach (a refused connection, not a
    // refused port).
    const attempt = await fetch('http://127.0.0.1:6001/', {
      signal: AbortSignal.timeout(2_000),
    }).catch((error: unknown) => error as Error & { cause?: Error });
    expect(String((attempt as { cause?: Error }).cause?.message ?? '')).not.toMatch(/bad port/);
    const blocked = await fetch('http://127.0.0.1:6000/').catch(
      (error: unknown) => error as Error & { cause?: Error },
    );
    expect(String((blocked as { cause?: Error }).cause?.message)).toMatch(/bad port/);
  });

  it('takes a clock skew of up to a year', () => {
    expect(parseConfig({ ROUTEWATCH_MAX_CLOCK_SKEW: '30d' }).ROUTEWATCH_MAX_CLOCK_SKEW).toBe(
      30 * 86_400_000,
    );
    expect(() => parseConfig({ ROUTEWATCH_MAX_CLOCK_SKEW: '400d' })).toThrow(/at most 365d/);
  });

  it.each(['0x10f0', '1e3', '4318.0', '+4318', '-1', '4318 ports'])(
    'refuses ROUTEWATCH_PORT=%s: ports and counts are decimal digits',
    (value) => {
      expect(() => parseConfig({ ROUTEWATCH_PORT: value })).toThrow(
        `ROUTEWATCH_PORT: "${value}" is not a whole number: write it in decimal digits, such as 4318`,
      );
    },
  );

  it('reads ports and counts written in decimal digits, and says the range of one out of it', () => {
    const config = parseConfig({ ROUTEWATCH_PORT: ' 4319 ', ROUTEWATCH_BATCH_ROWS: '007' });
    expect(config.ROUTEWATCH_PORT).toBe(4319);
    expect(config.ROUTEWATCH_BATCH_ROWS).toBe(7);
    expect(() => parseConfig({ ROUTEWATCH_PORT: '70000' })).toThrow(
      'ROUTEWATCH_PORT: must be at most 65535',
    );
  });

  it.each([
    ['20971520', 20 * 1024 ** 2],
    ['20MiB', 20 * 1024 ** 2],
    ['20 mib', 20 * 1024 ** 2],
    ['512KiB', 512 * 1024],
    ['1GiB', 1024 ** 3],
  ])('reads ROUTEWATCH_MAX_BODY_BYTES=%s as %i bytes', (value, bytes) => {
    expect(parseConfig({ ROUTEWATCH_MAX_BODY_BYTES: value }).ROUTEWATCH_MAX_BODY_BYTES).toBe(bytes);
  });

  it.each(['20MB', '1e6', '0x100000', '1.5MiB', 'MiB'])(
    'refuses ROUTEWATCH_MAX_BODY_BYTES=%s, saying how to write a size',
    (value) => {
      expect(() => parseConfig({ ROUTEWATCH_MAX_BODY_BYTES: value })).toThrow(
        `ROUTEWATCH_MAX_BODY_BYTES: "${value}" is not a size: write a number of bytes or a size such as 20MiB`,
      );
    },
  );

  it('says the range of a size in the units it is written in', () => {
    expect(() => parseConfig({ ROUTEWATCH_WAL_MAX_BYTES: '1KiB' })).toThrow(
      'ROUTEWATCH_WAL_MAX_BYTES: must be at least 64KiB',
    );
    expect(() => parseConfig({ ROUTEWATCH_MAX_BODY_BYTES: '2GiB' })).toThrow(
      'ROUTEWATCH_MAX_BODY_BYTES: must be at most 1GiB',
    );
  });

  it('takes 0 as "no refresher in this process"', () => {
    expect(parseConfig({ ROUTEWATCH_ROLLUP_INTERVAL: '0s' }).ROUTEWATCH_ROLLUP_INTERVAL).toBe(0);
  });

  it('takes a cluster with a server', () => {
    expect(
      parseConfig({ CLICKHOUSE_URL: 'http://ch:8123', ROUTEWATCH_CLICKHOUSE_CLUSTER: 'routewatch' })
        .ROUTEWATCH_CLICKHOUSE_CLUSTER,
    ).toBe('routewatch');
  });

  it('turns the write-ahead log on by default, in the data directory, with a 1 GiB budget', () => {
    const config = parseConfig({});
    expect(config.ROUTEWATCH_WAL).toBe('on');
    expect(config.ROUTEWATCH_WAL_DIR).toBeUndefined();
    expect(config.ROUTEWATCH_WAL_MAX_BYTES).toBe(1024 ** 3);
    expect(walDir(config)).toBe(resolve('.routewatch/wal'));
    expect(walDir(parseConfig({ ROUTEWATCH_DATA_DIR: '/var/lib/rw' }))).toBe('/var/lib/rw/wal');
    expect(walDir(parseConfig({ ROUTEWATCH_WAL_DIR: '/logs/wal' }))).toBe('/logs/wal');
    expect(parseConfig({ ROUTEWATCH_WAL: 'off' }).ROUTEWATCH_WAL).toBe('off');
  });

  it('waits 1 s to fill an insert with the log and not at all without it, unless told', () => {
    // With the log no answer waits for the insert, so fewer, larger inserts cost the engine less;
    // without it every answer waits for its insert.
    expect(batchDelayMs(parseConfig({}))).toBe(1_000);
    expect(writerOptions(parseConfig({})).maxDelayMs).toBe(1_000);
    expect(batchDelayMs(parseConfig({ ROUTEWATCH_WAL: 'off' }))).toBe(0);
    expect(writerOptions(parseConfig({ ROUTEWATCH_WAL: 'off' })).maxDelayMs).toBe(0);
    for (const wal of ['on', 'off']) {
      expect(
        batchDelayMs(parseConfig({ ROUTEWATCH_WAL: wal, ROUTEWATCH_BATCH_DELAY: '50ms' })),
      ).toBe(50);
      expect(batchDelayMs(parseConfig({ ROUTEWATCH_WAL: wal, ROUTEWATCH_BATCH_DELAY: '0' }))).toBe(
        0,
      );
    }
  });

  it('refuses to listen beyond loopback without a token', () => {
    expect(() => assertSafeExposure(configWith({ ROUTEWATCH_HOST: '0.0.0.0' }))).toThrow(
      /ROUTEWATCH_TOKEN/,
    );
    expect(() =>
      assertSafeExposure(
        configWith({ ROUTEWATCH_HOST: '0.0.0.0', ROUTEWATCH_TOKEN: 'a-long-enough-token-123' }),
      ),
    ).not.toThrow();
  });
});

describe('time arguments', () => {
  it.each([
    ['250ms', 250],
    ['90s', 90_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1w', 604_800_000],
    ['1.5h', 5_400_000],
  ])('reads the duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    [604_800_000, '7 d'],
    [129_600_000, '36 h'],
    [1_800_000, '30 min'],
    [1_200_000, '20 min'],
    [90_000, '90 s'],
    [250, '250 ms'],
  ])('says the duration %i ms as %s, never rounding a part away', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each(['24', 'h', '1y', '-1h', '1 h h'])(
    'refuses the duration %j with the forms it takes',
    (text) => {
      expect(() => parseDuration(text)).toThrow(/e\.g\. 90s, 15m, 24h, 7d/);
    },
  );

  it('reads dates as midnight UTC and instants with their zone', () => {
    expect(parseInstant('2026-12-02').toISOString()).toBe('2026-12-02T00:00:00.000Z');
    expect(parseInstant('2026-12-02T10:30:00+02:00').toISOString()).toBe(
      '2026-12-02T08:30:00.000Z',
    );
    expect(() => parseInstant('2026-12-02T10:30:00')).toThrow(TimeArgumentError);
    expect(() => parseInstant('yesterday')).toThrow(TimeArgumentError);
  });

  it.each([
    '2026-02-30',
    '2026-04-31',
    '2026-02-29',
    '2026-13-01',
    '2026-00-10',
    '2026-02-28T24:00Z',
    '2026-12-02T10:60:00Z',
    '2026-12-02T10:00:60Z',
  ])('refuses %j, a day or time that does not exist, instead of moving it to another', (text) => {
    expect(() => parseInstant(text)).toThrow(/no such day or time of day/);
  });

  it('takes the days that exist at the edges of the calendar', () => {
    expect(parseInstant('2028-02-29').toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(parseInstant('2026-12-31T23:59:59.999Z').toISOString()).toBe('2026-12-31T23:59:59.999Z');
    expect(parseInstant('2026-04-30 00:00+14:00').toISOString()).toBe('2026-04-29T10:00:00.000Z');
  });

  it('resolves windows from a duration, from/to, or durations ago', () => {
    const now = new Date('2026-12-02T12:00:00Z');
    expect(resolveWindow({ window: '90s' }, now)).toEqual({
      from: new Date('2026-12-02T11:58:30Z'),
      to: now,
    });
    expect(resolveWindow({ from: '2026-12-01', to: '2026-12-02' }, now).from.toISOString()).toBe(
      '2026-12-01T00:00:00.000Z',
    );
    expect(resolveWindow({ from: '2h' }, now).from.toISOString()).toBe('2026-12-02T10:00:00.000Z');
    expect(resolveWindow({}, now).from.toISOString()).toBe('2026-12-01T12:00:00.000Z');
    // A bare 0 is a duration (now), as parseDuration reads it.
    expect(resolveWindow({ from: '1h', to: '0' }, now).to).toEqual(now);
  });

  it('refuses windows no store can hold, or that end before they start', () => {
    const now = new Date('2026-12-02T12:00:00Z');
    expect(() => resolveWindow({ window: '200000d' }, now)).toThrow(/outside the time/);
    expect(() => resolveWindow({ from: '0001-01-01' }, now)).toThrow(/outside the time/);
    expect(() => resolveWindow({ from: '2026-12-03' }, now)).toThrow(/before/);
    expect(() => resolveWindow({ from: '1h', window: '1h' }, now)).toThrow(/not both/);
  });
});

describe('unknownSettings', () => {
  it('names ROUTEWATCH_ variables that are no setting, with the setting a typo most likely means', () => {
    expect(
      unknownSettings({
        ROUTEWATCH_DATADIR: '/data',
        ROUTEWATCH_PORTT: '4318',
        ROUTEWATCH_SOMETHING_ELSE_ENTIRELY: '1',
        ROUTEWATCH_PORT: '4318',
        ROUTEWATCH_SDK_CAPTURE: 'off',
        OTHER_PORTT: '1',
      }),
    ).toEqual([
      { name: 'ROUTEWATCH_DATADIR', suggestion: 'ROUTEWATCH_DATA_DIR' },
      { name: 'ROUTEWATCH_PORTT', suggestion: 'ROUTEWATCH_PORT' },
      { name: 'ROUTEWATCH_SOMETHING_ELSE_ENTIRELY', suggestion: undefined },
    ]);
  });

  it('knows every setting the instrumentation reads, so a shared environment raises no warning', () => {
    const source = readFileSync(
      fileURLToPath(new URL('../../instrumentation/src/config.ts', import.meta.url)),
      'utf8',
    );
    const read = [...new Set(source.match(/ROUTEWATCH_[A-Z_]+/g))].sort();
    expect(read.length).toBeGreaterThan(0);
    expect([...INSTRUMENTATION_SETTINGS].sort()).toEqual(read);
  });
});

describe('listenFailure', () => {
  const failed = (code: string) => Object.assign(new Error(`listen ${code}`), { code });

  it('says which setting to change when the port or host cannot be used', () => {
    expect(listenFailure(failed('EADDRINUSE'), '127.0.0.1', 4318).message).toMatch(
      /cannot listen on 127\.0\.0\.1:4318 \(EADDRINUSE\): .*set ROUTEWATCH_PORT/,
    );
    expect(listenFailure(failed('EADDRNOTAVAIL'), '10.9.9.9', 4318).message).toMatch(
      /10\.9\.9\.9 is not an address of this machine: set ROUTEWATCH_HOST/,
    );
    expect(listenFailure(failed('ENOTFOUND'), 'foo.invalid', 4318).message).toMatch(
      /foo\.invalid does not resolve: set ROUTEWATCH_HOST/,
    );
  });

  it('passes any other error on as it is', () => {
    const other = failed('EMFILE');
    expect(listenFailure(other, '127.0.0.1', 4318)).toBe(other);
  });
});
