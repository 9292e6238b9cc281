import { expect, it } from 'vitest';
import { historyRecords } from '../../analyzer/alert-store.js';

// The alert records a dry run of a past time steps, rebuilt from the transitions stored before
// that time (audit #5): each as the lifecycle left it after its last transition, with the counts
// no transition records taken as the least they can be.

type Kind = 'pending' | 'firing' | 'repeat' | 'resolved' | 'cleared';
const row = (
  fingerprint: string,
  incident: number,
  seq: number,
  kind: Kind,
  at: number,
  notify: boolean,
  extra: { change_point?: string; summary?: string; resolution?: 'closed_without_verdict' } = {},
) => ({
  fingerprint,
  incident,
  seq,
  kind,
  at,
  notify,
  rule_id: 'success_rate_drop',
  cohort: 'kyc',
  route: 'tiny',
  detail: '',
  change_point: extra.change_point ?? '',
  summary: extra.summary ?? `${kind} at ${at}`,
  resolution: kind === 'resolved' ? (extra.resolution ?? ('recovered' as const)) : ('' as const),
});

const CHANGE = '1970-01-01T00:00:00.500Z';
const incident = [
  row('a', 1, 1, 'pending', 1_000, false, { change_point: CHANGE }),
  row('a', 1, 2, 'firing', 2_000, true, { change_point: CHANGE, summary: 'kyc × tiny: 75 %' }),
  row('a', 1, 3, 'repeat', 5_000, true),
  row('a', 1, 4, 'resolved', 9_000, true, { summary: 'recovered: 95 %' }),
];

it('rebuilds a firing alert as it stood inside its incident', () => {
  expect(historyRecords(incident.slice(0, 3))).toEqual([
    expect.objectContaining({
      fingerprint: 'a',
      state: 'firing',
      since: 2_000,
      incident: 1,
      seq: 3,
      lastNotifiedAt: 5_000,
      clearCount: 0,
      heldSince: null,
      changedAt: 500,
      firedSummary: 'kyc × tiny: 75 %',
      resolvedAt: null,
    }),
  ]);
});

it('rebuilds a resolved one with how it ended', () => {
  expect(historyRecords(incident)).toEqual([
    expect.objectContaining({
      state: 'resolved',
      since: 9_000,
      seq: 4,
      resolvedAt: 9_000,
      resolution: 'recovered',
      resolvedSummary: 'recovered: 95 %',
      lastNotifiedAt: 9_000,
      changedAt: null,
    }),
  ]);
});

it('takes a pending alert as degraded once: how many evaluations it was is not stored', () => {
  expect(historyRecords(incident.slice(0, 1))).toEqual([
    expect.objectContaining({ state: 'pending', since: 1_000, pendingCount: 1, changedAt: 500 }),
  ]);
});

it('keeps a firing alert never notified (a silence) owing its message, per alert', () => {
  const records = historyRecords([
    ...incident,
    // A new incident, fired at once under a silence: nothing sent under it yet.
    row('a', 2, 1, 'firing', 20_000, false),
    row('b', 1, 1, 'pending', 3_000, false),
    row('b', 1, 2, 'cleared', 4_000, false),
  ]);
  expect(records).toEqual([
    expect.objectContaining({
      fingerprint: 'a',
      state: 'firing',
      incident: 2,
      seq: 1,
      lastNotifiedAt: null,
      // The last resolution stays: the evidence before it is spent.
      resolvedAt: 9_000,
      changedAt: 20_000,
    }),
    expect.objectContaining({ fingerprint: 'b', state: 'inactive', since: 4_000, seq: 2 }),
  ]);
});
