-- v_window_scores: named quality scores (0..1; task.setScore, `scores` of POST /v1/outcomes) of
-- the tasks started in [from, to), per cohort × primary route and overall (is_overall = 1), with
-- the same filters as v_window_metrics. Production tasks only. One row per score name a group has.
--   n: tasks with the score; mean_score and a normal 95 % interval of the mean (clamped to 0..1);
--   the interval is NULL below 2 tasks.
-- Read from the rollups as v_window_metrics reads them: the window's whole hours from
-- cohort_route_hourly (score_tasks, score_sums, score_squares), its partial first and last hours
-- and every hour touched by a task changed since the last refresh from task_snapshot plus
-- v_tasks_live. n equals the raw computation exactly; the mean and the deviation are Float64 sums
-- whose last bits depend on the order of the parts.
CREATE OR REPLACE VIEW v_window_scores AS
WITH
    {from:DateTime64(9, 'UTC')} AS window_from,
    {to:DateTime64(9, 'UTC')} AS window_to,
    {cohorts:Array(String)} AS only_cohorts,
    {routes:Array(String)} AS only_routes,
    {services:Array(String)} AS only_services,
    {policies:Array(String)} AS only_policies,
    if(toStartOfHour(window_from) = window_from, toStartOfHour(window_from), toStartOfHour(window_from) + toIntervalHour(1)) AS whole_from,
    toStartOfHour(window_to) AS whole_to,
    -- [days_from, days_to): the whole UTC days inside the whole hours (none when they span less).
    if(toStartOfDay(whole_from) = whole_from, whole_from, toStartOfDay(whole_from) + toIntervalDay(1)) AS days_from,
    toStartOfDay(whole_to) AS days_to,
    -- routewatch:changed begin (the analyzer binds these as parameters: storage/window-sql.ts)
    (SELECT groupArray(task_id) FROM v_tasks_changed) AS changed_tasks,
    (
        SELECT groupUniqArray(toStartOfHour(timestamp))
        FROM task_events
        WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks)) AND kind != 'late_outcome'
    ) AS changed_hours,
    -- routewatch:changed end
    -- Days holding a changed hour: read from the hours and tasks, not cohort_route_daily.
    arrayDistinct(arrayMap(h -> toStartOfDay(h), changed_hours)) AS changed_days
SELECT
    is_overall,
    cohort,
    primary_route,
    score_name,
    n,
    score_sum / n AS mean_score,
    if(n < 2, NULL, sqrt(greatest(0, (score_squares - score_sum * score_sum / n) / (n - 1)))) AS score_stddev,
    if(n < 2, NULL, greatest(0, mean_score - 1.959963984540054 * score_stddev / sqrt(n))) AS mean_score_lower,
    if(n < 2, NULL, least(1, mean_score + 1.959963984540054 * score_stddev / sqrt(n))) AS mean_score_upper
FROM
(
    SELECT
        grouping(cohort, primary_route) != 0 AS is_overall,
        cohort,
        primary_route,
        score_name,
        sum(part_n) AS n,
        sum(part_sum) AS score_sum,
        sum(part_squares) AS score_squares
    FROM
    (
        -- Whole days and hours rolled up and unchanged since the last refresh.
        SELECT
            toString(cohort) AS cohort,
            toString(primary_route) AS primary_route,
            score_name,
            score_tasks[score_name] AS part_n,
            score_sums[score_name] AS part_sum,
            score_squares[score_name] AS part_squares
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
        ARRAY JOIN mapKeys(score_tasks) AS score_name
            WHERE (empty(only_cohorts) OR has(only_cohorts, toString(cohort)))
            AND (empty(only_routes) OR has(only_routes, toString(primary_route)))
            AND (empty(only_services) OR has(only_services, toString(service_name)))
            AND (empty(only_policies) OR has(only_policies, toString(policy_version)))
        UNION ALL
        -- Every other production task of the window with a score, one row per score.
        SELECT cohort, primary_route, score_name, toUInt64(1) AS part_n, score AS part_sum, score * score AS part_squares
        FROM
        (
            SELECT
                toString(cohort) AS cohort, toString(primary_route) AS primary_route,
                toString(service_name) AS service_name, toString(policy_version) AS policy_version,
                CAST(scores AS Map(String, Float64)) AS scores
            FROM task_snapshot FINAL
            WHERE started_at >= window_from AND started_at < window_to AND eval_run = '' AND notEmpty(scores)
                AND (started_at < whole_from OR started_at >= whole_to OR toStartOfHour(started_at) GLOBAL IN (SELECT arrayJoin(changed_hours)))
                AND task_id GLOBAL NOT IN (SELECT arrayJoin(changed_tasks))
            -- routewatch:live begin (dropped by the analyzer when no task changed)
            UNION ALL
            SELECT cohort, primary_route, service_name, policy_version, scores
            FROM v_tasks_live
            WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks))
                AND started_at >= window_from AND started_at < window_to AND eval_run = ''
            -- routewatch:live end
        )
        ARRAY JOIN mapKeys(scores) AS score_name, mapValues(scores) AS score
        WHERE (empty(only_cohorts) OR has(only_cohorts, cohort))
            AND (empty(only_routes) OR has(only_routes, primary_route))
            AND (empty(only_services) OR has(only_services, service_name))
            AND (empty(only_policies) OR has(only_policies, policy_version))
    )
    GROUP BY GROUPING SETS ((cohort, primary_route, score_name), (score_name))
);
