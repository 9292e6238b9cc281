/**
 * A Dockerfile read into its instructions, enough to check its build steps against the
 * repository without a Docker engine: line continuations joined, comments dropped, exec-form
 * (JSON array) arguments parsed. Pure.
 */
export interface DockerInstruction {
  /** Upper case: FROM, COPY, RUN, CMD, … */
  keyword: string;
  /** The text after the keyword. */
  text: string;
  /** The arguments: the JSON array of the exec form, else the words (flags included). */
  args: string[];
}

export function parseDockerfile(source: string): DockerInstruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of source.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && /^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  return logical.map((line) => {
    const match = /^(\S+)\s*(.*)$/.exec(line)!;
    const text = match[2]!;
    let args: string[];
    if (text.startsWith('[')) {
      args = JSON.parse(text) as string[];
    } else {
      args = text.split(/\s+/).filter((word) => word !== '');
    }
    return { keyword: match[1]!.toUpperCase(), text, args };
  });
}
