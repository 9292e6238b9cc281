import { describe, expect, it } from 'vitest';
import type { Finding } from '../../analyzer/detectors.js';
import {
  evidenceFrom,
  fingerprintOf,
  heldBaselineEnd,
  retire,
  step,
} from '../../analyzer/lifecycle.js';
import type { AlertEvent, AlertRecord } from '../../analyzer/lifecycle.js';

const MINUTE = 60_000;
const settings = {
  pendingEvaluations: 2,
  resolveEvaluations: 2,
  repeatIntervalMs: 4 * 3_600_000,
  holdWithoutVerdictMs: 30 * MINUTE,
};

function finding(status: Finding['status']): Finding {
  return {
    ruleId: 'success_rate_drop',
    kind: 'success_rate_drop',
    cohort: 'extraction',
    route: 'small',
    detail: '',
    status,
    summary: status,
    baseline: {
      label: 'success rate',
      n: 1000,
      value: 0.95,
      interval: null,
      description: 'trailing',
    },
    current: { label: 'success rate', n: 400, value: 0.8, interval: null, since: null },
    statistic: 12,
    threshold: 8,
    effect: 0.15,
  };
}

/** Runs a sequence of statuses, one evaluation a minute, and returns the events. */
function run(statuses: Finding['status'][], start?: AlertRecord) {
  let record = start;
  const events: string[] = [];
  statuses.forEach((status, i) => {
    const result = step(record, finding(status), i * MINUTE, settings);
    record = result.record;
    if (result.event) events.push(`${result.event.kind}${result.event.notify ? '!' : ''}@${i}`);
  });
  return { events, record: record! };
}

describe('alert lifecycle', () => {
  it('goes pending, fires after the hold, and resolves after the clear count, notifying twice', () => {
    const { events, record } = run(['degraded', 'degraded', 'degraded', 'ok', 'ok', 'ok']);
    expect(events).toEqual(['pending@0', 'firing!@1', 'resolved!@4']);
    expect(record.state).toBe('resolved');
    expect(record.incident).toBe(1);
  });

  it('clears a pending alert that does not hold, without notifying', () => {
    expect(run(['degraded', 'ok', 'ok']).events).toEqual(['pending@0', 'cleared@1']);
  });

  it('never fires on insufficient data, and holds a firing alert while its data is gone', () => {
    expect(run(['insufficient_data', 'insufficient_data']).events).toEqual([]);
    const held = run([
      'degraded',
      'degraded',
      ...Array<'insufficient_data'>(10).fill('insufficient_data'),
    ]);
    // Traffic that went away (or was routed away) is not a recovery: no resolve, no repeat.
    expect(held.events).toEqual(['pending@0', 'firing!@1']);
    expect(held.record.state).toBe('firing');
    expect(held.record.finding.status).toBe('insufficient_data');
    // It resolves once tasks come back and the monitor finds them well.
    expect(
      run(['degraded', 'degraded', 'insufficient_data', 'ok', 'insufficient_data', 'ok']).events,
    ).toEqual(['pending@0', 'firing!@1', 'resolved!@5']);
  });

  it('closes a firing alert held without a verdict for holdWithoutVerdict, once', () => {
    // Fired at minute 1, no verdict from minute 2: held until minute 32, closed there.
    const statuses = [
      'degraded',
      'degraded',
      ...Array<'insufficient_data'>(31).fill('insufficient_data'),
    ] as Finding['status'][];
    const { events, record } = run(statuses);
    expect(events).toEqual(['pending@0', 'firing!@1', 'resolved!@32']);
    expect(record).toMatchObject({
      state: 'resolved',
      resolvedAt: 32 * MINUTE,
      resolution: 'closed_without_verdict',
      resolvedSummary: 'held 30 min with no verdict (insufficient_data): closed without a verdict',
      heldSince: null,
    });
    expect(record.finding).toMatchObject({
      status: 'insufficient_data',
      summary: 'held 30 min with no verdict (insufficient_data): closed without a verdict',
    });
    // Closed once: more evaluations without a verdict say nothing more.
    const after = step(record, finding('insufficient_data'), 40 * MINUTE, settings);
    expect(after.event).toBeUndefined();
    expect(after.record.state).toBe('resolved');
    // A verdict in between starts the hold again: held from minute 3 to 20, judged at 20, held
    // from 21, closed at 51.
    const interrupted = run([
      'degraded',
      'degraded',
      'degraded',
      ...Array<'insufficient_data'>(17).fill('insufficient_data'),
      'degraded',
      ...Array<'insufficient_data'>(31).fill('insufficient_data'),
    ] as Finding['status'][]);
    expect(interrupted.events).toEqual(['pending@0', 'firing!@1', 'resolved!@51']);
    const held = run(['degraded', 'degraded', 'insufficient_data', 'insufficient_data']).record;
    expect(held).toMatchObject({ state: 'firing', heldSince: 2 * MINUTE });
  });

  it('closes a firing alert without a verdict when its rule goes, and clears a pending one', () => {
    const firing = run(['degraded', 'degraded']).record;
    const closed = retire(firing, 10 * MINUTE, 'rule gone');
    expect(closed?.event).toMatchObject({
      kind: 'resolved',
      notify: true,
      seq: firing.seq + 1,
      incident: firing.incident,
      finding: { status: 'insufficient_data', summary: 'rule gone', statistic: null },
    });
    expect(closed?.record).toMatchObject({
      state: 'resolved',
      resolvedAt: 10 * MINUTE,
      resolution: 'closed_without_verdict',
      resolvedSummary: 'rule gone',
    });
    const pending = run(['degraded']).record;
    expect(retire(pending, 10 * MINUTE, 'rule gone')?.event).toMatchObject({
      kind: 'cleared',
      notify: false,
    });
    expect(retire(closed!.record, 11 * MINUTE, 'rule gone')).toBeUndefined();
  });

  it('stays firing through one good evaluation (no flapping)', () => {
    expect(run(['degraded', 'degraded', 'ok', 'degraded', 'ok', 'ok']).events).toEqual([
      'pending@0',
      'firing!@1',
      'resolved!@5',
    ]);
  });

  it('repeats the message every repeat interval while firing', () => {
    const first = run(['degraded', 'degraded']);
    const later = step(
      first.record,
      finding('degraded'),
      MINUTE + settings.repeatIntervalMs,
      settings,
    );
    expect(later.event).toMatchObject({ kind: 'repeat', notify: true });
    const soon = step(
      later.record,
      finding('degraded'),
      MINUTE + settings.repeatIntervalMs + MINUTE,
      settings,
    );
    expect(soon.event).toBeUndefined();
  });

  it('ends an incident nobody was told of without a message, and gives its number back', () => {
    // Fired under a silence: the evaluator kept its message back, so it owes one (null).
    const fired = run(['degraded', 'degraded']);
    const silenced: AlertRecord = { ...fired.record, lastNotifiedAt: null };
    let record = silenced;
    const events: AlertEvent[] = [];
    for (const [i, status] of (['ok', 'ok'] as const).entries()) {
      const next = step(record, finding(status), (5 + i) * MINUTE, settings);
      record = next.record;
      if (next.event) events.push(next.event);
    }
    expect(events).toMatchObject([{ kind: 'resolved', notify: false, incident: 1 }]);
    expect(record).toMatchObject({ state: 'resolved', lastNotifiedAt: null });
    // The next incident is the first anyone hears of: number 1 again, its keys continued.
    const next = step(record, finding('degraded'), 20 * MINUTE, settings);
    expect(next.event).toMatchObject({ kind: 'pending', incident: 1, seq: record.seq + 1 });
    // Closed without a verdict (its rule removed) while never notified: no message either.
    const closed = retire(silenced, 30 * MINUTE, 'rule removed')!;
    expect(closed.event).toMatchObject({ kind: 'resolved', notify: false });
    expect(closed.record.lastNotifiedAt).toBeNull();
    // What the latest data looked like is no part of a closing: nothing judges the alert now.
    const withLatest: AlertRecord = {
      ...fired.record,
      finding: {
        ...fired.record.finding,
        latest: {
          label: 'success rate',
          n: 200,
          value: 0.95,
          interval: null,
          since: 'x',
          evidence: 5,
        },
      },
    };
    expect(retire(withLatest, 30 * MINUTE, 'rule removed')!.event!.finding.latest).toBeUndefined();
    // Nor how an ok finding before it ended (review diff-8 #3): a close is no recovery.
    const endingOk = {
      ...withLatest,
      finding: { ...fired.record.finding, status: 'ok' as const, ending: 'recovered' as const },
    };
    expect(retire(endingOk, 30 * MINUTE, 'rule removed')!.event!.finding.ending).toBeUndefined();
    // One that paged is closed with a message, and its number stays spent.
    const paged = retire(fired.record, 30 * MINUTE, 'rule removed')!;
    expect(paged.event).toMatchObject({ kind: 'resolved', notify: true });
    expect(step(paged.record, finding('degraded'), 40 * MINUTE, settings).event).toMatchObject({
      incident: 2,
      seq: 1,
    });
  });

  it('opens a new incident after a resolve, with sequence numbers from the start', () => {
    const first = run(['degraded', 'degraded', 'ok', 'ok']);
    const again = step(first.record, finding('degraded'), 10 * MINUTE, settings);
    expect(again.record.incident).toBe(2);
    expect(again.event).toMatchObject({ kind: 'pending', incident: 2, seq: 1 });
  });

  it('numbers incidents by the pages people receive: a pending episode that clears gives its number back', () => {
    // pending, cleared, pending, cleared, pending, firing: one incident, numbered 1, its events
    // keyed by one sequence so that none replaces another in the store.
    const flaky = run(['degraded', 'ok', 'degraded', 'ok', 'degraded', 'degraded']);
    expect(flaky.events).toEqual([
      'pending@0',
      'cleared@1',
      'pending@2',
      'cleared@3',
      'pending@4',
      'firing!@5',
    ]);
    expect(flaky.record).toMatchObject({ state: 'firing', incident: 1, seq: 6 });
    // After that incident resolves, a pending episode retired (its rule narrowed) then a new one
    // that fires: the second page is incident 2.
    let record = flaky.record;
    for (const [i, status] of (['ok', 'ok'] as const).entries())
      record = step(record, finding(status), (10 + i) * MINUTE, settings).record;
    expect(record).toMatchObject({ state: 'resolved', incident: 1 });
    const pending = step(record, finding('degraded'), 20 * MINUTE, settings);
    expect(pending.event).toMatchObject({ kind: 'pending', incident: 2, seq: 1 });
    const retired = retire(pending.record, 21 * MINUTE, 'rule narrowed')!;
    expect(retired.event).toMatchObject({ kind: 'cleared', incident: 2, seq: 2 });
    const again = step(retired.record, finding('degraded'), 30 * MINUTE, settings);
    expect(again.event).toMatchObject({ kind: 'pending', incident: 2, seq: 3 });
    const fired = step(again.record, finding('degraded'), 31 * MINUTE, settings);
    expect(fired.event).toMatchObject({ kind: 'firing', incident: 2, seq: 4, notify: true });
  });

  it('spends the evidence at the resolution, and remembers it through later states', () => {
    expect(evidenceFrom(undefined, 0)).toBeNull();
    const open = run(['degraded', 'degraded', 'ok']);
    expect(open.record.resolvedAt).toBeNull();
    expect(open.record.resolution).toBeNull();
    expect(evidenceFrom(open.record, 60 * MINUTE)).toBeNull();
    const resolved = run(['degraded', 'degraded', 'ok', 'ok']);
    expect(resolved.events.at(-1)).toBe('resolved!@3');
    expect(resolved.record.resolution).toBe('recovered');
    expect(evidenceFrom(resolved.record, 3 * MINUTE)).toBe(3 * MINUTE);
    // A replay of a time before the resolution: the evidence was not spent then.
    expect(evidenceFrom(resolved.record, 3 * MINUTE - 1)).toBeNull();
    // A new pending that clears, then a second incident: the first resolution still bounds the
    // evidence until the second one resolves.
    const pending = step(resolved.record, finding('degraded'), 10 * MINUTE, settings);
    const cleared = step(pending.record, finding('ok'), 11 * MINUTE, settings);
    expect(cleared.record.state).toBe('inactive');
    expect(evidenceFrom(cleared.record, 11 * MINUTE)).toBe(3 * MINUTE);
    let record = cleared.record;
    for (const [i, status] of (['degraded', 'degraded', 'ok', 'ok'] as const).entries())
      record = step(record, finding(status), (20 + i) * MINUTE, settings).record;
    expect(record.state).toBe('resolved');
    expect(evidenceFrom(record, 23 * MINUTE)).toBe(23 * MINUTE);
  });

  it("holds the baseline at the firing finding's change point while the incident is open", () => {
    const at = (status: Finding['status'], since: string | null): Finding => ({
      ...finding(status),
      current: { ...finding(status).current, since },
    });
    const pending = step(undefined, at('degraded', null), 5 * MINUTE, settings).record;
    // No change point estimated: where the incident was seen first.
    expect(heldBaselineEnd(pending)).toBe(5 * MINUTE);
    const firing = step(
      pending,
      at('degraded', new Date(MINUTE).toISOString()),
      6 * MINUTE,
      settings,
    ).record;
    expect(firing.state).toBe('firing');
    expect(heldBaselineEnd(firing)).toBe(MINUTE);
    // Later findings do not move it; a resolution releases it.
    let record = step(
      firing,
      at('degraded', new Date(4 * MINUTE).toISOString()),
      7 * MINUTE,
      settings,
    ).record;
    expect(heldBaselineEnd(record)).toBe(MINUTE);
    for (const i of [8, 9]) record = step(record, at('ok', null), i * MINUTE, settings).record;
    expect(record.state).toBe('resolved');
    expect(heldBaselineEnd(record)).toBeNull();
    expect(heldBaselineEnd(retire(firing, 8 * MINUTE, 'rule gone')!.record)).toBeNull();
  });

  it('fires at once with a hold of one evaluation', () => {
    const result = step(undefined, finding('degraded'), 0, { ...settings, pendingEvaluations: 1 });
    expect(result.event).toMatchObject({ kind: 'firing', notify: true });
  });

  it('computes the same transition twice from the same state (a crash between event and state)', () => {
    const a = step(undefined, finding('degraded'), 0, settings);
    const b = step(undefined, finding('degraded'), 0, settings);
    expect(b.event).toEqual(a.event);
    expect(a.record.fingerprint).toBe(
      fingerprintOf('success_rate_drop', 'extraction', 'small', ''),
    );
  });
});
