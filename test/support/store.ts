import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../storage/embedded-store.js';
import { migrate } from '../../storage/migrations.js';
import type { Store } from '../../storage/store.js';

/** An embedded store in a fresh temporary directory, migrated. One per test file (one per process). */
export async function openTempStore(): Promise<{
  store: EmbeddedStore;
  dir: string;
  dispose(): Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'routewatch-test-'));
  const store = await EmbeddedStore.open(dir);
  await migrate(store);
  return {
    store,
    dir,
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A store whose every insert fails as an unreachable ClickHouse does: the case of an outage. */
export function unavailableStore(message = 'Code: 210. DB::Exception: Connection refused'): Store {
  return {
    driver: 'embedded',
    location: 'nowhere',
    exec: async () => undefined,
    query: async () => [],
    queryReadOnly: async () => {
      throw new Error(message);
    },
    ping: async () => undefined,
    close: async () => undefined,
    insertJsonEachRow: async () => {
      throw new Error(message);
    },
  };
}
