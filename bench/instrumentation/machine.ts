/** The machine and software a run was measured on, printed with its figures. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export const MEASURED_PACKAGES = [
  'openai',
  '@routewatch/instrumentation',
  '@opentelemetry/instrumentation-openai',
  '@traceloop/instrumentation-openai',
  '@arizeai/openinference-instrumentation-openai',
  '@opentelemetry/sdk-trace-node',
  '@opentelemetry/exporter-trace-otlp-http',
] as const;

/** A package's version, found from its entry point (some, like openai, do not export package.json). */
export function packageVersion(name: string): string {
  try {
    let dir = dirname(require.resolve(name));
    for (;;) {
      try {
        const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (manifest.name === name) return manifest.version ?? 'unknown';
      } catch {
        // no package.json at this level: keep climbing
      }
      const parent = dirname(dir);
      if (parent === dir) return 'not found';
      dir = parent;
    }
  } catch {
    return 'not installed';
  }
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function gitRevision(): string {
  try {
    const revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
    const dirty = execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8' }).trim();
    return `${revision.trim()}${dirty === '' ? '' : ' (uncommitted changes in the tree)'}`;
  } catch {
    return 'unknown';
  }
}

export function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

export function describeMachine(): string[] {
  return [
    `cpu: ${cpuModel()} · nproc ${availableParallelism()} · ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node ${process.version} · ${process.platform}/${process.arch} · repo ${gitRevision()}`,
    `packages: ${MEASURED_PACKAGES.map((name) => `${name}@${packageVersion(name)}`).join(', ')}`,
  ];
}
