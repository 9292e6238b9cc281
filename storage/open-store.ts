import { EmbeddedStore } from './embedded-store.js';
import { ServerStore } from './server-store.js';
import type { Store } from './store.js';

export interface StoreConfig {
  /** A ClickHouse server URL; when unset the embedded engine is used. */
  clickhouseUrl?: string | undefined;
  /** Data directory of the embedded engine. */
  dataDir: string;
}

/** Opens the store the configuration names: a ClickHouse server when a URL is given, else embedded. */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.clickhouseUrl) return new ServerStore({ url: config.clickhouseUrl });
  return EmbeddedStore.open(config.dataDir);
}
