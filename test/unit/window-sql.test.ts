import { describe, expect, it } from 'vitest';
import { flatQuery, holdsWholeDay } from '../../storage/window-sql.js';

// The flat statements' optional branches (storage/window-sql.ts). That the flat statements return
// the views' rows, with each branch kept or dropped, is checked against the views in
// test/integration/rollups.test.ts.

const window = (from: string, to: string) => ({ from, to });

describe('holdsWholeDay', () => {
  it('finds a whole UTC day inside the window', () => {
    expect(holdsWholeDay(window('2026-11-01 00:00:00.000', '2026-11-02 00:00:00.000'))).toBe(true);
    expect(holdsWholeDay(window('2026-10-31 23:59:59.999', '2026-11-02 00:00:00.001'))).toBe(true);
    expect(holdsWholeDay(window('2026-10-01 07:00:00', '2026-11-01 07:00:00'))).toBe(true);
  });

  it('finds none in a 24 h window not aligned on midnight, nor in a short one', () => {
    expect(holdsWholeDay(window('2026-11-01 15:55:00.123', '2026-11-02 15:55:00.123'))).toBe(false);
    expect(holdsWholeDay(window('2026-11-01 00:00:00.001', '2026-11-02 00:59:59.999'))).toBe(false);
    expect(holdsWholeDay(window('2026-11-01 10:00:00', '2026-11-01 11:00:00'))).toBe(false);
    expect(holdsWholeDay(window('2026-11-02 00:00:00', '2026-11-01 00:00:00'))).toBe(false);
  });

  it('reads nanoseconds down to the millisecond, so a window is never found shorter than it is', () => {
    // 1 ns after midnight: the view rounds up to the next hour, and so no whole day. Read to the
    // millisecond the window starts at midnight and holds a day: the branch is kept (a wasted
    // branch, never a missing one).
    expect(holdsWholeDay(window('2026-11-01 00:00:00.000000001', '2026-11-02 00:00:00'))).toBe(
      true,
    );
    expect(holdsWholeDay(window('2026-11-01 00:00:00.999999999', '2026-11-02 00:00:00'))).toBe(
      false,
    );
  });

  it('keeps the branch when a bound is missing or unreadable', () => {
    expect(holdsWholeDay({})).toBe(true);
    expect(holdsWholeDay(window('yesterday', '2026-11-02 00:00:00'))).toBe(true);
    expect(holdsWholeDay({ from: 1, to: 2 })).toBe(true);
  });
});

describe('flatQuery', () => {
  it('drops the daily branch of v_window_metrics only when told to', () => {
    const withDays = flatQuery('v_window_metrics', { live: false, days: true });
    const withoutDays = flatQuery('v_window_metrics', { live: false, days: false });
    expect(withDays).toContain('FROM cohort_route_daily FINAL');
    expect(withoutDays).not.toContain('cohort_route_daily');
    expect(withoutDays).toContain('FROM cohort_route_hourly FINAL');
    expect(withoutDays).not.toMatch(/\(\s*UNION ALL/);
  });

  it('drops the live branch when no task changed and binds the changed tasks', () => {
    const idle = flatQuery('v_window_metrics', { live: false, days: true });
    const busy = flatQuery('v_window_metrics', { live: true, days: true });
    expect(idle).not.toContain('task_events');
    expect(busy).toContain('PREWHERE task_id IN {changed_tasks:Array(String)}');
    for (const statement of [idle, busy]) {
      expect(statement).toContain('{changed_tasks:Array(String)} AS changed_tasks');
      expect(statement).not.toContain('v_tasks_changed');
    }
  });

  it('leaves views without a daily branch alone', () => {
    for (const view of ['v_tasks', 'v_timeseries_metrics'] as const) {
      expect(flatQuery(view, { live: true, days: false })).toBe(
        flatQuery(view, { live: true, days: true }),
      );
    }
  });
});
