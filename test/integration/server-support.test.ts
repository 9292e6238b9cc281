import { describe, expect, it } from 'vitest';
import { MigrationError } from '../../storage/errors.js';
import { migrate } from '../../storage/migrations.js';
import { ServerStore } from '../../storage/server-store.js';
import { startClickHouseHttp } from '../support/clickhouse-http.js';

// The server's version and the user's analyzer are checked before the schema: a server that
// cannot hold it is refused with what to do, not with the first view that fails (its own file:
// one engine per process, and server-store.test.ts keeps its own open).

describe('a ClickHouse server routewatch cannot run on', () => {
  it('is refused before any statement of the schema, saying why and what to do', async () => {
    // The new analyzer off in the user's profile (as some teams did after 24.3): the views
    // would fail to be created with "Cannot parse DateTime: value '0' … for query parameter".
    const old = await startClickHouseHttp({
      user: 'routewatch',
      password: 'routewatch',
      databases: ['routewatch'],
      profile: { allow_experimental_analyzer: '0' },
    });
    const oldStore = new ServerStore({ url: old.url });
    try {
      const refused = await migrate(oldStore).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(MigrationError);
      // The user is the server's currentUser(): the engine behind this test server runs every
      // request as `default`, whoever logged in.
      expect((refused as Error).message).toMatch(
        /^the new query analyzer is off for this ClickHouse user \(enable_analyzer = 0 in its profile; ClickHouse 26\.\d+.*ALTER USER default SETTINGS enable_analyzer = 1/,
      );
      expect(old.requests.filter((r) => /^\s*(CREATE|ALTER|INSERT)/i.test(r.query))).toEqual([]);
    } finally {
      await oldStore.close();
      await old.close();
    }
  });
});
