import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './child-process.js';

/**
 * The Markdown files of the repository (README, docs/, the packages' and folders' READMEs) and
 * their fenced shell blocks, each with how it is run:
 *
 * - `sh`                 in an empty temporary directory, `routewatch` on the PATH;
 * - `sh repo`            in the repository (read-only commands only);
 * - `sh instance`        against a routewatch the test starts: its URL replaces
 *                        `http://127.0.0.1:4318` and is ROUTEWATCH_URL;
 * - `sh stopped`         in the directory of that instance once it has stopped (data in
 *                        `./.routewatch`), in the order they appear;
 * - `sh skip: <reason>`  not run, for the reason given.
 */
export const BLOCK_MODES = ['plain', 'repo', 'instance', 'stopped', 'skip'] as const;
export type BlockMode = (typeof BLOCK_MODES)[number];

export interface ShellBlock {
  /** Path from the repository root, and the line of the opening fence. */
  file: string;
  line: number;
  mode: BlockMode | 'unknown';
  /** The info string after the language word. */
  info: string;
  skipReason?: string;
  script: string;
}

const SKIPPED_DIRS = new Set([
  'node_modules',
  'dist',
  '.git',
  '.routewatch',
  '.scratch',
  'coverage',
]);

export function markdownFiles(dir = REPO_ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      if (entry.isDirectory())
        return SKIPPED_DIRS.has(entry.name) ? [] : markdownFiles(join(dir, entry.name));
      return entry.name.endsWith('.md') ? [join(dir, entry.name)] : [];
    })
    .sort();
}

const FENCE = /^```(sh|bash|shell|console)([^\n]*)\n([\s\S]*?)^```$/gm;

export function shellBlocks(): ShellBlock[] {
  return markdownFiles().flatMap((path) => {
    const text = readFileSync(path, 'utf8');
    return [...text.matchAll(FENCE)].map((match): ShellBlock => {
      const info = match[2]!.trim();
      const line = text.slice(0, match.index).split('\n').length;
      const file = relative(REPO_ROOT, path);
      const script = match[3]!;
      if (info === '') return { file, line, mode: 'plain', info, script };
      const skip = /^skip:\s*(.*)$/.exec(info);
      if (skip) return { file, line, mode: 'skip', info, skipReason: skip[1]!.trim(), script };
      const mode = (['repo', 'instance', 'stopped'] as const).find((m) => m === info);
      return { file, line, mode: mode ?? 'unknown', info, script };
    });
  });
}
