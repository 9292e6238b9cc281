-- v_failure_concentration: per cohort × primary route over tasks started in [from, to), how much
-- of the failures it carries against its share of tasks (tasks with a known outcome), compared
-- with the rest of the traffic. Parameterized: SELECT * FROM v_failure_concentration(from = '…', to = '…').
--   concentration: share of failures ÷ share of tasks (= its failure rate ÷ the global one);
--     1 is average, 2 carries twice its share.
--   z: one-sided two-proportion z statistic of its failure rate against the rest's (pooled).
--   significantly_worse: z ≥ 3 (one-sided p ≈ 0.0013, which stays below 1 % over up to seven
--     groups read at once) and a failure rate at least 1.5× the rest's.
--   masked_by_average: significantly worse while the global success rate stays within 5 points of
--     the rest's — a global threshold would not see it.
-- Read from the rollups as v_window_metrics reads them (the counts are additive): the window's
-- whole hours from cohort_route_hourly, its partial first and last hours and every hour touched by
-- a task changed since the last refresh from task_snapshot plus v_tasks_live. The counts equal
-- those of v_tasks_from_spans exactly.
CREATE OR REPLACE VIEW v_failure_concentration AS
WITH
    {from:DateTime64(9, 'UTC')} AS window_from,
    {to:DateTime64(9, 'UTC')} AS window_to,
    -- [whole_from, whole_to): the whole hours inside the window (none when it lies within one).
    if(toStartOfHour(window_from) = window_from, toStartOfHour(window_from), toStartOfHour(window_from) + toIntervalHour(1)) AS whole_from,
    toStartOfHour(window_to) AS whole_to,
    -- [days_from, days_to): the whole UTC days inside the whole hours (none when they span less).
    if(toStartOfDay(whole_from) = whole_from, whole_from, toStartOfDay(whole_from) + toIntervalDay(1)) AS days_from,
    toStartOfDay(whole_to) AS days_to,
    -- routewatch:changed begin (the analyzer binds these as parameters: storage/window-sql.ts)
    -- The tasks changed since the last refresh, and the hours holding them (see v_window_metrics).
    (SELECT groupArray(task_id) FROM v_tasks_changed) AS changed_tasks,
    (
        SELECT groupUniqArray(toStartOfHour(timestamp))
        FROM task_events
        WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks)) AND kind != 'late_outcome'
    ) AS changed_hours,
    -- routewatch:changed end
    -- Days holding a changed hour: read from the hours and tasks, not cohort_route_daily.
    arrayDistinct(arrayMap(h -> toStartOfDay(h), changed_hours)) AS changed_days,
    groups AS
    (
        SELECT
            cohort,
            primary_route,
            sum(part_known) AS known,
            sum(part_failed) AS failed
        FROM
        (
            -- Whole days and hours rolled up and unchanged since the last refresh (production tasks only).
            SELECT
                toString(cohort) AS cohort,
                toString(primary_route) AS primary_route,
                tasks AS part_tasks,
                known_outcomes AS part_known,
                failures AS part_failed
            FROM
            (
                -- Whole days (cohort_route_daily), then the whole hours around them (cohort_route_hourly).
                SELECT cohort, primary_route, policy_version, service_name, tasks, successes, failures,
                    known_outcomes, escalations, reasks, fallbacks, cascades, invisible_fallbacks, total_cost,
                    fallback_reason_tasks, latency_digest, cost_squared_sum, success_cost, calls_tasks,
                    model_calls, unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms,
                    score_tasks, score_sums, score_squares
                FROM cohort_route_daily FINAL
                WHERE day >= days_from AND day < days_to AND day GLOBAL NOT IN (SELECT arrayJoin(changed_days))
                UNION ALL
                SELECT cohort, primary_route, policy_version, service_name, tasks, successes, failures,
                    known_outcomes, escalations, reasks, fallbacks, cascades, invisible_fallbacks, total_cost,
                    fallback_reason_tasks, latency_digest, cost_squared_sum, success_cost, calls_tasks,
                    model_calls, unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms,
                    score_tasks, score_sums, score_squares
                FROM cohort_route_hourly FINAL
                WHERE hour >= whole_from AND hour < whole_to AND hour GLOBAL NOT IN (SELECT arrayJoin(changed_hours))
                    AND NOT (toStartOfDay(hour) >= days_from AND toStartOfDay(hour) < days_to
                        AND toStartOfDay(hour) GLOBAL NOT IN (SELECT arrayJoin(changed_days)))
            )
            UNION ALL
            -- Every other production task of the window, one row each.
            SELECT
                cohort,
                primary_route,
                toUInt64(1) AS part_tasks,
                toUInt64(outcome != 'unknown') AS part_known,
                toUInt64(outcome IN ('failure', 'escalated', 'abandoned')) AS part_failed
            FROM
            (
                SELECT toString(cohort) AS cohort, toString(primary_route) AS primary_route, toString(outcome) AS outcome
                FROM task_snapshot FINAL
                WHERE started_at >= window_from AND started_at < window_to AND eval_run = ''
                    AND (started_at < whole_from OR started_at >= whole_to OR toStartOfHour(started_at) GLOBAL IN (SELECT arrayJoin(changed_hours)))
                    AND task_id GLOBAL NOT IN (SELECT arrayJoin(changed_tasks))
                -- routewatch:live begin (dropped by the analyzer when no task changed)
                UNION ALL
                SELECT cohort, primary_route, outcome
                FROM v_tasks_live
                WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks))
                    AND started_at >= window_from AND started_at < window_to AND eval_run = ''
                -- routewatch:live end
            )
        )
        GROUP BY cohort, primary_route
        HAVING sum(part_tasks) > 0
    )
SELECT
    cohort,
    primary_route,
    known AS tasks,
    failed AS failures,
    if(known = 0, NULL, failed / known) AS failure_rate,
    all_known - known AS rest_tasks,
    all_failed - failed AS rest_failures,
    if(rest_tasks = 0, NULL, rest_failures / rest_tasks) AS rest_failure_rate,
    if(all_known = 0, NULL, 1 - all_failed / all_known) AS global_success_rate,
    if(all_failed = 0, NULL, failed / all_failed) AS failure_share,
    if(all_known = 0, NULL, known / all_known) AS task_share,
    if(all_failed = 0 OR known = 0, NULL, failure_share / task_share) AS concentration,
    (failed + rest_failures) / nullIf(known + rest_tasks, 0) AS pooled_rate,
    if(known = 0 OR rest_tasks = 0 OR pooled_rate IN (0, 1), NULL,
        (failure_rate - rest_failure_rate) / sqrt(pooled_rate * (1 - pooled_rate) * (1 / known + 1 / rest_tasks))) AS z,
    ifNull(z >= 3 AND failure_rate >= 1.5 * rest_failure_rate, 0) AS significantly_worse,
    ifNull(significantly_worse AND (1 - rest_failure_rate) - global_success_rate < 0.05, 0) AS masked_by_average
FROM
(
    -- The totals over every group, beside each group: the groups are computed once (a CTE read
    -- twice, by a cross join with its totals, would compute them twice).
    SELECT cohort, primary_route, known, failed, sum(known) OVER () AS all_known, sum(failed) OVER () AS all_failed
    FROM groups
)
ORDER BY concentration DESC;
