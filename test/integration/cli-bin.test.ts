import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/child-process.js';
import type { ChildRun } from '../support/child-process.js';

// `routewatch` as a bin: the package's bin entry, `npx routewatch` in a clone, and every
// command's --help and exit codes, with the command list read from `routewatch --help` so a new
// command is covered as soon as it is listed.
const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function commandNames(): Promise<string[]> {
  const help = await runCli(['--help']);
  const list = /Commands:\n([\s\S]*?)\n\n/.exec(help.stdout)?.[1] ?? '';
  return list
    .split('\n')
    .map((line) => /^ {2}(\S+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

function runCommand(command: string, args: string[], env: Record<string, string>, cwd: string) {
  return new Promise<ChildRun>((done, fail) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('exit', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

describe('the routewatch bin', () => {
  it('is the package bin entry, a built file that starts with a node shebang', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(join(REPO_ROOT, pkg.bin['routewatch']!)).toBe(CLI);
    expect(readFileSync(CLI, 'utf8').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
  });

  it('runs as `npx routewatch` in the clone, offline, with an empty npm cache', async () => {
    const home = tempDir('routewatch-npx-home-');
    const run = await runCommand(
      'npx',
      ['--offline', 'routewatch', '--help'],
      {
        PATH: process.env['PATH'] ?? '',
        HOME: home,
        npm_config_cache: join(home, 'npm-cache'),
        npm_config_update_notifier: 'false',
      },
      REPO_ROOT,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^routewatch — [\s\S]*Commands:\n {2}start/);
  });

  it('lists every command, and the exit codes, for a bare `routewatch`', async () => {
    const names = await commandNames();
    expect(names).toEqual(
      expect.arrayContaining(['start', 'demo', 'report', 'migrate', 'sql', 'gate', 'advice']),
    );
    const bare = await runCli([]);
    expect(bare.code).toBe(0);
    expect(bare.stdout).toMatch(
      /Exit codes: 0 success, 1 a runtime failure, 2 a usage or configuration error;\n`routewatch gate` also 1 when a cohort fails and 3 on insufficient data\./,
    );
  });
});

describe('every command', () => {
  it('prints its usage for --help and -h, exits 0, and starts, opens and writes nothing', async () => {
    for (const command of await commandNames()) {
      for (const flag of ['--help', '-h']) {
        const cwd = tempDir('routewatch-help-');
        const help = await runCli([command, flag], { cwd, env: { ROUTEWATCH_PORT: '1' } });
        expect([command, flag, help.code, help.stderr]).toEqual([command, flag, 0, '']);
        expect(help.stdout).toMatch(
          new RegExp(`^routewatch ${command} — [\\s\\S]*Usage: routewatch ${command}`),
        );
        expect(readdirSync(cwd)).toEqual([]);
        expect(existsSync(join(cwd, '.routewatch'))).toBe(false);
      }
    }
  });

  it('exits 2 for an unknown option, naming it, before doing anything', async () => {
    for (const command of await commandNames()) {
      const cwd = tempDir('routewatch-usage-');
      const bad = await runCli([command, '--no-such-option'], { cwd });
      expect([command, bad.code]).toEqual([command, 2]);
      expect(bad.stderr).toMatch(/Unknown option '--no-such-option'/);
      expect(readdirSync(cwd)).toEqual([]);
    }
  });
});

describe('routewatch demo', () => {
  it('prints a progress line while the first half runs (it prints nothing else then), then the report', async () => {
    const demo = await runCli(['demo', '--tasks', '40', '--latency-scale', '0'], {
      timeoutMs: 90_000,
    });
    expect(demo.stderr).toBe('');
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(
      /Before: 20 tasks[^\n]*\n {2}tasks 5\/20 \(25%\)[^\n]*\n {2}tasks 10\/20 \(50%\)[^\n]*\n {2}tasks 15\/20 \(75%\)[^\n]*\n {2}tasks 20\/20 \(100%\)[^\n]*\nAfter:/,
    );
    expect(demo.stdout).toMatch(/Every cohort × route figure matches/);
  });
});
