-- v_tasks: one row per task. A task is every span sharing routewatch.task.id (the trace id when
-- the application gave none). Cost: every LLM call of the task, fallbacks included, plus cleanup
-- costs (the task span's and every late outcome report's).
-- Outcome: the latest of the task span's outcome (at the span's end) and the late outcome reports
-- (POST /v1/outcomes, table late_outcomes) wins; a late report wins a tie with the span. Each report
-- counts once, at the time it was first observed (late_outcomes keeps that copy). Among reports
-- of one time, the greatest report_id wins: the order is fixed whatever order they arrived in.
-- Tasks of an offline eval run (routewatch.eval.run on the task span) carry eval_run and
-- eval_dataset; the production views leave them out. scores: named quality scores in 0..1, from
-- the task span (routewatch.score.<name>) and late reports; per name the latest report wins over
-- the span. Hidden retries (the SDK's own, inside one model call): http_counted_calls are the model
-- calls whose HTTP requests were counted (spans.http_attempts > 0), retried_calls those of them
-- that made more than one, http_retries the extra requests (Σ attempts − 1), retry_wait_ms the
-- time spent between them.
CREATE OR REPLACE VIEW v_tasks AS
WITH
    by_task AS
    (
        SELECT
            task_id,
            anyIf(cohort, kind = 'task' AND cohort != '') AS task_cohort,
            anyIf(cohort, cohort != '') AS any_cohort,
            any(service_name) AS service_name,
            anyIf(policy_version, policy_version != '') AS policy_version,
            anyIf(attributes['routewatch.eval.run'], kind = 'task' AND attributes['routewatch.eval.run'] != '') AS eval_run,
            anyIf(attributes['routewatch.eval.dataset'], kind = 'task' AND attributes['routewatch.eval.dataset'] != '') AS eval_dataset,
            anyIf(
                mapApply((k, v) -> (substring(k, 18), toFloat64OrZero(v)),
                    mapFilter((k, v) -> startsWith(k, 'routewatch.score.') AND isNotNull(toFloat64OrNull(v)), attributes)),
                kind = 'task') AS span_scores,
            min(timestamp) AS started_at,
            max(end_time) AS ended_at,
            countIf(kind = 'task') > 0 AS has_task_span,
            maxIf(duration_ns, kind = 'task') AS task_duration_ns,
            argMinIf(route, attempt, attempt >= 1 AND route != '') AS primary_route,
            max(attempt) AS attempts,
            countIf(kind = 'llm') AS model_calls,
            countIf(kind = 'llm' AND status_code = 'error') AS failed_model_calls,
            countIf(kind = 'llm' AND cost_source = 'unpriced') AS unpriced_calls,
            countIf(kind = 'llm' AND http_attempts > 0) AS http_counted_calls,
            countIf(kind = 'llm' AND http_attempts > 1) AS retried_calls,
            sumIf(toUInt64(http_attempts) - 1, kind = 'llm' AND http_attempts > 1) AS http_retries,
            sumIf(http_retry_wait_ms, kind = 'llm') AS retry_wait_ms,
            arrayMap(x -> x.2, arraySort(groupArrayIf((attempt, fallback_reason), kind = 'attempt' AND attempt >= 2))) AS fallback_reasons,
            countIf(kind = 'attempt' AND attempt >= 2 AND fallback_reason = '') AS invisible_fallbacks,
            sumIf(cost_usd, kind = 'llm') AS llm_cost_usd,
            sumIf(input_tokens, kind = 'llm') AS input_tokens,
            sumIf(output_tokens, kind = 'llm') AS output_tokens,
            argMaxIf(outcome, end_time, kind = 'task' AND outcome != '') AS span_outcome,
            argMaxIf(outcome_reason, end_time, kind = 'task' AND outcome != '') AS span_outcome_reason,
            maxIf(end_time, kind = 'task' AND outcome != '') AS span_outcome_at,
            maxIf(reask, kind = 'task') AS span_reask,
            sumIf(cleanup_cost_usd, kind = 'task') AS span_cleanup_cost_usd
        FROM spans FINAL
        WHERE task_id != ''
        GROUP BY task_id
    ),
    late AS
    (
        SELECT
            task_id,
            argMax(outcome, (observed_at, report_id)) AS late_outcome,
            argMax(outcome_reason, (observed_at, report_id)) AS late_outcome_reason,
            max(observed_at) AS late_outcome_at,
            max(reask) AS late_reask,
            sum(cleanup_cost_usd) AS late_cleanup_cost_usd
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
        SELECT task_id, mapFromArrays(groupArray(name), groupArray(value)) AS late_scores
        FROM late_score
        GROUP BY task_id
    )
SELECT
    by_task.task_id AS task_id,
    if(task_cohort != '', task_cohort, any_cohort) AS cohort,
    service_name,
    policy_version,
    eval_run,
    eval_dataset,
    started_at,
    ended_at,
    if(has_task_span, task_duration_ns, toUInt64(greatest(0, toUnixTimestamp64Nano(ended_at) - toUnixTimestamp64Nano(started_at)))) / 1e6 AS latency_ms,
    primary_route,
    attempts,
    model_calls,
    failed_model_calls,
    unpriced_calls,
    fallback_reasons,
    invisible_fallbacks,
    input_tokens,
    output_tokens,
    late.task_id != '' AND (span_outcome = '' OR late_outcome_at >= span_outcome_at) AS late_wins,
    if(late_wins, late_outcome, if(span_outcome != '', span_outcome, 'unknown')) AS outcome,
    if(late_wins, late_outcome_reason, span_outcome_reason) AS outcome_reason,
    greatest(span_reask, late_reask) = 1 AS reask,
    llm_cost_usd,
    span_cleanup_cost_usd + late_cleanup_cost_usd AS cleanup_cost_usd,
    llm_cost_usd + span_cleanup_cost_usd + late_cleanup_cost_usd AS cost_usd,
    mapUpdate(CAST(span_scores, 'Map(String, Float64)'), CAST(late_scores.late_scores, 'Map(String, Float64)')) AS scores,
    http_counted_calls,
    retried_calls,
    http_retries,
    retry_wait_ms
FROM by_task
LEFT JOIN late ON late.task_id = by_task.task_id
LEFT JOIN late_scores ON late_scores.task_id = by_task.task_id;
