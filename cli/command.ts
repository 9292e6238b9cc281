import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { ConfigError } from '../server/config.js';
import { TimeArgumentError } from '../server/time.js';

/**
 * A `routewatch` command: its usage text and options, parsed before anything runs, so that
 * `--help` never starts, opens or writes anything.
 *
 * Exit codes: 0 success; 1 a runtime failure (nothing listening, a store error, a failed check);
 * 2 a usage or configuration error (unknown option, bad value, bad environment variable).
 */
export interface Command<V> {
  name: string;
  summary: string;
  /** The usage text printed by --help, from the first line after the summary. */
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /**
   * Positional arguments allowed: none unless given. `literal` picks out an argument that starts
   * with `--` yet is no option (a SQL query that opens with a `--` comment): it is taken as a
   * positional instead of refused as an unknown option.
   */
  positionals?: { min: number; max: number; name: string; literal?: (arg: string) => boolean };
  run(values: V, positionals: string[]): Promise<number | void>;
}

export class UsageError extends Error {
  readonly code = 'USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Exit code for an error: 2 for usage and configuration, 1 for anything at run time. */
export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError ||
    error instanceof ConfigError ||
    error instanceof TimeArgumentError
    ? EXIT.usage
    : EXIT.failure;
}

export function helpText(command: Command<unknown>): string {
  return `routewatch ${command.name} — ${command.summary}\n\n${command.usage.trim()}\n`;
}

/** Parses a command's arguments; `--help`/`-h` anywhere prints its usage and runs nothing. */
export function parseCommandArgs(
  command: Command<unknown>,
  args: string[],
): { help: true } | { help: false; values: Record<string, unknown>; positionals: string[] } {
  if (args.includes('--help') || args.includes('-h')) return { help: true };
  const literal = command.positionals?.literal;
  let parsed;
  try {
    parsed = parseArgs({
      args: literal ? literalsAsPositionals(args, literal) : args,
      options: command.options,
      allowPositionals: command.positionals !== undefined,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(
      `${(error as Error).message.replace(/\. To specify a positional.*$/s, '')}\n\n` +
        `Usage: see \`routewatch ${command.name} --help\``,
    );
  }
  const positionals = parsed.positionals;
  const rule = command.positionals;
  if (rule && (positionals.length < rule.min || positionals.length > rule.max)) {
    throw new UsageError(
      `routewatch ${command.name} takes ${rule.min === rule.max ? rule.min : `${rule.min} to ${rule.max}`} ${rule.name} argument(s), got ${positionals.length}: see \`routewatch ${command.name} --help\``,
    );
  }
  return { help: false, values: parsed.values as Record<string, unknown>, positionals };
}

/**
 * Moves the arguments `literal` accepts from before the first `--` to just after it, where
 * parseArgs takes every argument as a positional; the options keep their place.
 */
function literalsAsPositionals(args: string[], literal: (arg: string) => boolean): string[] {
  const end = args.indexOf('--');
  const head = end === -1 ? args : args.slice(0, end);
  const tail = end === -1 ? [] : args.slice(end + 1);
  const literals = head.filter(literal);
  if (literals.length === 0) return args;
  return [...head.filter((arg) => !literal(arg)), '--', ...literals, ...tail];
}

/** A whole number option, with the option named in the error. */
export function integerOption(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number ≥ ${min}, got ${JSON.stringify(text)}`);
  return n;
}

export function numberOption(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min)
    throw new UsageError(`--${name} must be a number ≥ ${min}, got ${JSON.stringify(text)}`);
  return n;
}
