/**
 * Self time per function and per package from a V8 `.cpuprofile`, and bytes allocated per function
 * from a sampling heap profile (pure; no I/O).
 */

export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface SelfTime {
  /** `function (file:line)`, file relative to node_modules or to the repo. */
  location: string;
  /** Where the function lives: our package, an npm package, node itself, or a V8 pseudo-node. */
  owner: string;
  micros: number;
  share: number;
}

/** Our instrumentation package, wherever it is loaded from (workspace link or node_modules). */
const OUR_CODE = /\/instrumentation\/dist\/|@routewatch\/instrumentation\//;

export function ownerOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (OUR_CODE.test(url)) return '@routewatch/instrumentation';
  if (url.startsWith('node:')) return 'node';
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (inModules?.[1] !== undefined) {
    // Nested copies (a package's own @opentelemetry/instrumentation) count as that package.
    const last = [...url.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].at(-1);
    return last?.[1] ?? inModules[1];
  }
  if (url.includes('/dist/bench/')) return 'bench';
  return url;
}

export function shortLocation(frame: CallFrame): string {
  const file = frame.url
    .replace(/^file:\/\//, '')
    .replace(/.*node_modules\//, '')
    .replace(/.*\/instrumentation\/dist\//, 'instrumentation/dist/');
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  return file === '' ? name : `${name} (${file}:${frame.lineNumber + 1})`;
}

/** Self time of every function, largest first; samples are weighted by their time delta. */
export function selfTimes(profile: CpuProfile): SelfTime[] {
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byLocation = new Map<string, { owner: string; micros: number }>();
  let total = 0;
  profile.samples.forEach((nodeId, index) => {
    const frame = frames.get(nodeId);
    // V8 stores each sample's delta on the sample after it began; using the next one is exact.
    const micros = profile.timeDeltas[index + 1] ?? 0;
    if (frame === undefined || frame.functionName === '(idle)') return;
    total += micros;
    const location = shortLocation(frame);
    const entry = byLocation.get(location) ?? {
      owner: ownerOf(frame.url, frame.functionName),
      micros: 0,
    };
    entry.micros += micros;
    byLocation.set(location, entry);
  });
  return [...byLocation.entries()]
    .map(([location, { owner, micros }]) => ({ location, owner, micros, share: micros / total }))
    .sort((a, b) => b.micros - a.micros);
}

/** Self time summed per owner (package), largest first. */
export function selfTimeByOwner(times: readonly SelfTime[]): { owner: string; share: number }[] {
  const byOwner = new Map<string, number>();
  for (const time of times) byOwner.set(time.owner, (byOwner.get(time.owner) ?? 0) + time.share);
  return [...byOwner.entries()]
    .map(([owner, share]) => ({ owner, share }))
    .sort((a, b) => b.share - a.share);
}

/** A sampling heap profile (`HeapProfiler.stopSampling`): a tree of call frames with bytes. */
export interface HeapProfile {
  head: HeapNode;
}

interface HeapNode {
  callFrame: CallFrame;
  /** Bytes sampled as allocated in this frame itself. */
  selfSize: number;
  children: HeapNode[];
}

export interface AllocationSite {
  location: string;
  owner: string;
  bytes: number;
  share: number;
}

/** Bytes allocated by each function itself, largest first. */
export function allocationSites(profile: HeapProfile): AllocationSite[] {
  const byLocation = new Map<string, { owner: string; bytes: number }>();
  let total = 0;
  const stack = [profile.head];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    stack.push(...node.children);
    if (node.selfSize === 0) continue;
    total += node.selfSize;
    const location = shortLocation(node.callFrame);
    const entry = byLocation.get(location) ?? {
      owner: ownerOf(node.callFrame.url, node.callFrame.functionName),
      bytes: 0,
    };
    entry.bytes += node.selfSize;
    byLocation.set(location, entry);
  }
  return [...byLocation.entries()]
    .map(([location, { owner, bytes }]) => ({ location, owner, bytes, share: bytes / total }))
    .sort((a, b) => b.bytes - a.bytes);
}
