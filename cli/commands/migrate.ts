import type { Command } from '../command.js';
import { parseConfig } from '../../server/config.js';
import { unstoredLogWarning } from '../unstored-log.js';

export const migrateCommand: Command<Record<string, never>> = {
  name: 'migrate',
  summary: 'apply schema migrations and views (CLICKHOUSE_URL or the data directory)',
  usage: `
Usage: routewatch migrate

Applies the numbered table migrations not yet applied, then the views, to the ClickHouse server
CLICKHOUSE_URL names, or else to the embedded data directory ROUTEWATCH_DATA_DIR (./.routewatch),
which no running routewatch may hold; sets the retention (ROUTEWATCH_RETENTION_DAYS,
ROUTEWATCH_ROLLUP_RETENTION_DAYS); then brings the rollups up to date (after an upgrade: builds
them from the stored spans). With ROUTEWATCH_CLICKHOUSE_CLUSTER, the DDL runs ON CLUSTER.
\`routewatch start\` does this by itself at start.
`,
  options: {},
  async run() {
    const config = parseConfig();
    const { openStore } = await import('../../storage/open-store.js');
    const { migrate, newerSchemaNotice } = await import('../../storage/migrations.js');
    const { applyRetention, refreshRollups } = await import('../../storage/rollups.js');
    const { retentionSettings, walDir } = await import('../../server/start.js');
    const store = await openStore({
      clickhouseUrl: config.CLICKHOUSE_URL,
      dataDir: config.ROUTEWATCH_DATA_DIR,
    });
    try {
      const cluster = config.ROUTEWATCH_CLICKHOUSE_CLUSTER;
      const result = await migrate(store, undefined, undefined, { cluster });
      process.stdout.write(
        `${store.location}: applied ${result.applied.length} migration(s)` +
          `${result.applied.length ? ` (${result.applied.map((m) => m.name).join(', ')})` : ''}, ` +
          `${result.alreadyApplied} already applied; ` +
          `${
            result.newer.length > 0
              ? 'views left as the newer version made them'
              : result.viewsApplied.length
                ? `views re-created: ${result.viewsApplied.join(', ')}`
                : 'views up to date'
          }\n`,
      );
      const notice = newerSchemaNotice(result.newer);
      if (notice !== undefined) process.stderr.write(`routewatch: warning: ${notice}\n`);
      const ttls =
        notice === undefined
          ? await applyRetention(store, retentionSettings(config), { cluster })
          : [];
      if (ttls.length > 0) process.stdout.write(`retention set on ${ttls.join(', ')}\n`);
      const rollups = await refreshRollups(store);
      process.stdout.write(
        `rollups: ${rollups.tasks} task(s) changed, ${rollups.hours} hour(s) rebuilt in ${rollups.durationMs} ms\n`,
      );
      // The log `routewatch start` would drain, with this environment.
      const warning = await unstoredLogWarning(walDir(config), 'the rollups above leave them out');
      if (warning !== undefined) process.stderr.write(`routewatch: ${warning}`);
    } finally {
      await store.close();
    }
  },
};
