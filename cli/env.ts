import { isIP } from 'node:net';
import { z } from 'zod';

const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

/** Configuration from the environment, parsed once at start; a bad value names its variable. */
export const envSchema = z.object({
  ROUTEWATCH_HOST: z.preprocess(emptyAsUndefined, z.string().default('127.0.0.1')),
  ROUTEWATCH_PORT: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(0).max(65_535).default(4318),
  ),
  ROUTEWATCH_DATA_DIR: z.preprocess(emptyAsUndefined, z.string().default('./.routewatch')),
  ROUTEWATCH_TOKEN: z.preprocess(
    emptyAsUndefined,
    z.string().min(16, 'use at least 16 characters').optional(),
  ),
  ROUTEWATCH_LOG_LEVEL: z.preprocess(
    emptyAsUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  CLICKHOUSE_URL: z.preprocess(emptyAsUndefined, z.url({ protocol: /^https?$/ }).optional()),
});
export type Env = z.output<typeof envSchema>;

export class ConfigError extends Error {
  readonly code = 'BAD_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

const LOOPBACK_NAMES = new Set(['localhost', '::1', '[::1]']);

/** Whether `host` can only be reached from this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase();
  // A name such as 127.example.com resolves wherever its owner says: only real addresses count.
  return LOOPBACK_NAMES.has(name) || (isIP(name) === 4 && name.startsWith('127.'));
}
