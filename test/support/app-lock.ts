import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * A package-lock.json for a small app that depends on a packed tarball and a few registry
 * packages, cut from the repository's own lock: the same versions, `resolved` URLs and integrity
 * hashes. `npm ci --offline` then installs it from the npm cache the repository's `npm ci`
 * filled, with no network — `npm install --offline` cannot, as it needs the registry's package
 * documents, which `npm ci` never caches.
 */
interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  peer?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

interface Lock {
  name?: string;
  lockfileVersion: number;
  requires?: boolean;
  packages: Record<string, LockEntry>;
}

export interface AppLockInput {
  /** The repository's package-lock.json. */
  repoLock: string;
  /** Where the packed package lives in the repository (a workspace folder), e.g. `instrumentation`. */
  workspace: string;
  /** The tarball, and its path as the app's package.json names it (`file:…`). */
  tarball: { path: string; spec: string; manifest: Record<string, unknown> };
  /** Registry packages the app depends on, by name: taken at the repository's version. */
  registry: string[];
}

/** The package-lock entry that `name` resolves to from `from`, as Node would find it. */
function resolveFrom(lock: Lock, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut === -1 ? '' : base.slice(0, cut);
  }
}

export function appLock(input: AppLockInput): { packageJson: object; lock: Lock } {
  const repo = JSON.parse(readFileSync(input.repoLock, 'utf8')) as Lock;
  const name = input.tarball.manifest['name'] as string;
  const packedAt = `node_modules/${name}`;
  // The workspace's own nested packages sit under the installed package in the app.
  const toApp = (path: string) =>
    path === input.workspace || path.startsWith(`${input.workspace}/`)
      ? packedAt + path.slice(input.workspace.length)
      : path;
  const packages: Record<string, LockEntry> = {};
  const queue: { from: string; deps: Record<string, string>; optional: Set<string> }[] = [];
  const manifest = input.tarball.manifest as LockEntry;
  queue.push({
    from: input.workspace,
    deps: { ...manifest.dependencies, ...manifest.peerDependencies },
    optional: new Set(),
  });
  const appDependencies: Record<string, string> = { [name]: input.tarball.spec };
  for (const registryName of input.registry) {
    const at = resolveFrom(repo, '', registryName);
    if (!at) throw new Error(`${registryName} is not in the repository's lock`);
    appDependencies[registryName] = repo.packages[at]!.version!;
    queue.push({ from: '', deps: { [registryName]: '*' }, optional: new Set() });
  }
  while (queue.length > 0) {
    const { from, deps, optional } = queue.shift()!;
    for (const dep of Object.keys(deps)) {
      const at = resolveFrom(repo, from, dep);
      if (!at) {
        if (optional.has(dep)) continue;
        throw new Error(`${dep} (needed by ${from || 'the app'}) is not in the repository's lock`);
      }
      const target = toApp(at);
      if (packages[target]) continue;
      const entry: LockEntry = { ...repo.packages[at]! };
      if (entry.link) throw new Error(`${dep} is a workspace link in the repository's lock`);
      for (const flag of ['dev', 'devOptional', 'peer'] as const) delete entry[flag];
      packages[target] = entry;
      const optionalPeers = Object.entries(entry.peerDependenciesMeta ?? {})
        .filter(([, meta]) => meta.optional === true)
        .map(([peer]) => peer);
      const requiredPeers = Object.fromEntries(
        Object.entries(entry.peerDependencies ?? {}).filter(
          ([peer]) => !optionalPeers.includes(peer),
        ),
      );
      queue.push({
        from: at,
        deps: { ...entry.dependencies, ...entry.optionalDependencies, ...requiredPeers },
        optional: new Set(Object.keys(entry.optionalDependencies ?? {})),
      });
    }
  }
  const integrity = `sha512-${createHash('sha512').update(readFileSync(input.tarball.path)).digest('base64')}`;
  packages[packedAt] = {
    version: manifest['version'] as string,
    resolved: input.tarball.spec,
    integrity,
    ...(manifest.dependencies ? { dependencies: manifest.dependencies } : {}),
    ...(manifest.peerDependencies ? { peerDependencies: manifest.peerDependencies } : {}),
    ...(manifest['engines'] ? { engines: manifest['engines'] } : {}),
  };
  const packageJson = { name: 'app', private: true, type: 'module', dependencies: appDependencies };
  packages[''] = { name: 'app', dependencies: appDependencies };
  const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a < b ? -1 : 1)));
  return {
    packageJson,
    lock: { name: 'app', lockfileVersion: 3, requires: true, packages: sorted },
  };
}
