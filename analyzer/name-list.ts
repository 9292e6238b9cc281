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
