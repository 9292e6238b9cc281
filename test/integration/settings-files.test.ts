import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CATALOGUE } from '../../collector/pricing.js';
import { ConfigError, parseConfig } from '../../server/config.js';
import { openTempStore } from '../support/store.js';
import { otlpBody } from '../support/otlp.js';
import { testApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

// ROUTEWATCH_PRICES and ROUTEWATCH_MAPPING: files read and checked at start, then used by the
// ingest worker thread.

let dir: string;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'routewatch-settings-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('settings files at start', () => {
  it.each([
    [
      'ROUTEWATCH_PRICES',
      () => join(dir, 'missing.yaml'),
      /ROUTEWATCH_PRICES: cannot read .*missing\.yaml/,
    ],
    [
      'ROUTEWATCH_PRICES',
      () =>
        file(
          'prices.yaml',
          'prices:\n  - model: gpt-4o\n    input_mtok: cheap\n    output_mtok: 1\n',
        ),
      /ROUTEWATCH_PRICES: .*prices\.yaml: prices\.0\.input_mtok/,
    ],
    [
      'ROUTEWATCH_MAPPING',
      () => file('mapping.yaml', 'fields:\n  cohrt: [ { attribute: a } ]\n'),
      /ROUTEWATCH_MAPPING: .*mapping\.yaml: .*cohrt/,
    ],
  ])('refuses a bad %s naming the variable, the file and the place', (variable, path, message) => {
    expect(() => parseConfig({ [variable]: path() })).toThrow(ConfigError);
    expect(() => parseConfig({ [variable]: path() })).toThrow(message);
  });

  it('records in price_ref the catalogue version that is installed', () => {
    const require = createRequire(import.meta.url);
    const entry = require.resolve('@pydantic/genai-prices');
    const manifest = z
      .object({ version: z.string() })
      .parse(JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')));
    expect(CATALOGUE).toBe(`genai-prices@${manifest.version}`);
  });
});

describe('a price file through the ingest worker', () => {
  let app: TestApp;
  let dispose: () => Promise<void>;
  let store: Awaited<ReturnType<typeof openTempStore>>['store'];

  beforeAll(async () => {
    const temp = await openTempStore();
    store = temp.store;
    dispose = temp.dispose;
    const prices = file(
      'worker-prices.yaml',
      'prices:\n  - model: house-model-*\n    input_mtok: 2\n    output_mtok: 4\n',
    );
    app = await testApp(store, { config: { ROUTEWATCH_PRICES: prices } });
  });
  afterAll(async () => {
    await app.close();
    await dispose();
  });

  it('prices a model the catalogue does not know, and says by which entry', async () => {
    const res = await app.app.inject({
      method: 'POST',
      url: '/v1/traces',
      payload: otlpBody([
        {
          attributes: {
            'gen_ai.request.model': 'house-model-7b',
            'gen_ai.usage.input_tokens': 1_000_000,
            'gen_ai.usage.output_tokens': 500_000,
          },
        },
      ]),
    });
    expect(res.statusCode).toBe(200);
    await app.writer.flush();
    const rows = await store.query(
      'SELECT cost_usd, cost_source, price_ref FROM spans',
      {},
      z.object({ cost_usd: z.number(), cost_source: z.string(), price_ref: z.string() }),
    );
    expect(rows).toEqual([
      { cost_usd: 4, cost_source: 'price_table', price_ref: 'override:house-model-*' },
    ]);
  });
});
