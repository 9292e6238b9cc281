-- v_window_metrics_from_spans(from, to, cohorts, routes, services, policies): v_window_metrics
-- computed from raw spans (v_tasks_from_spans), one row per task summed as before the rollups,
-- costs summed exactly (Decimal(38, 18)). The reference the rollups are tested against and the
-- benchmark's raw scan; slow, and blind to spans past retention.
CREATE OR REPLACE VIEW v_window_metrics_from_spans AS
SELECT
    -- The overall row's cohort and primary_route are empty (the grouping sets' default).
    grouping(cohort, primary_route) != 0 AS is_overall,
    cohort,
    primary_route,
    count() AS tasks,
    countIf(outcome = 'success') AS successes,
    countIf(outcome IN ('failure', 'escalated', 'abandoned')) AS failures,
    countIf(outcome != 'unknown') AS known_outcomes,
    if(known_outcomes = 0, NULL, successes / known_outcomes) AS success_rate,
    1.959963984540054 AS z95,
    if(known_outcomes = 0, NULL,
        greatest(0, (success_rate + z95 * z95 / (2 * known_outcomes)
            - z95 * sqrt(success_rate * (1 - success_rate) / known_outcomes + z95 * z95 / (4 * known_outcomes * known_outcomes)))
            / (1 + z95 * z95 / known_outcomes))) AS success_rate_lower,
    if(known_outcomes = 0, NULL,
        least(1, (success_rate + z95 * z95 / (2 * known_outcomes)
            + z95 * sqrt(success_rate * (1 - success_rate) / known_outcomes + z95 * z95 / (4 * known_outcomes * known_outcomes)))
            / (1 + z95 * z95 / known_outcomes))) AS success_rate_upper,
    known_outcomes / tasks AS outcome_coverage,
    toFloat64(sum(llm_cost + cleanup_cost)) AS total_cost_usd,
    sum(cost_usd * cost_usd) AS cost_squared_sum,
    toFloat64(sumIf(llm_cost + cleanup_cost, outcome = 'success')) AS success_cost_sum,
    if(successes = 0, NULL, total_cost_usd / successes) AS cost_per_successful_task,
    if(successes = 0 OR tasks < 2, NULL,
        z95 * sqrt(greatest(0,
            greatest(0, cost_squared_sum / tasks - pow(total_cost_usd / tasks, 2))
            - 2 * cost_per_successful_task * (success_cost_sum / tasks - (total_cost_usd / tasks) * (successes / tasks))
            + pow(cost_per_successful_task, 2) * (successes / tasks) * (1 - successes / tasks))
            / (tasks * pow(successes / tasks, 2)))) AS cost_per_successful_task_half_width,
    if(cost_per_successful_task_half_width IS NULL, NULL,
        greatest(0, cost_per_successful_task - cost_per_successful_task_half_width)) AS cost_per_successful_task_lower,
    cost_per_successful_task + cost_per_successful_task_half_width AS cost_per_successful_task_upper,
    countIf(attempts >= 2) AS fallbacks,
    fallbacks / tasks AS fallback_rate,
    countIf(attempts > 2) AS cascades,
    cascades / tasks AS cascade_rate,
    sum(invisible_fallbacks) AS invisible_fallbacks,
    countIf(reask) / tasks AS reask_rate,
    countIf(outcome = 'escalated') / tasks AS escalation_rate,
    arraySort(x -> (-x.2, x.1), arrayMap(r -> (if(r = '', '(none)', r), toUInt64(countEqual(groupArrayArray(arrayDistinct(fallback_reasons)), r))), arrayDistinct(groupArrayArray(fallback_reasons)))) AS top_fallback_reasons,
    quantileTDigest(0.5)(latency_ms) AS p50_latency_ms,
    quantileTDigest(0.95)(latency_ms) AS p95_latency_ms,
    quantileTDigest(0.99)(latency_ms) AS p99_latency_ms,
    quantileExactHigh(0.95)(model_calls) AS p95_calls_per_task,
    countIf(model_calls > 10) / tasks AS loop_rate,
    sum(model_calls) AS total_model_calls,
    sum(unpriced_calls) AS unpriced_model_calls,
    if(total_model_calls = 0, NULL, 1 - unpriced_model_calls / total_model_calls) AS priced_call_share,
    sum(http_counted_calls) AS http_counted_model_calls,
    sum(retried_calls) AS retried_model_calls,
    sum(http_retries) AS total_http_retries,
    sum(retry_wait_ms) AS total_retry_wait_ms,
    if(http_counted_model_calls = 0, NULL, retried_model_calls / http_counted_model_calls) AS retry_rate,
    if(http_counted_model_calls = 0, NULL, total_http_retries / tasks) AS retries_per_task,
    sumMap(CAST(mapApply((name, score) -> (name, toUInt64(1)), scores) AS Map(String, UInt64))) AS score_tasks,
    sumMap(scores) AS score_sums,
    sumMap(mapApply((name, score) -> (name, score * score), scores)) AS score_squares
FROM v_tasks_from_spans
WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
    AND eval_run = ''
    AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
    AND (empty({routes:Array(String)}) OR has({routes:Array(String)}, primary_route))
    AND (empty({services:Array(String)}) OR has({services:Array(String)}, service_name))
    AND (empty({policies:Array(String)}) OR has({policies:Array(String)}, policy_version))
GROUP BY GROUPING SETS ((cohort, primary_route), ())
HAVING tasks > 0;
