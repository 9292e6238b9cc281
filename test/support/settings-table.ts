import { availableParallelism } from 'node:os';
import { configSchema } from '../../server/config.js';

/**
 * The settings of server/config.ts with their defaults as a user would type them, in schema
 * order: what docs/operating.md's table must list. A default that depends on the machine is
 * described instead, and checked against what the schema computes here.
 */
export interface SettingDefault {
  name: string;
  /** As typed in the environment (`5s`, `4318`, `127.0.0.1`), `unset`, or a description. */
  default: string;
}

const MiB = 1024 * 1024;

function duration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function bytes(n: number): string {
  if (n % (1024 * MiB) === 0) return `${n} (${n / (1024 * MiB)} GiB)`;
  if (n % MiB === 0) return `${n} (${n / MiB} MiB)`;
  return String(n);
}

/** Defaults the schema computes from the machine, with how the docs describe them. */
const COMPUTED: Record<string, { text: string; value: () => unknown }> = {
  ROUTEWATCH_INGEST_WORKERS: {
    text: 'CPUs − 1, from 1 to 4',
    value: () => Math.max(1, Math.min(4, availableParallelism() - 1)),
  },
};

export function settingDefaults(): SettingDefault[] {
  return Object.entries(configSchema.shape).map(([name, field]) => {
    const parsed = (
      field as { safeParse(v: unknown): { success: boolean; data?: unknown } }
    ).safeParse(undefined);
    if (!parsed.success) throw new Error(`${name} has no default: the schema refuses it unset`);
    const value = parsed.data;
    const computed = COMPUTED[name];
    if (computed) {
      if (value !== computed.value()) throw new Error(`${name}: the computed default changed`);
      return { name, default: computed.text };
    }
    if (value === undefined) return { name, default: 'unset' };
    if (typeof value === 'number') {
      // A duration reads `1m` as 60 000 ms (`1s` may be under its minimum).
      const minute = (
        field as { safeParse(v: unknown): { success: boolean; data?: unknown } }
      ).safeParse('1m');
      if (minute.success && minute.data === 60_000) return { name, default: duration(value) };
      return { name, default: name.endsWith('_BYTES') ? bytes(value) : String(value) };
    }
    return { name, default: String(value) };
  });
}
