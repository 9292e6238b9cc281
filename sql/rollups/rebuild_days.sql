-- After rebuild_hours and retire_empty_groups: every day holding a rebuilt hour ({hours}) is
-- rebuilt whole from cohort_route_hourly, summed per day (sql/migrations/0034).
INSERT INTO cohort_route_daily
    (day, cohort, primary_route, policy_version, service_name, tasks, successes, failures,
     known_outcomes, escalations, reasks, fallbacks, cascades, invisible_fallbacks, total_cost,
     fallback_reason_tasks, latency_digest, cost_squared_sum, success_cost, calls_tasks,
     model_calls, unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms,
     score_tasks, score_sums, score_squares, version, is_deleted)
SELECT
    toStartOfDay(hour) AS day,
    cohort,
    primary_route,
    policy_version,
    service_name,
    sum(tasks),
    sum(successes),
    sum(failures),
    sum(known_outcomes),
    sum(escalations),
    sum(reasks),
    sum(fallbacks),
    sum(cascades),
    sum(invisible_fallbacks),
    sum(total_cost),
    sumMap(fallback_reason_tasks),
    quantilesTDigestMergeState(0.5, 0.95, 0.99)(latency_digest),
    sum(cost_squared_sum),
    sum(success_cost),
    sumMap(calls_tasks),
    sum(model_calls),
    sum(unpriced_calls),
    sum(http_counted_calls),
    sum(retried_calls),
    sum(http_retries),
    sum(retry_wait_ms),
    sumMap(score_tasks),
    sumMap(score_sums),
    sumMap(score_squares),
    {version:DateTime64(9, 'UTC')},
    0
FROM cohort_route_hourly FINAL
WHERE toStartOfDay(hour) IN (SELECT arrayJoin(arrayMap(h -> toStartOfDay(h), {hours:Array(DateTime('UTC'))})))
GROUP BY day, cohort, primary_route, policy_version, service_name;
