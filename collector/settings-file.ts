import { parse } from 'yaml';
import type { z } from 'zod';

/**
 * Reading the user's settings files (ROUTEWATCH_PRICES, ROUTEWATCH_MAPPING): YAML, of which JSON is
 * a subset, so either works. Pure: the caller reads the file. Every problem is reported with where
 * in the file it is, and the caller names the variable and the path.
 */
export class SettingsFileError extends Error {
  readonly code = 'BAD_SETTINGS_FILE';
  constructor(message: string) {
    super(message);
    this.name = 'SettingsFileError';
  }
}

/** Parses `text` as YAML (or JSON) and checks it against `schema`. */
export function parseSettingsFile<T>(text: string, schema: z.ZodType<T>): T {
  let data: unknown;
  try {
    // `uniqueKeys` (default) refuses a key given twice: in a price file that is a mistake.
    data = parse(text, { prettyErrors: true });
  } catch (error) {
    throw new SettingsFileError(`not valid YAML or JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(data ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`,
    );
    throw new SettingsFileError(lines.join('; '));
  }
  return parsed.data;
}
