import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { Validator } from '@cfworker/json-schema';
import type { Schema } from '@cfworker/json-schema';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, parseSettings } from '../../server/config.js';
import { REPO_ROOT } from '../support/child-process.js';
import { parseDockerfile } from '../support/dockerfile.js';

// docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here): the
// compose file against the Compose Specification's JSON schema (vendored in
// test/fixtures/compose-spec/, see its README), the Dockerfile's steps against the repository.

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const compose = parse(read('docker-compose.yml')) as {
  services: Record<string, Record<string, unknown>>;
  volumes?: Record<string, unknown>;
};
const dockerfile = parseDockerfile(read('Dockerfile'));

describe('docker-compose.yml', () => {
  const schema = JSON.parse(read('test/fixtures/compose-spec/compose-spec.schema.json')) as Schema;

  it('is valid against the Compose Specification schema', () => {
    const result = new Validator(schema, '7', false).validate(compose);
    expect(result.errors.map((e) => `${e.instanceLocation}: ${e.error}`)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('would be caught by the schema if it were wrong (the check can fail)', () => {
    const validator = new Validator(schema, '7', false);
    const routewatch = compose.services['routewatch']!;
    const broken = [
      { ...compose, services: { ...compose.services, routewatch: { ...routewatch, restart: 7 } } },
      { ...compose, services: { ...compose.services, routewatch: { ...routewatch, portz: [] } } },
      { ...compose, servics: {} },
    ];
    for (const candidate of broken) expect(validator.validate(candidate).valid).toBe(false);
  });

  it('builds routewatch from this repository and sets only settings that exist', () => {
    const routewatch = compose.services['routewatch']!;
    expect(routewatch['build']).toBe('.');
    expect(existsSync(join(REPO_ROOT, 'Dockerfile'))).toBe(true);
    const settings = Object.keys(configSchema.shape);
    const environment = Object.keys(routewatch['environment'] as Record<string, unknown>);
    expect(environment.filter((name) => !settings.includes(name))).toEqual([]);
    const port = String((routewatch['environment'] as Record<string, unknown>)['ROUTEWATCH_PORT']);
    expect(routewatch['ports']).toEqual([`${port}:${port}`]);
    const exposed = dockerfile.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args);
    expect(exposed).toContain(port);
  });

  it('keeps the write-ahead log on a named volume, so that recreating the container keeps the spans in it', () => {
    const routewatch = compose.services['routewatch']!;
    const environment = Object.fromEntries(
      Object.entries(routewatch['environment'] as Record<string, unknown>).map(([k, v]) => [
        k,
        String(v),
      ]),
    );
    // Where routewatch puts the log (server/start.ts, walDir), inside the image's working dir.
    const settings = parseSettings(
      ['ROUTEWATCH_WAL', 'ROUTEWATCH_WAL_DIR', 'ROUTEWATCH_DATA_DIR'],
      environment,
    );
    expect(settings.ROUTEWATCH_WAL).toBe('on');
    const runStage = dockerfile.slice(dockerfile.map((i) => i.keyword).lastIndexOf('FROM'));
    const workdir = [...runStage].reverse().find((i) => i.keyword === 'WORKDIR')?.args[0] ?? '/';
    const wal = posix.resolve(
      workdir,
      settings.ROUTEWATCH_WAL_DIR ?? posix.join(settings.ROUTEWATCH_DATA_DIR, 'wal'),
    );
    const named = Object.keys(compose.volumes ?? {});
    const holding = mountsOf(routewatch).filter(
      (mount) =>
        named.includes(mount.source) &&
        (wal === mount.target || wal.startsWith(`${mount.target.replace(/\/$/, '')}/`)),
    );
    expect([wal, holding.length]).toEqual([wal, 1]);
    // A new named volume takes its owner from the image's directory: an image that runs as
    // another user than root must make the directory, owned by that user, before switching.
    const users = runStage.filter((i) => i.keyword === 'USER');
    expect(users.map((i) => i.args[0])).toEqual(['node']);
    const before = runStage.slice(0, runStage.indexOf(users[0]!));
    const made = before.filter(
      (i) =>
        i.keyword === 'RUN' &&
        new RegExp(`mkdir -p [^&]*${wal}`).test(i.args.join(' ')) &&
        /chown -R node:node \/var\/lib\/routewatch\b/.test(i.args.join(' ')) &&
        wal.startsWith('/var/lib/routewatch/'),
    );
    expect([wal, made.length]).toEqual([wal, 1]);
  });
});

/** A service's volumes as `{ source, target }`, from the short (`a:b[:ro]`) or the long syntax. */
function mountsOf(service: Record<string, unknown>): { source: string; target: string }[] {
  return ((service['volumes'] ?? []) as (string | { source?: string; target: string })[]).map(
    (volume) => {
      if (typeof volume !== 'string') return { source: volume.source ?? '', target: volume.target };
      const [source = '', target = ''] = volume.split(':');
      return { source, target };
    },
  );
}

/** Entries of the repository a COPY source with `*` names (within one path segment, as Docker). */
function globMatches(source: string): string[] {
  const dir = source.includes('/') ? source.slice(0, source.lastIndexOf('/')) : '.';
  const name = source.slice(source.lastIndexOf('/') + 1);
  const pattern = new RegExp(
    `^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`,
  );
  return existsSync(join(REPO_ROOT, dir))
    ? readdirSync(join(REPO_ROOT, dir)).filter((entry) => pattern.test(entry))
    : [];
}

describe('Dockerfile', () => {
  it('copies only sources that exist in the build context and are not ignored', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    const copies = dockerfile.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const words = copy.args.filter((word) => !word.startsWith('--'));
      // A copy from an earlier stage names that stage's files, not the build context's.
      if (copy.args.some((word) => word.startsWith('--from'))) continue;
      for (const source of words.slice(0, -1)) {
        const found = source.includes('*')
          ? globMatches(source).length > 0
          : existsSync(join(REPO_ROOT, source));
        expect([copy.text, source, found]).toEqual([copy.text, source, true]);
        expect(ignored).not.toContain(source);
      }
    }
  });

  it('copies from earlier stages only, by name, and only what their build step makes', () => {
    const stages: string[] = [];
    for (const instruction of dockerfile) {
      if (instruction.keyword === 'FROM') {
        const as = instruction.args.findIndex((word) => word.toUpperCase() === 'AS');
        stages.push(as >= 0 ? instruction.args[as + 1]! : '');
        continue;
      }
      const from = instruction.args.find((word) => word.startsWith('--from='));
      if (instruction.keyword !== 'COPY' || !from) continue;
      const stage = from.slice('--from='.length);
      // A stage defined above this one (not the current one, not an image).
      expect(stages.slice(0, -1)).toContain(stage);
      const sources = instruction.args.filter((word) => !word.startsWith('--')).slice(0, -1);
      // Built output: the root's dist, or a workspace's.
      for (const source of sources) expect(source).toMatch(/^\/app\/(instrumentation\/)?dist$/);
    }
    // The image that runs installs production dependencies only.
    const lastStage = dockerfile.slice(dockerfile.map((i) => i.keyword).lastIndexOf('FROM'));
    const install = lastStage.find((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.text));
    expect(install?.text).toMatch(/--omit=dev/);
    expect(lastStage.some((i) => i.keyword === 'COPY' && i.args.includes('sql'))).toBe(true);
  });

  it('runs a file that its build step produces from a source in the repository', () => {
    const build = dockerfile.find((i) => i.keyword === 'RUN' && /\btsc -b\b/.test(i.text));
    expect(build).toBeDefined();
    const tsconfig = JSON.parse(read('tsconfig.json')) as {
      compilerOptions: { outDir: string; rootDir: string };
      include: string[];
    };
    const command = [...dockerfile]
      .reverse()
      .find((i) => i.keyword === 'CMD' || i.keyword === 'ENTRYPOINT')!;
    expect(command.args[0]).toBe('node');
    // Node's own options come before the script; this Node must accept them.
    const at = command.args.findIndex((arg, i) => i > 0 && !arg.startsWith('-'));
    const nodeOptions = command.args.slice(1, at);
    expect(() =>
      execFileSync(process.execPath, [...nodeOptions, '-e', '0'], { stdio: 'pipe' }),
    ).not.toThrow();
    const script = command.args[at]!;
    const outDir = `${tsconfig.compilerOptions.outDir}/`;
    expect(script.startsWith(outDir)).toBe(true);
    const source = script.slice(outDir.length).replace(/\.js$/, '.ts');
    expect(tsconfig.include).toContain(source.split('/')[0]);
    expect(existsSync(join(REPO_ROOT, tsconfig.compilerOptions.rootDir, source))).toBe(true);
    // The build context copies the whole repository after npm ci: dist is built, not copied.
    expect(read('.dockerignore')).toMatch(/^dist$/m);
  });

  it('builds the dashboard it serves, with the script the repository builds it with', () => {
    const build = dockerfile.find(
      (i) => i.keyword === 'RUN' && /\bnode scripts\/build-dashboard\.mjs\b/.test(i.text),
    );
    expect(build?.text).toMatch(/\btsc -b \. dashboard\b/);
    expect(existsSync(join(REPO_ROOT, 'scripts/build-dashboard.mjs'))).toBe(true);
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> })
      .scripts;
    expect(scripts['build']).toBe('tsc -b . dashboard && node scripts/build-dashboard.mjs');
  });

  it('uses a Node version that the engines field accepts', () => {
    const from = dockerfile.find((i) => i.keyword === 'FROM')!;
    const major = Number(/^node:(\d+)/.exec(from.args[0]!)?.[1]);
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines
      .node;
    const minimum = Number(/^>=\s*(\d+)/.exec(engines)?.[1]);
    expect(Number.isInteger(major)).toBe(true);
    expect(major).toBeGreaterThanOrEqual(minimum);
  });
});
