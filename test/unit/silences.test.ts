import { describe, expect, it } from 'vitest';
import {
  MAX_SILENCE_MS,
  SilenceRequestError,
  matches,
  newSilence,
  scopeOf,
  silenceOf,
  silenceRequest,
} from '../../analyzer/silences.js';
import type { Silence } from '../../analyzer/silences.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 11, 6, 12);
const RULES = ['success_rate_drop', 'cost_per_success_rise'];

const silence = (over: Partial<Silence> = {}): Silence => ({
  id: 's',
  cohort: '',
  route: '',
  ruleId: '',
  startsAt: NOW,
  endsAt: NOW + HOUR,
  comment: 'c',
  createdAt: NOW,
  ...over,
});
const alert = { cohort: 'extraction', route: 'small', ruleId: 'success_rate_drop' };

describe('silences', () => {
  it('match what they name, any where they name nothing, from their start until (not at) their end', () => {
    expect(matches(silence(), alert, NOW)).toBe(true);
    expect(matches(silence({ cohort: 'extraction', route: 'small' }), alert, NOW)).toBe(true);
    expect(matches(silence({ cohort: 'faq' }), alert, NOW)).toBe(false);
    expect(matches(silence({ route: 'large' }), alert, NOW)).toBe(false);
    expect(matches(silence({ ruleId: 'cost_per_success_rise' }), alert, NOW)).toBe(false);
    expect(matches(silence(), alert, NOW - 1)).toBe(false);
    expect(matches(silence(), alert, NOW + HOUR - 1)).toBe(true);
    expect(matches(silence(), alert, NOW + HOUR)).toBe(false);
    // Of several in force, the one that ends last.
    const found = silenceOf(
      [
        silence({ id: 'a', endsAt: NOW + 2 * HOUR }),
        silence({ id: 'b', endsAt: NOW + 3 * HOUR }),
        silence({ id: 'c', cohort: 'faq', endsAt: NOW + 9 * HOUR }),
      ],
      alert,
      NOW,
    );
    expect(found?.id).toBe('b');
    expect(scopeOf(silence({ cohort: 'extraction', ruleId: 'success_rate_drop' }))).toBe(
      'cohort extraction × every route × rule success_rate_drop',
    );
  });

  it('are made from a request: a duration or an end, starting now unless told', () => {
    const made = newSilence(
      silenceRequest.parse({
        cohort: ' extraction ',
        for: '4h',
        comment: 'ana: fixing the prompt',
      }),
      NOW,
      RULES,
    );
    expect(made).toMatchObject({
      cohort: 'extraction',
      route: '',
      ruleId: '',
      startsAt: NOW,
      endsAt: NOW + 4 * HOUR,
      comment: 'ana: fixing the prompt',
      createdAt: NOW,
    });
    expect(made.id).toMatch(/^[0-9a-f-]{36}$/);
    const planned = newSilence(
      {
        rule: 'success_rate_drop',
        starts: '2026-12-07T02:00:00Z',
        until: '2026-12-07T04:00:00Z',
        comment: 'migration',
      },
      NOW,
      RULES,
    );
    expect(planned).toMatchObject({
      ruleId: 'success_rate_drop',
      startsAt: Date.UTC(2026, 11, 7, 2),
      endsAt: Date.UTC(2026, 11, 7, 4),
    });
  });

  it.each([
    [
      { for: '1h', comment: 'x' },
      /names no cohort, route or rule, so it would silence every alert: .*"all": true/,
    ],
    [
      { cohort: 'faq', all: true, for: '1h', comment: 'x' },
      /name no cohort, route or rule with it/,
    ],
    [{ all: true, comment: 'x' }, /give how long it lasts .* or when it ends/],
    [{ all: true, for: '0', comment: 'x' }, /for: give a duration above 0/],
    [
      { all: true, starts: '2027-03-01T00:00:00Z', for: '1h', comment: 'x' },
      /more than 30 d ahead/,
    ],
    [{ all: true, for: '1h', until: '2026-12-07', comment: 'x' }, /one of the two/],
    [{ all: true, for: 'soon', comment: 'x' }, /for: invalid duration "soon"/],
    [{ all: true, until: 'tomorrow', comment: 'x' }, /until: invalid time "tomorrow"/],
    [{ all: true, until: '2026-12-06T11:00:00Z', comment: 'x' }, /would end .* before it starts/],
    [
      { all: true, starts: '2026-12-01T00:00:00Z', for: '1h', comment: 'x' },
      /would end in the past/,
    ],
    [{ all: true, for: '31d', comment: 'x' }, /at most 30 d: .* change its rules/],
    [
      { rule: 'nope', for: '1h', comment: 'x' },
      /no rule "nope" is configured: the rules are success_rate_drop, cost_per_success_rise/,
    ],
  ])('refuse %j, saying why', (request, message) => {
    expect(() => newSilence(request, NOW, RULES)).toThrow(SilenceRequestError);
    expect(() => newSilence(request, NOW, RULES)).toThrow(message);
  });

  it('last at most 30 days', () => {
    expect(newSilence({ all: true, for: '30d', comment: 'x' }, NOW, RULES).endsAt - NOW).toBe(
      MAX_SILENCE_MS,
    );
  });
});

describe('the request body of a silence', () => {
  it('refuses an empty matcher, which would silence everything', () => {
    for (const key of ['cohort', 'route', 'rule'])
      for (const value of ['', '   ']) {
        const parsed = silenceRequest.safeParse({ [key]: value, for: '1h', comment: 'x' });
        expect(parsed.success).toBe(false);
        expect(parsed.error!.issues[0]!.message).toBe('empty: leave it out to match any');
      }
  });
});
