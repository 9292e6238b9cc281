-- v_tasks_live: one row per task, computed now from task_events (its spans and late outcome
-- reports, copied there by materialized views; sql/migrations/0032). The columns of v_tasks, with
-- costs as Decimal(38, 18) (llm_cost, cleanup_cost) and the hours the task's spans started in
-- (span_hours). v_tasks and the window views read it for the tasks changed since the last rollup
-- refresh (v_tasks_changed); filter it by task_id, which reaches task_events' primary key. The
-- same definitions as v_tasks_from_spans, which computes it from the raw tables.
CREATE OR REPLACE VIEW v_tasks_live AS
SELECT
    task_id,
    toString(task_cohort) AS cohort,
    toString(task_service) AS service_name,
    toString(task_policy) AS policy_version,
    toString(task_eval_run) AS eval_run,
    toString(task_eval_dataset) AS eval_dataset,
    first_start AS started_at,
    last_end AS ended_at,
    if(has_task_span, task_duration_ns, toUInt64(greatest(0, toUnixTimestamp64Nano(last_end) - toUnixTimestamp64Nano(first_start)))) / 1e6 AS latency_ms,
    toString(route_of_lowest_attempt) AS primary_route,
    highest_attempt AS attempts,
    llm_spans AS model_calls,
    failed_llm_spans AS failed_model_calls,
    unpriced_llm_spans AS unpriced_calls,
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
    mapUpdate(span_scores, late_scores) AS scores,
    counted_llm_spans AS http_counted_calls,
    retried_llm_spans AS retried_calls,
    extra_http_requests AS http_retries,
    llm_retry_wait_ms AS retry_wait_ms,
    hours AS span_hours
FROM
(
    SELECT
        task_id,
        argMinIf(cohort, (toUInt8(kind != 'task'), timestamp, event_hash), is_span AND cohort != '') AS task_cohort,
        argMinIf(service_name, (timestamp, event_hash), is_span) AS task_service,
        argMinIf(policy_version, (timestamp, event_hash), is_span AND policy_version != '') AS task_policy,
        argMinIf(eval_run, (timestamp, event_hash), kind = 'task' AND eval_run != '') AS task_eval_run,
        argMinIf(eval_dataset, (timestamp, event_hash), kind = 'task' AND eval_dataset != '') AS task_eval_dataset,
        -- The earliest task span's scores; per name, the latest report's (observed_at, report_id) over them.
        CAST(argMinIf(scores, (timestamp, event_hash), kind = 'task') AS Map(String, Float64)) AS span_scores,
        arrayFold((acc, report) -> mapUpdate(acc, report.3),
            arraySort(x -> (x.1, x.2), groupArrayIf((timestamp, report_id, CAST(scores AS Map(String, Float64))), is_report)),
            CAST(map() AS Map(String, Float64))) AS late_scores,
        minIf(timestamp, is_span) AS first_start,
        maxIf(end_time, is_span) AS last_end,
        countIf(is_span) AS spans,
        CAST(groupUniqArrayIf(toStartOfHour(timestamp), is_span) AS Array(DateTime('UTC'))) AS hours,
        countIf(kind = 'task') > 0 AS has_task_span,
        maxIf(duration_ns, kind = 'task') AS task_duration_ns,
        argMinIf(route, (attempt, timestamp, event_hash), is_span AND attempt >= 1 AND route != '') AS route_of_lowest_attempt,
        maxIf(attempt, is_span) AS highest_attempt,
        countIf(kind = 'llm') AS llm_spans,
        countIf(kind = 'llm' AND status_code = 'error') AS failed_llm_spans,
        countIf(kind = 'llm' AND cost_source = 'unpriced') AS unpriced_llm_spans,
        countIf(kind = 'llm' AND http_attempts > 0) AS counted_llm_spans,
        countIf(kind = 'llm' AND http_attempts > 1) AS retried_llm_spans,
        sumIf(toUInt64(http_attempts - 1), kind = 'llm' AND http_attempts > 1) AS extra_http_requests,
        sumIf(toUInt64(http_retry_wait_ms), kind = 'llm') AS llm_retry_wait_ms,
        arrayMap(x -> x.2, arraySort(groupArrayIf((attempt, toString(fallback_reason)), kind = 'attempt' AND attempt >= 2))) AS reasons,
        countIf(kind = 'attempt' AND attempt >= 2 AND fallback_reason = '') AS reasonless_fallbacks,
        sumIf(toDecimal128(cost_usd, 18), kind = 'llm') AS llm_cost,
        sumIf(input_tokens, kind = 'llm') AS llm_input_tokens,
        sumIf(output_tokens, kind = 'llm') AS llm_output_tokens,
        argMaxIf((toString(outcome), toString(outcome_reason), end_time), (end_time, event_hash), kind = 'task' AND outcome != '') AS span_outcome,
        maxIf(reask, kind = 'task') AS span_reask,
        sumIf(toDecimal128(cleanup_cost_usd, 18), kind = 'task') AS span_cleanup_cost,
        -- Late outcome reports, each once (its first copy), timed by observed_at.
        countIf(is_report) AS late_reports,
        argMaxIf((toString(outcome), toString(outcome_reason)), (timestamp, report_id), is_report) AS late_outcome,
        maxIf(timestamp, is_report) AS late_outcome_at,
        maxIf(reask, is_report) AS late_reask,
        sumIf(toDecimal128(cleanup_cost_usd, 18), is_report) AS late_cleanup_cost
    FROM (SELECT *, kind = 'late_outcome' AS is_report, NOT is_report AS is_span FROM task_events FINAL)
    GROUP BY task_id
    -- A task is its spans: late reports alone (for a task whose spans never came) make no row.
    HAVING spans > 0
);
