/**
 * Cohort, route, service and policy names written as one text, as the query strings, the CLI's
 * options and the dashboard's filter fields take them: comma-separated, each name trimmed, with
 * `\,` for a comma inside a name, `\\` for a backslash and `\ ` for a space (or other white
 * space) that trimming keeps. Names come from span attributes and may hold any of them.
 * Pure: the server and the dashboard in the browser share it.
 */

const SPACE = /\s/;

/** The names in `text`; items are trimmed of white space not escaped, empty items dropped. */
export function splitNames(text: string): string[] {
  const names: string[] = [];
  let name = '';
  // Where the first escaped character of `name` is and where the last one ends: trimming stops
  // at them, so that escaped white space at either end is kept.
  let firstEscape = Infinity;
  let lastEscapeEnd = 0;
  const push = () => {
    const start = Math.min(name.length - name.trimStart().length, firstEscape);
    const end = Math.max(name.trimEnd().length, lastEscapeEnd);
    if (start < end) names.push(name.slice(start, end));
    name = '';
    firstEscape = Infinity;
    lastEscapeEnd = 0;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '\\' && next !== undefined && (next === ',' || next === '\\' || SPACE.test(next))) {
      firstEscape = Math.min(firstEscape, name.length);
      name += next;
      lastEscapeEnd = name.length;
      i++;
    } else if (c === ',') {
      push();
    } else {
      name += c;
    }
  }
  push();
  return names;
}

/** One name as splitNames reads it back. */
export function escapeName(name: string): string {
  const escaped = name.replaceAll('\\', '\\\\').replaceAll(',', '\\,');
  // White space at either end, which splitNames would trim, is escaped.
  const body = escaped.trim();
  if (body === escaped) return escaped;
  const start = escaped.length - escaped.trimStart().length;
  const lead = escaped.slice(0, start);
  const tail = escaped.slice(start + body.length);
  const keep = (spaces: string) => [...spaces].map((c) => `\\${c}`).join('');
  return `${keep(lead)}${body}${keep(tail)}`;
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
