import { describe, expect, it } from 'vitest';
import { progressLine, progressReporter } from '../../cli/progress.js';

describe('progressLine', () => {
  it('says how far, how fast and how long is left once a second has passed', () => {
    expect(progressLine('tasks', 0, 3000, 0)).toBe('tasks 0/3000 (0%)');
    expect(progressLine('tasks', 1200, 3000, 1500)).toBe(
      'tasks 1200/3000 (40%) · 800/s · ~3 s left',
    );
    expect(progressLine('tasks', 3, 10, 2000)).toBe('tasks 3/10 (30%) · 1.5/s · ~5 s left');
    expect(progressLine('tasks', 10, 10, 2500)).toBe('tasks 10/10 (100%) · 4.0/s · 2.5 s');
  });
});

describe('progressReporter', () => {
  function sink(isTTY: boolean) {
    const written: string[] = [];
    return { written, write: (text: string) => written.push(text), isTTY };
  }

  it('off a terminal, prints one line per quarter and a final line', () => {
    const out = sink(false);
    let now = 0;
    const progress = progressReporter(out, 'tasks', 8, () => now);
    for (let done = 1; done <= 8; done++) {
      now += 500;
      progress.update(done);
    }
    progress.finish();
    expect(out.written).toEqual([
      '  tasks 2/8 (25%) · 2.0/s · ~3 s left\n',
      '  tasks 4/8 (50%) · 2.0/s · ~2 s left\n',
      '  tasks 6/8 (75%) · 2.0/s · ~1 s left\n',
      '  tasks 8/8 (100%) · 2.0/s · 4.0 s\n',
    ]);
  });

  it('on a terminal, rewrites one line at most every 200 ms, clears it on demand, ends it with a newline', () => {
    const out = sink(true);
    let now = 0;
    const progress = progressReporter(out, 'tasks', 100, () => now);
    now = 250;
    progress.update(1);
    now = 300;
    progress.update(2); // within 200 ms of the last: not drawn
    now = 500;
    progress.update(3);
    progress.clear();
    now = 600;
    progress.update(100); // the last item is always drawn
    progress.finish();
    expect(out.written).toEqual([
      '\r\x1b[K  tasks 1/100 (1%)',
      '\r\x1b[K  tasks 3/100 (3%)',
      '\r\x1b[K',
      '\r\x1b[K  tasks 100/100 (100%)',
      '\r\x1b[K  tasks 100/100 (100%)\n',
    ]);
  });
});
