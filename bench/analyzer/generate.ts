/**
 * Synthetic tasks generated inside ClickHouse (INSERT … SELECT FROM numbers), so that millions of
 * spans load in seconds and still pass through the materialized views as inserted blocks, as the
 * collector's inserts do. Deterministic: task n of a seed is always the same spans.
 *
 * Task n: a task span, then attempt 1 (an attempt span and its LLM call) on the primary route
 * (70 % small, 30 % large); 16 % fall back once and 1 % twice (cascade), each fallback with one of
 * six reasons ('' = none given). Outcome on the task span: 80 % success, 10 % failure, 3 %
 * escalated (with a cleanup cost), 2 % abandoned, 5 % none. 50 cohorts by default, two services, policy v1
 * for the first half of the period and v2 after. About 3.36 spans per task. 2 % of tasks belong to
 * an eval run (routewatch.eval.run / .dataset on the task span); 30 % carry a groundedness score
 * on the task span (and some an unparsable one, which does not count). Each LLM call: 5 %
 * unpriced; its HTTP requests counted for 80 % of calls (1 to 3, with a wait between retries).
 *
 * Subsets of the same tasks, to load the way a real store receives them:
 * - `withheld`: for 1 % of tasks, attempt 1's spans (the primary route) are left out of `main`
 *   and come on their own later;
 * - `duplicated`: all spans of 1 % of tasks again (a retried export past the collector's window);
 * - late outcome reports for 8 % of tasks, observed 2 h after the task ended (its hour closed),
 *   a quarter of them retried a minute later under the same report id.
 */

export type SpanSubset = 'main' | 'withheld' | 'duplicated';

/**
 * Which tasks each subset takes (filtered before their spans are made), and which of their spans
 * (s: the span's number in its task; 1 and 2 are attempt 1).
 */
const SUBSET_FILTER: Record<SpanSubset, { tasks: string; spans: string }> = {
  main: { tasks: '1', spans: 'NOT (has_withheld AND s IN (1, 2))' },
  withheld: { tasks: 'has_withheld', spans: 's IN (1, 2)' },
  duplicated: { tasks: 'is_duplicated', spans: '1' },
};

export interface GenerateParams {
  seed: number;
  /** Tasks in the whole data set: they spread evenly over the period. */
  tasks: number;
  /** This statement's range of tasks: [first, first + count). */
  first: number;
  count: number;
  /** Start of the period, a ClickHouse UTC time (`YYYY-MM-DD hh:mm:ss`). */
  base: string;
  periodDays: number;
  cohorts?: number;
}

/** Bound parameters of the statements below. */
export function generateParams(params: GenerateParams): Record<string, string | number> {
  return {
    seed: params.seed,
    tasks: params.tasks,
    first: params.first,
    count: params.count,
    base: params.base,
    period_ns: String(BigInt(Math.round(params.periodDays * 86_400)) * 1_000_000_000n),
    cohorts: params.cohorts ?? 50,
  };
}

/** The per-task values both statements derive from the task number (`number`). */
const TASK_COLUMNS = `
    number AS t,
    cityHash64(number, {seed:UInt64}) AS h,
    concat(lower(hex(cityHash64(number, 'trace-hi', {seed:UInt64}))), lower(hex(cityHash64(number, 'trace-lo', {seed:UInt64})))) AS trace_id,
    concat('cohort-', leftPad(toString(h % {cohorts:UInt32}), 2, '0')) AS cohort,
    if(bitAnd(intDiv(h, 3), 1) = 0, 'svc-a', 'svc-b') AS service_name,
    if(number < {tasks:UInt64} / 2, 'v1', 'v2') AS policy_version,
    if(intDiv(h, 1000) % 100 < 70, 'small', 'large') AS primary_route,
    multiIf(intDiv(h, 100000) % 1000 < 10, 3, intDiv(h, 100000) % 1000 < 170, 2, 1) AS attempts,
    multiIf(intDiv(h, 10000000) % 100 < 80, 'success', intDiv(h, 10000000) % 100 < 90, 'failure',
            intDiv(h, 10000000) % 100 < 93, 'escalated', intDiv(h, 10000000) % 100 < 95, 'abandoned', '') AS outcome,
    {base:DateTime64(9, 'UTC')} + toIntervalNanosecond(intDiv(toUInt128(number) * {period_ns:UInt64}, {tasks:UInt64})) AS task_start,
    toUInt64(200000000 + (intDiv(h, 17) % 3000) * 1000000 * attempts) AS latency_ns,
    h % 100 = 42 AS has_withheld,
    h % 100 = 7 AS is_duplicated,
    intDiv(h, 1000000000) % 100 < 8 AS has_late_outcome,
    intDiv(h, 1000000000) % 100 < 2 AS has_retried_report,
    intDiv(h, 19) % 100 < 2 AS is_eval,
    intDiv(h, 23) % 100 < 30 AS has_score,
    round((intDiv(h, 29) % 1000) / 1000, 3) AS score`;

/** Spans of tasks [first, first + count) of the given subset into `spans`. */
export function insertSpansSql(subset: SpanSubset): string {
  return `INSERT INTO spans
    (timestamp, end_time, duration_ns, trace_id, span_id, name, span_kind, kind, service_name, scope_name,
     task_id, cohort, route, attempt, fallback_reason, policy_version, provider, operation, request_model,
     response_model, input_tokens, output_tokens, cost_usd, cost_source, status_code, outcome,
     outcome_reason, reask, cleanup_cost_usd, attributes, http_attempts, http_retry_wait_ms)
SELECT
    span_start,
    span_end,
    toUInt64(toUnixTimestamp64Nano(span_end) - toUnixTimestamp64Nano(span_start)),
    trace_id,
    lower(hex(cityHash64(t, s))),
    multiIf(kind = 'task', concat('routewatch.task ', cohort), kind = 'attempt', concat('routewatch.attempt ', route), concat('chat ', model)),
    if(kind = 'llm', 'client', 'internal'),
    kind,
    service_name,
    '@routewatch/instrumentation',
    trace_id,
    cohort,
    if(kind = 'task', '', route),
    if(kind = 'task', 0, k),
    if(kind = 'attempt' AND k >= 2, reason, ''),
    if(kind = 'task', policy_version, ''),
    if(kind = 'llm', 'openai', ''),
    if(kind = 'llm', 'chat', ''),
    if(kind = 'llm', model, ''),
    if(kind = 'llm', model, ''),
    if(kind = 'llm', input_tokens, 0),
    if(kind = 'llm', output_tokens, 0),
    if(kind = 'llm' AND NOT unpriced, if(model = 'gpt-4o-mini', (input_tokens * 0.15 + output_tokens * 0.6) / 1e6, (input_tokens * 2.5 + output_tokens * 10) / 1e6), 0),
    if(kind = 'llm', if(unpriced, 'unpriced', 'price_table'), 'none'),
    if(kind = 'llm' AND k < attempts, 'error', 'ok'),
    if(kind = 'task', outcome, ''),
    if(kind = 'task' AND outcome = 'failure', 'wrong_answer', ''),
    toUInt8(kind = 'task' AND bitAnd(h, 0xF) = 0),
    if(kind = 'task' AND outcome = 'escalated', 0.5, 0),
    CAST(if(kind != 'task', map(),
        mapConcat(
            if(is_eval, map('routewatch.eval.run', concat('run-', toString(h % 3)), 'routewatch.eval.dataset', 'golden'), map()),
            if(has_score, map('routewatch.score.groundedness', toString(score)), map()),
            if(h % 50 = 3, map('routewatch.score.tone', 'n/a'), map()))),
        'Map(LowCardinality(String), String)'),
    if(kind = 'llm', http_attempts, 0),
    if(kind = 'llm' AND http_attempts > 1, toUInt32(250 * (http_attempts - 1)), 0)
FROM
(
    SELECT
        *,
        s,
        if(s = 0, 'task', if(s % 2 = 1, 'attempt', 'llm')) AS kind,
        toUInt16(intDiv(s + 1, 2)) AS k,
        multiIf(k <= 1, primary_route, k = 2, if(primary_route = 'small', 'large', 'latency'), 'human') AS route,
        if(route = 'small', 'gpt-4o-mini', 'gpt-4o') AS model,
        ['validation_failed', 'timeout', 'rate_limited', 'low_confidence', 'error', ''][(intDiv(h, 7 * k) % 6) + 1] AS reason,
        500 + (intDiv(h, 11 * (k + 1)) % 1500) AS input_tokens,
        50 + (intDiv(h, 13 * (k + 1)) % 500) AS output_tokens,
        intDiv(h, 31 * (k + 1)) % 100 < 5 AS unpriced,
        toUInt16(multiIf(intDiv(h, 37 * (k + 1)) % 100 < 20, 0, intDiv(h, 37 * (k + 1)) % 100 < 85, 1, intDiv(h, 37 * (k + 1)) % 100 < 95, 2, 3)) AS http_attempts,
        if(s = 0, task_start, task_start + toIntervalNanosecond(intDiv(latency_ns * (k - 1), attempts) + 1000 * s)) AS span_start,
        if(s = 0, task_start + toIntervalNanosecond(latency_ns), span_start + toIntervalNanosecond(intDiv(latency_ns, attempts) - 2000 * s)) AS span_end
    FROM (SELECT ${TASK_COLUMNS} FROM numbers({first:UInt64}, {count:UInt64}) WHERE ${SUBSET_FILTER[subset].tasks})
    ARRAY JOIN range(toUInt64(1 + 2 * attempts)) AS s
    WHERE ${SUBSET_FILTER[subset].spans}
)`;
}

/** Late outcome reports (and retried copies) of tasks [first, first + count) into `late_outcomes`. */
export function insertLateOutcomesSql(): string {
  return `INSERT INTO late_outcomes
    (task_id, report_id, observed_at, outcome, outcome_reason, reask, cleanup_cost_usd, source, scores)
SELECT
    trace_id,
    concat('bench-', toString(t)),
    task_start + toIntervalNanosecond(latency_ns) + toIntervalHour(2) + toIntervalMinute(copy),
    if(outcome = 'success', 'failure', 'success'),
    if(outcome = 'success', 'user_reported', 'human_corrected'),
    toUInt8(outcome = 'success'),
    0.25,
    'bench',
    -- Half the reports score the task again; a retried copy carries another value, which does not
    -- count (the first copy observed wins).
    CAST(if(intDiv(h, 41) % 2 = 0, map('groundedness', round(score / 2 + copy / 10, 3)), map()), 'Map(LowCardinality(String), Float64)')
FROM (SELECT ${TASK_COLUMNS} FROM numbers({first:UInt64}, {count:UInt64}))
ARRAY JOIN range(toUInt64(1 + has_retried_report)) AS copy
WHERE has_late_outcome`;
}

/** Spans per task on average: a task span, two per attempt, 1.18 attempts. */
export const SPANS_PER_TASK = 3.36;
