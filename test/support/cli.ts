import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, runNode } from './child-process.js';
import type { ChildRun, RunNodeOptions } from './child-process.js';

/** The built CLI (`npm test` builds first), run as a user runs it. */
export const CLI = join(REPO_ROOT, 'dist/cli/main.js');

/** Runs `routewatch <args>` to its exit. The child sees PATH and `env` only. */
export function runCli(args: string[], options: RunNodeOptions = {}): Promise<ChildRun> {
  return runNode([CLI, ...args], options);
}

export interface StartedInstance {
  /** Where it listens, read from its banner, e.g. http://127.0.0.1:43121 */
  url: string;
  output(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

/**
 * `routewatch start` as a child process on an ephemeral port, resolved once its banner says where
 * it listens. The child sees PATH and `env` only.
 */
export async function startInstance(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<StartedInstance> {
  const child = spawn(process.execPath, [CLI, 'start'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      ROUTEWATCH_PORT: '0',
      ROUTEWATCH_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`routewatch start printed no banner within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const look = () => {
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`routewatch start exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    url,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
