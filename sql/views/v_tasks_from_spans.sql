-- v_tasks_from_spans: v_tasks computed from raw spans (spans FINAL, late_outcomes FINAL), as
-- v_tasks was before the rollups. The reference the rollups are tested against, and what the
-- analyzer benchmark times as "raw scan". It reads every stored span: slow on large stores, and
-- blind to spans past ROUTEWATCH_RETENTION_DAYS, which v_tasks still answers from the rollups.
-- Two more columns than v_tasks: llm_cost and cleanup_cost as Decimal(38, 18), summed exactly.
-- Where spans of a task disagree, the same choices as v_tasks: the task span's cohort, else the
-- earliest span's; the earliest span's service and policy version; the lowest attempt's route,
-- its earliest span first; the outcome of the task span that ended last; the earliest task span's
-- eval run, dataset and scores (late reports' scores override these per name, the latest report
-- winning).
CREATE OR REPLACE VIEW v_tasks_from_spans AS
WITH
    by_task AS
    (
        SELECT
            task_id,
            argMinIf(cohort, (toUInt8(kind != 'task'), timestamp, cityHash64(trace_id, span_id)), cohort != '') AS task_cohort,
            argMin(service_name, (timestamp, cityHash64(trace_id, span_id))) AS task_service,
            argMinIf(policy_version, (timestamp, cityHash64(trace_id, span_id)), policy_version != '') AS task_policy,
            argMinIf(attributes['routewatch.eval.run'], (timestamp, cityHash64(trace_id, span_id)), kind = 'task' AND attributes['routewatch.eval.run'] != '') AS task_eval_run,
            argMinIf(attributes['routewatch.eval.dataset'], (timestamp, cityHash64(trace_id, span_id)), kind = 'task' AND attributes['routewatch.eval.dataset'] != '') AS task_eval_dataset,
            CAST(argMinIf(
                mapApply((k, v) -> (substring(k, 18), toFloat64OrZero(v)),
                    mapFilter((k, v) -> startsWith(k, 'routewatch.score.') AND isNotNull(toFloat64OrNull(v)), attributes)),
                (timestamp, cityHash64(trace_id, span_id)), kind = 'task') AS Map(String, Float64)) AS span_scores,
            min(timestamp) AS first_start,
            max(end_time) AS last_end,
            countIf(kind = 'task') > 0 AS has_task_span,
            maxIf(duration_ns, kind = 'task') AS task_duration_ns,
            argMinIf(route, (attempt, timestamp, cityHash64(trace_id, span_id)), attempt >= 1 AND route != '') AS route_of_lowest_attempt,
            max(attempt) AS highest_attempt,
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
            argMaxIf((toString(outcome), toString(outcome_reason), end_time), (end_time, cityHash64(trace_id, span_id)), kind = 'task' AND outcome != '') AS span_outcome,
            maxIf(reask, kind = 'task') AS span_reask,
            sumIf(toDecimal128(cleanup_cost_usd, 18), kind = 'task') AS span_cleanup_cost
        FROM spans FINAL
        WHERE task_id != ''
        GROUP BY task_id
    ),
    late AS
    (
        SELECT
            task_id,
            argMax((toString(outcome), toString(outcome_reason)), (observed_at, report_id)) AS late_outcome,
            max(observed_at) AS late_outcome_at,
            max(reask) AS late_reask,
            sum(toDecimal128(cleanup_cost_usd, 18)) AS late_cleanup_cost
        FROM late_outcomes FINAL
        GROUP BY task_id
    ),
    late_score AS
    (
        SELECT task_id, name, argMax(value, (observed_at, report_id)) AS value
        FROM late_outcomes FINAL
        ARRAY JOIN mapKeys(scores) AS name, mapValues(scores) AS value
        GROUP BY task_id, name
    ),
    late_scores AS
    (
        SELECT task_id, CAST(mapFromArrays(groupArray(toString(name)), groupArray(value)) AS Map(String, Float64)) AS late_scores
        FROM late_score
        GROUP BY task_id
    )
SELECT
    by_task.task_id AS task_id,
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
    late.task_id != '' AND (span_outcome.1 = '' OR late_outcome_at >= span_outcome.3) AS late_wins,
    if(late_wins, late_outcome.1, if(span_outcome.1 != '', span_outcome.1, 'unknown')) AS outcome,
    if(late_wins, late_outcome.2, span_outcome.2) AS outcome_reason,
    greatest(span_reask, late_reask) = 1 AS reask,
    toFloat64(llm_cost) AS llm_cost_usd,
    toFloat64(span_cleanup_cost + late_cleanup_cost) AS cleanup_cost_usd,
    toFloat64(llm_cost + span_cleanup_cost + late_cleanup_cost) AS cost_usd,
    mapUpdate(span_scores, late_scores.late_scores) AS scores,
    counted_llm_spans AS http_counted_calls,
    retried_llm_spans AS retried_calls,
    extra_http_requests AS http_retries,
    llm_retry_wait_ms AS retry_wait_ms,
    llm_cost,
    span_cleanup_cost + late_cleanup_cost AS cleanup_cost
FROM by_task
LEFT JOIN late ON late.task_id = by_task.task_id
LEFT JOIN late_scores ON late_scores.task_id = by_task.task_id;
