import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Child-process runs of Node apps: the drop-in, register and CLI tests start real processes. */

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The built `register` entry (`--import` it); `npm test` builds it first (`pretest`). */
export const REGISTER_PATH = join(REPO_ROOT, 'instrumentation/dist/register.js');
export const FIXTURES = join(REPO_ROOT, 'test/fixtures');

/** Fails early with the command to run when the instrumentation has not been built. */
export function requireBuiltInstrumentation(): void {
  if (!existsSync(REGISTER_PATH)) {
    throw new Error('instrumentation/dist is missing: run `npx tsc -b instrumentation` first');
  }
}

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunNodeOptions {
  /** The child's whole environment besides PATH: nothing of the test process leaks in. */
  env?: Record<string, string>;
  cwd?: string;
  /** SIGKILL after this long; default 30 s. */
  timeoutMs?: number;
  /** Called with each stdout chunk, e.g. to signal the child once it says it is ready. */
  onStdout?: (text: string, child: ChildProcess) => void;
}

/** Runs `node <args>` to its exit and resolves with its exit code, signal and output. */
export function runNode(args: string[], options: RunNodeOptions = {}): Promise<ChildRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { PATH: process.env['PATH'] ?? '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stdout += text;
      options.onStdout?.(text, child);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}
