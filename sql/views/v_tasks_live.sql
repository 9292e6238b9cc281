-- v_tasks_live: one row per task, computed now from task_spans (every span, copied there by a
-- materialized view; sql/migrations/0010) and late_outcomes. The columns of v_tasks, with costs as
-- Decimal(38, 18) (llm_cost, cleanup_cost) and the hours the task's spans started in
-- (span_hours). v_tasks and the window views read it for the tasks changed since the last rollup
-- refresh (v_tasks_changed); filter it by task_id, which reaches both tables' primary keys. The
-- same definitions as v_tasks_from_spans, which computes it from raw spans.
CREATE OR REPLACE VIEW v_tasks_live AS
SELECT
    task_id,
    toString(task_cohort) AS cohort,
    toString(task_service) AS service_name,
    toString(task_policy) AS policy_version,
    first_start AS started_at,
    last_end AS ended_at,
    if(has_task_span, task_duration_ns, toUInt64(greatest(0, toUnixTimestamp64Nano(last_end) - toUnixTimestamp64Nano(first_start)))) / 1e6 AS latency_ms,
    toString(route_of_lowest_attempt) AS primary_route,
    highest_attempt AS attempts,
    llm_spans AS model_calls,
    failed_llm_spans AS failed_model_calls,
    reasons AS fallback_reasons,
    reasonless_fallbacks AS invisible_fallbacks,
    llm_input_tokens AS input_tokens,
    llm_output_tokens AS output_tokens,
    late_reports > 0 AND (span_outcome.1 = '' OR late_outcome_at >= span_outcome.3) AS late_wins,
    if(late_wins, late_outcome.1, if(span_outcome.1 != '', span_outcome.1, 'unknown')) AS outcome,
    if(late_wins, late_outcome.2, span_outcome.2) AS outcome_reason,
    greatest(span_reask, late_reask) = 1 AS reask,
    llm_cost,
    span_cleanup_cost + late_cleanup_cost AS cleanup_cost,
    hours AS span_hours
FROM
(
    SELECT
        task_id,
        argMinIf(cohort, (toUInt8(kind != 'task'), timestamp, span_hash), is_span AND cohort != '') AS task_cohort,
        argMinIf(service_name, (timestamp, span_hash), is_span) AS task_service,
        argMinIf(policy_version, (timestamp, span_hash), is_span AND policy_version != '') AS task_policy,
        minIf(timestamp, is_span) AS first_start,
        maxIf(end_time, is_span) AS last_end,
        countIf(is_span) AS span_rows,
        CAST(groupUniqArrayIf(toStartOfHour(timestamp), is_span) AS Array(DateTime('UTC'))) AS hours,
        countIf(is_span AND kind = 'task') > 0 AS has_task_span,
        maxIf(duration_ns, is_span AND kind = 'task') AS task_duration_ns,
        argMinIf(route, (attempt, timestamp, span_hash), is_span AND attempt >= 1 AND route != '') AS route_of_lowest_attempt,
        maxIf(attempt, is_span) AS highest_attempt,
        countIf(is_span AND kind = 'llm') AS llm_spans,
        countIf(is_span AND kind = 'llm' AND status_code = 'error') AS failed_llm_spans,
        arrayMap(x -> x.2, arraySort(groupArrayIf((attempt, toString(fallback_reason)), is_span AND kind = 'attempt' AND attempt >= 2))) AS reasons,
        countIf(is_span AND kind = 'attempt' AND attempt >= 2 AND fallback_reason = '') AS reasonless_fallbacks,
        sumIf(toDecimal128(cost_usd, 18), is_span AND kind = 'llm') AS llm_cost,
        sumIf(input_tokens, is_span AND kind = 'llm') AS llm_input_tokens,
        sumIf(output_tokens, is_span AND kind = 'llm') AS llm_output_tokens,
        argMaxIf((toString(outcome), toString(outcome_reason), end_time), (end_time, span_hash), is_span AND kind = 'task' AND outcome != '') AS span_outcome,
        maxIf(reask, is_span AND kind = 'task') AS span_reask,
        sumIf(toDecimal128(cleanup_cost_usd, 18), is_span AND kind = 'task') AS span_cleanup_cost,
        -- Late outcome reports (late_outcomes FINAL: each report once, its first copy).
        countIf(NOT is_span) AS late_reports,
        argMaxIf((toString(outcome), toString(outcome_reason)), (end_time, report_id), NOT is_span) AS late_outcome,
        maxIf(end_time, NOT is_span) AS late_outcome_at,
        maxIf(reask, NOT is_span) AS late_reask,
        sumIf(toDecimal128(cleanup_cost_usd, 18), NOT is_span) AS late_cleanup_cost
    FROM
    (
        SELECT
            task_id, true AS is_span, span_hash, '' AS report_id, timestamp, end_time, duration_ns, kind,
            cohort, service_name, policy_version, route, attempt, fallback_reason, cost_usd,
            input_tokens, output_tokens, status_code, outcome, outcome_reason, reask, cleanup_cost_usd
        FROM task_spans FINAL
        UNION ALL
        -- A report's time goes in end_time, its id in report_id; the span columns stay empty.
        SELECT
            task_id, false, 0, report_id, observed_at, observed_at, 0, '', '', '', '', '', 0, '', 0,
            0, 0, '', outcome, outcome_reason, reask, cleanup_cost_usd
        FROM late_outcomes FINAL
    )
    GROUP BY task_id
    -- A task is its spans: late reports alone (for a task whose spans never came) make no row.
    HAVING span_rows > 0
);
