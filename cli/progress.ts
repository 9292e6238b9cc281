/**
 * A progress line for long runs (the demo, the benchmarks). On a terminal it is one line
 * rewritten in place at most every 200 ms; elsewhere (a log, a pipe, CI) it is a plain line at
 * each quarter, so a log shows the run is alive without a line per item.
 */
export interface ProgressSink {
  write(text: string): unknown;
  /** True for a terminal: the line is rewritten in place. */
  isTTY?: boolean | undefined;
}

export interface Progress {
  /** `done` items of the total are finished. */
  update(done: number): void;
  /** Erases the in-place line before other output (a no-op off a terminal). */
  clear(): void;
  /** Prints the final line. */
  finish(): void;
}

/** `tasks 1200/3000 (40%) · 850/s · ~2 s left`. Pure. */
export function progressLine(
  label: string,
  done: number,
  total: number,
  elapsedMs: number,
): string {
  const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
  const perSecond = elapsedMs > 0 ? (done / elapsedMs) * 1000 : 0;
  const parts = [`${label} ${done}/${total} (${percent}%)`];
  if (done > 0 && elapsedMs >= 1000) {
    parts.push(`${perSecond >= 10 ? Math.round(perSecond) : perSecond.toFixed(1)}/s`);
    if (done < total) parts.push(`~${Math.ceil((total - done) / perSecond)} s left`);
    else parts.push(`${(elapsedMs / 1000).toFixed(1)} s`);
  }
  return parts.join(' · ');
}

export function progressReporter(
  sink: ProgressSink,
  label: string,
  total: number,
  now: () => number = Date.now,
): Progress {
  const started = now();
  const tty = sink.isTTY === true;
  let lastDrawn = 0;
  let lastQuarter = 0;
  let latest = 0;
  let shown = false;
  const line = (done: number) => `  ${progressLine(label, done, total, now() - started)}`;
  return {
    update(done) {
      latest = done;
      if (tty) {
        if (now() - lastDrawn < 200 && done < total) return;
        lastDrawn = now();
        sink.write(`\r\x1b[K${line(done)}`);
        shown = true;
        return;
      }
      const quarter = total === 0 ? 4 : Math.floor((done / total) * 4);
      if (quarter > lastQuarter && quarter < 4) {
        lastQuarter = quarter;
        sink.write(`${line(done)}\n`);
      }
    },
    clear() {
      if (tty && shown) sink.write('\r\x1b[K');
    },
    finish() {
      sink.write(`${tty ? '\r\x1b[K' : ''}${line(latest)}\n`);
    },
  };
}
