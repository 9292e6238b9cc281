/**
 * Cohort, route, service and policy names written as one text, as the query strings, the CLI's
 * options and the dashboard's filter fields take them: comma-separated, with `\,` for a comma
 * inside a name and `\\` for a backslash. Names come from span attributes and may hold either.
 * Pure: the server and the dashboard in the browser share it.
 */

/** The names in `text`; items are trimmed, empty items dropped. */
export function splitNames(text: string): string[] {
  const names: string[] = [];
  let name = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && (text[i + 1] === ',' || text[i + 1] === '\\')) {
      name += text[++i];
    } else if (c === ',') {
      names.push(name);
      name = '';
    } else {
      name += c;
    }
  }
  names.push(name);
  return names.map((n) => n.trim()).filter((n) => n !== '');
}

/** One name as splitNames reads it back. */
export function escapeName(name: string): string {
  return name.replaceAll('\\', '\\\\').replaceAll(',', '\\,');
}

/** Names as one text that splitNames reads back. */
export function joinNames(names: readonly string[], separator = ','): string {
  return names.map(escapeName).join(separator);
}

/** Right-to-left letters (Hebrew, Arabic, …) and the bidirectional controls. */
const BIDI = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/**
 * A name set in text of ours, isolated (U+2068 … U+2069) when it holds right-to-left letters or
 * bidirectional controls: else a Hebrew reason reorders the figures after it, and a name holding
 * U+202E turns `95.0% → 40.0%` into `%0.04 → %0.59`. Other names are left as they are.
 */
export function isolate(name: string): string {
  return BIDI.test(name) ? `\u2068${name}\u2069` : name;
}
