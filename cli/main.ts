#!/usr/bin/env node
import type { Command } from './command.js';
import { EXIT, UsageError, exitCodeOf, helpText, parseCommandArgs } from './command.js';
import { adviceCommand } from './commands/advice.js';
import { alertsCommand } from './commands/alerts.js';
import { demoCommand } from './commands/demo.js';
import { evaluateCommand } from './commands/evaluate.js';
import { gateCommand } from './commands/gate.js';
import { migrateCommand } from './commands/migrate.js';
import { reportCommand } from './commands/report.js';
import { silenceCommand } from './commands/silence.js';
import { sqlCommand } from './commands/sql.js';
import { startCommand } from './commands/start.js';

const COMMANDS = [
  startCommand,
  demoCommand,
  reportCommand,
  alertsCommand,
  evaluateCommand,
  silenceCommand,
  gateCommand,
  adviceCommand,
  migrateCommand,
  sqlCommand,
] as Command<unknown>[];

const HELP = `routewatch — is your LLM routing still saving money?

Usage: routewatch <command> [options]     (routewatch <command> --help for its options)

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Exit codes: 0 success, 1 a runtime failure, 2 a usage or configuration error;
\`routewatch gate\` also 1 when a cohort fails and 3 on insufficient data.
Configuration is by environment (ROUTEWATCH_*, CLICKHOUSE_URL); see docs/operating.md.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}\n\n${HELP}`);
  const parsed = parseCommandArgs(command, rest);
  if (parsed.help) {
    process.stdout.write(helpText(command));
    return EXIT.ok;
  }
  return (await command.run(parsed.values, parsed.positionals)) ?? EXIT.ok;
}

// `routewatch sql … | head` closes the pipe early: that is the reader's choice, not a failure.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.ok);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`routewatch: ${message}\n`);
    process.exit(exitCodeOf(error));
  },
);
