import type { Command } from '../command.js';
import { parseConfig } from '../../server/config.js';

export const migrateCommand: Command<Record<string, never>> = {
  name: 'migrate',
  summary: 'apply schema migrations and views (CLICKHOUSE_URL or the data directory)',
  usage: `
Usage: routewatch migrate

Applies the numbered table migrations not yet applied, then the views, to the ClickHouse server
CLICKHOUSE_URL names, or else to the embedded data directory ROUTEWATCH_DATA_DIR (./.routewatch),
which no running routewatch may hold. \`routewatch start\` does this by itself at start.
`,
  options: {},
  async run() {
    const config = parseConfig();
    const { openStore } = await import('../../storage/open-store.js');
    const { migrate } = await import('../../storage/migrations.js');
    const store = await openStore({
      clickhouseUrl: config.CLICKHOUSE_URL,
      dataDir: config.ROUTEWATCH_DATA_DIR,
    });
    try {
      const result = await migrate(store);
      process.stdout.write(
        `${store.location}: applied ${result.applied.length} migration(s)` +
          `${result.applied.length ? ` (${result.applied.map((m) => m.name).join(', ')})` : ''}, ` +
          `${result.alreadyApplied} already applied; ` +
          `${result.viewsApplied.length ? `views re-created: ${result.viewsApplied.join(', ')}` : 'views up to date'}\n`,
      );
    } finally {
      await store.close();
    }
  },
};
