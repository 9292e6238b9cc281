import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

/**
 * A bench's command line: `parseArgs` with `--help` (prints the usage, exits 0) and, for an
 * unknown or malformed option, the parser's message and the usage on stderr with exit code 2,
 * the codes the `routewatch` commands use, instead of a stack trace.
 */
export function benchArgs<T extends ParseArgsConfig>(
  config: T,
  usage: string,
): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw error;
    console.error(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
}
