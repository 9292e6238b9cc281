-- Every hour that holds a task changed in (since, until] — {hours}: its old and its new hour are
-- among the hours its spans started in — is rebuilt whole from task_snapshot: a task's outcome,
-- cost or hour may have changed after its hour was rolled up, and only a rebuild from per-task
-- rows undoes that. Production tasks only: the window views leave eval runs out.
INSERT INTO cohort_route_hourly
    (hour, cohort, primary_route, policy_version, service_name, tasks, successes, failures,
     known_outcomes, escalations, reasks, fallbacks, cascades, invisible_fallbacks, total_cost,
     fallback_reason_tasks, latency_digest, cost_squared_sum, success_cost, calls_tasks,
     model_calls, unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms,
     score_tasks, score_sums, score_squares, version, is_deleted)
SELECT
    toStartOfHour(started_at) AS hour,
    cohort,
    primary_route,
    policy_version,
    service_name,
    count(),
    countIf(outcome = 'success'),
    countIf(outcome IN ('failure', 'escalated', 'abandoned')),
    countIf(outcome != 'unknown'),
    countIf(outcome = 'escalated'),
    countIf(reask),
    countIf(attempts >= 2),
    countIf(attempts > 2),
    sum(invisible_fallbacks),
    sum(llm_cost + cleanup_cost),
    sumMap(CAST((arrayDistinct(fallback_reasons), arrayMap(r -> toUInt64(1), arrayDistinct(fallback_reasons))), 'Map(String, UInt64)')),
    quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms),
    sum(toFloat64(llm_cost + cleanup_cost) * toFloat64(llm_cost + cleanup_cost)),
    sumIf(llm_cost + cleanup_cost, outcome = 'success'),
    sumMap(map(model_calls, toUInt64(1))),
    sum(model_calls),
    sum(unpriced_calls),
    sum(http_counted_calls),
    sum(retried_calls),
    sum(http_retries),
    sum(retry_wait_ms),
    -- Per score name: tasks carrying it, Σ score, Σ score² (sql/migrations/0033).
    sumMap(CAST(mapApply((name, score) -> (name, toUInt64(1)), scores) AS Map(String, UInt64))),
    sumMap(CAST(scores AS Map(String, Float64))),
    sumMap(CAST(mapApply((name, score) -> (name, score * score), scores) AS Map(String, Float64))),
    {version:DateTime64(9, 'UTC')},
    0
FROM task_snapshot FINAL
WHERE toStartOfHour(started_at) IN (SELECT arrayJoin({hours:Array(DateTime('UTC'))}))
    AND eval_run = ''
GROUP BY hour, cohort, primary_route, policy_version, service_name;
