import { describe, expect, it } from 'vitest';
import { runDemo } from '../../cli/demo.js';
import { startClickHouseHttp } from '../support/clickhouse-http.js';
import { DEMO, expectReportMatchesTruth } from '../support/demo-truth.js';

// test/integration/e2e.test.ts on the server driver: routewatch with CLICKHOUSE_URL pointing at a
// ClickHouse HTTP interface (the real engine behind it), strict about unknown fields.
describe('end to end on a ClickHouse server: … → collector → @clickhouse/client over HTTP → views → report', () => {
  it('reproduces the ground truth the simulator computed itself', async () => {
    const server = await startClickHouseHttp({
      user: 'routewatch',
      password: 'routewatch',
      databases: ['routewatch'],
      strict: true,
    });
    try {
      let printed = '';
      const result = await runDemo({
        ...DEMO,
        clickhouseUrl: server.url,
        out: (text) => (printed += text),
      });
      expect(printed).toMatch(/server ClickHouse/);
      const inserts = server.requests.filter((r) => r.query.startsWith('INSERT INTO spans'));
      expect(inserts.length).toBeGreaterThan(0);
      expect(inserts.every((r) => r.database === 'routewatch' && r.exceptionCode === 0)).toBe(true);
      expectReportMatchesTruth(result, printed);
    } finally {
      await server.close();
    }
  });
});
