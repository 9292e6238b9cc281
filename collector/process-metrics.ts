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
  /**
   * Event-loop delay since the snapshot before, seconds, the 10-ms sampling interval included (an
   * idle loop reads about 0.010, as with prom-client). With no sample since, the figures before.
   */
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

/**
 * Starts sampling the event-loop delay until `close()`: every 10 ms, Node's default and what
 * prom-client uses, so that dashboards made for its figures read these alike.
 */
export function startProcessMetrics(): ProcessMetrics {
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const startTimeSeconds = Math.round(Date.now() / 1000 - process.uptime());
  // Two scrapes within one sampling interval: the second repeats the first rather than read 0.
  let lag = { p99: 0, max: 0 };
  return {
    snapshot() {
      const cpu = process.cpuUsage();
      const memory = process.memoryUsage();
      if (delay.count > 0) {
        lag = { p99: delay.percentile(99) / 1e9, max: delay.max / 1e9 };
        delay.reset();
      }
      return {
        cpuUserSeconds: cpu.user / 1e6,
        cpuSystemSeconds: cpu.system / 1e6,
        startTimeSeconds,
        residentBytes: memory.rss,
        heapTotalBytes: memory.heapTotal,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external,
        openFds: openFds(),
        eventLoopDelayP99Seconds: lag.p99,
        eventLoopDelayMaxSeconds: lag.max,
      };
    },
    close: () => delay.disable(),
  };
}
