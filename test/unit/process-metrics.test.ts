import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startProcessMetrics } from '../../collector/process-metrics.js';

describe('startProcessMetrics', () => {
  it('sees a stalled event loop, and only until the next snapshot', async () => {
    const metrics = startProcessMetrics();
    try {
      await sleep(60);
      const stalledUntil = Date.now() + 300;
      while (Date.now() < stalledUntil) {
        // the main thread held, as a long synchronous task would
      }
      await sleep(60);
      const stalled = metrics.snapshot().eventLoopDelayMaxSeconds;
      expect(stalled).toBeGreaterThan(0.2);
      await sleep(60);
      // The stall is behind the snapshot before: not counted again.
      expect(metrics.snapshot().eventLoopDelayMaxSeconds).toBeLessThan(stalled);
    } finally {
      metrics.close();
    }
  });

  it("reads the process's memory, CPU and open files", () => {
    const metrics = startProcessMetrics();
    try {
      const before = metrics.snapshot();
      expect(before.residentBytes).toBeGreaterThan(before.heapUsedBytes);
      expect(before.heapTotalBytes).toBeGreaterThanOrEqual(before.heapUsedBytes);
      expect(before.cpuUserSeconds).toBeGreaterThan(0);
      expect(before.startTimeSeconds).toBeLessThanOrEqual(Date.now() / 1000);
      if (process.platform !== 'linux') return;
      const fds = Array.from({ length: 20 }, () => openSync(fileURLToPath(import.meta.url), 'r'));
      const opened = metrics.snapshot();
      for (const fd of fds) closeSync(fd);
      expect(opened.openFds! - before.openFds!).toBeGreaterThanOrEqual(18);
      expect(metrics.snapshot().openFds! - before.openFds!).toBeLessThanOrEqual(2);
    } finally {
      metrics.close();
    }
  });
});
