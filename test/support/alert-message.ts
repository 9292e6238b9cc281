import type { AlertMessage } from '../../analyzer/message.js';
import { titleOf } from '../../analyzer/message.js';

/** A firing alert's message on extraction × small, with every section filled; `overrides` win. */
export function sampleMessage(overrides: Partial<AlertMessage> = {}): AlertMessage {
  return {
    kind: 'firing',
    fingerprint: 'abc',
    incident: 1,
    at: '2026-12-02T10:00:00.000Z',
    severity: 'critical',
    ruleId: 'success_rate_drop',
    ruleKind: 'success_rate_drop',
    ruleDescription: 'success rate drops',
    cohort: 'extraction',
    route: 'small',
    detail: '',
    title: titleOf('firing', { kind: 'success_rate_drop' }, 'extraction', 'small', ''),
    finding: {
      ruleId: 'success_rate_drop',
      kind: 'success_rate_drop',
      cohort: 'extraction',
      route: 'small',
      detail: '',
      status: 'degraded',
      summary: 'extraction × small: success rate 93.6% → 75.3% (n 2804 → 412)',
      baseline: {
        label: 'success rate',
        n: 2804,
        value: 0.936,
        interval: { lower: 0.926, upper: 0.945 },
        description: 'trailing 7 d before the current window',
      },
      current: {
        label: 'success rate',
        n: 412,
        value: 0.753,
        interval: { lower: 0.709, upper: 0.792 },
        since: '2026-12-02T08:15:00.000Z',
      },
      statistic: 31.2,
      threshold: 9.8,
      effect: 0.18,
    },
    costs: [
      {
        route: 'small',
        tasks: 412,
        costPerSuccessfulTask: 0.0021,
        interval: { lower: 0.0019, upper: 0.0023 },
      },
      {
        route: 'large',
        tasks: 120,
        costPerSuccessfulTask: 0.0019,
        interval: { lower: 0.0017, upper: 0.0021 },
      },
    ],
    failureReasons: [
      { reason: 'schema_invalid', tasks: 70, share: 0.7 },
      { reason: 'wrong_answer', tasks: 30, share: 0.3 },
    ],
    fallbackReasons: [{ reason: 'validation_failed', tasks: 90, share: 0.9 }],
    url: 'https://routewatch.example/?cohort=extraction&route=small',
    ...overrides,
  };
}
