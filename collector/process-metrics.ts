import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';

/**
 * The process's own figures for /metrics, under the names Prometheus' client libraries use for
 * them (`process_*`, `nodejs_*`), so the usual dashboards and alerts apply: memory, heap, CPU,
 * open files and event-loop delay. A collector that slowly leaks memory or descriptors, or whose
 * event loop stalls, shows it here before it shows in its answers.
 */
export interface ProcessSnapshot {
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  startTimeSeconds: number;
  residentBytes: number;
  heapTotalBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  /** Null where the platform has no /proc/self/fd (macOS). */
  openFds: number | null;
  /** Event-loop delay since the snapshot before, seconds (0 with no sample since: under 20 ms). */
  eventLoopDelayP99Seconds: number;
  eventLoopDelayMaxSeconds: number;
}

export interface ProcessMetrics {
  /** The figures now; the event-loop delay is since the snapshot before. */
  snapshot(): ProcessSnapshot;
  close(): void;
}

function openFds(): number | null {
  try {
    // The listing's own descriptor is among them: one fewer is the process's.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return null;
  }
}

/** Starts sampling the event-loop delay (every 20 ms, as prom-client does) until `close()`. */
export function startProcessMetrics(): ProcessMetrics {
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  const startTimeSeconds = Math.round(Date.now() / 1000 - process.uptime());
  return {
    snapshot() {
      const cpu = process.cpuUsage();
      const memory = process.memoryUsage();
      const sampled = delay.count > 0;
      const snapshot: ProcessSnapshot = {
        cpuUserSeconds: cpu.user / 1e6,
        cpuSystemSeconds: cpu.system / 1e6,
        startTimeSeconds,
        residentBytes: memory.rss,
        heapTotalBytes: memory.heapTotal,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external,
        openFds: openFds(),
        eventLoopDelayP99Seconds: sampled ? delay.percentile(99) / 1e9 : 0,
        eventLoopDelayMaxSeconds: sampled ? delay.max / 1e9 : 0,
      };
      delay.reset();
      return snapshot;
    },
    close: () => delay.disable(),
  };
}
