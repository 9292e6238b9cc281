import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../../storage/store.js';

/**
 * A real store that takes rows no faster than `rowsPerSecond`: the stand-in for a ClickHouse
 * server that is slower than the traffic sent to it.
 */
export function slowStore(store: Store, rowsPerSecond: number): Store {
  let busyUntil = 0;
  return {
    driver: store.driver,
    location: store.location,
    exec: (sql, params) => store.exec(sql, params),
    query: (sql, params, row) => store.query(sql, params, row),
    queryReadOnly: (sql, limits) => store.queryReadOnly(sql, limits),
    ping: () => store.ping(),
    close: async () => undefined,
    async insertJsonEachRow(table, body, options) {
      let rows = 0;
      for (const byte of body) if (byte === 0x0a) rows++;
      const start = Math.max(Date.now(), busyUntil);
      busyUntil = start + (rows / rowsPerSecond) * 1000;
      await sleep(busyUntil - Date.now());
      await store.insertJsonEachRow(table, body, options);
    },
  };
}
