-- 0033: named quality scores in cohort_route_hourly, so that v_window_scores reads whole hours from
-- the hourly rollup instead of every task of the window (the report read all 3 M task rows of a
-- 30-day window for its scores). Per score name, over the production tasks of the group that
-- carry it: score_tasks counts them, score_sums sums their scores, score_squares the squares
-- (for the interval of the mean).
ALTER TABLE cohort_route_hourly ADD COLUMN IF NOT EXISTS score_tasks Map(String, UInt64) AFTER retry_wait_ms;
ALTER TABLE cohort_route_hourly ADD COLUMN IF NOT EXISTS score_sums Map(String, Float64) AFTER score_tasks;
ALTER TABLE cohort_route_hourly ADD COLUMN IF NOT EXISTS score_squares Map(String, Float64) AFTER score_sums;

-- Every hour rolled up so far, rebuilt from task_snapshot with its scores (as
-- sql/rollups/rebuild_hours.sql rebuilds an hour; a newer version replaces the row). Tasks
-- changed since the last refresh are not in task_snapshot yet: the next refresh rebuilds their
-- hours, as it would have anyway. Repeating this statement writes the same rows again.
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
    sumMap(CAST(mapApply((name, score) -> (name, toUInt64(1)), scores) AS Map(String, UInt64))),
    sumMap(CAST(scores AS Map(String, Float64))),
    sumMap(CAST(mapApply((name, score) -> (name, score * score), scores) AS Map(String, Float64))),
    now64(9),
    0
FROM task_snapshot FINAL
WHERE eval_run = ''
GROUP BY hour, cohort, primary_route, policy_version, service_name;
