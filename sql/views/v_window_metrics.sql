-- v_window_metrics: the metrics of tasks started in [from, to), per cohort × primary route and
-- overall (is_overall = 1, cohort and primary_route empty), with their uncertainty, over the tasks
-- of the given cohorts, primary routes, services and policy versions (an empty list: all).
-- Parameterized: SELECT * FROM v_window_metrics(from = '…', to = '…', cohorts = [], routes = [],
-- services = [], policies = []). v_cohort_route_window and v_overall_window are its two halves,
-- over every task. Production tasks only: tasks of offline eval runs are left out.
--   success_rate_lower/_upper: Wilson 95 % interval over tasks with a known outcome.
--   cost_per_successful_task_lower/_upper: delta-method 95 % interval of total cost / successes,
--     from per-task cost c and success s: Var ≈ [Var(c) − 2R·Cov(c,s) + R²·Var(s)] / (n·s̄²).
--   loop_rate: tasks that made more than 10 model calls (an agent looping), over tasks.
--   priced_call_share: model calls with a known cost (not 'unpriced'), over model calls.
--   retry_rate: model calls that needed more than one HTTP request (the SDK retried them), over
--     the model calls whose requests were counted; NULL when none was counted.
--   retries_per_task: extra HTTP requests (Σ requests − 1 over counted calls), over tasks; NULL
--     when no call was counted.
--   score_tasks, score_sums, score_squares: per quality score name, the tasks carrying it, Σ score
--     and Σ score² (v_window_scores turns them into means and intervals).
-- Read from the rollups, never from raw spans: the window's whole UTC days from
-- cohort_route_daily, the whole hours around them from cohort_route_hourly, its partial first and
-- last hours from task_snapshot, and every hour touched by a task changed
-- since the last refresh (v_tasks_changed), or left pending by it (rollup_state.pending_hours:
-- the hour still going on then), from task_snapshot plus v_tasks_live. Counts, sums and
-- rates equal v_window_metrics_from_spans exactly (costs summed as Decimal(38, 18)); so does
-- p95_calls_per_task (tasks are counted per number of calls). The latency quantiles are t-digests
-- merged per hour (ClickHouse's t-digest, δ = 0.01); cost_squared_sum is a Float64 sum whose last
-- bits depend on the order of the parts.
CREATE OR REPLACE VIEW v_window_metrics AS
WITH
    {from:DateTime64(9, 'UTC')} AS window_from,
    {to:DateTime64(9, 'UTC')} AS window_to,
    {cohorts:Array(String)} AS only_cohorts,
    {routes:Array(String)} AS only_routes,
    {services:Array(String)} AS only_services,
    {policies:Array(String)} AS only_policies,
    -- [whole_from, whole_to): the whole hours inside the window (none when it lies within one).
    if(toStartOfHour(window_from) = window_from, toStartOfHour(window_from), toStartOfHour(window_from) + toIntervalHour(1)) AS whole_from,
    toStartOfHour(window_to) AS whole_to,
    -- [days_from, days_to): the whole UTC days inside the whole hours (none when they span less).
    if(toStartOfDay(whole_from) = whole_from, whole_from, toStartOfDay(whole_from) + toIntervalDay(1)) AS days_from,
    toStartOfDay(whole_to) AS days_to,
    -- routewatch:changed begin (the analyzer binds these as parameters: storage/window-sql.ts)
    -- The tasks changed since the last refresh, read once (small between refreshes).
    (SELECT groupArray(task_id) FROM v_tasks_changed) AS changed_tasks,
    -- Hours holding a changed task (its old hour and its new one are both among the hours its
    -- spans started in), and the hours the last refresh left for later (still going on then:
    -- rollup_state.pending_hours, 0035). Their rollup rows may be behind.
    arrayDistinct(arrayConcat(
        (
            -- CAST: groupUniqArray drops the column's time zone (Array(DateTime)), which the
            -- concatenation and toStartOfDay below would then read in the server's own zone.
            SELECT CAST(groupUniqArray(toStartOfHour(timestamp)) AS Array(DateTime('UTC')))
            FROM task_events
            WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks)) AND kind != 'late_outcome'
        ),
        (SELECT argMax(pending_hours, (clean_before, refreshed_at)) FROM rollup_state)
    )) AS changed_hours,
    -- routewatch:changed end
    -- Days holding a changed hour: read from the hours and tasks, not cohort_route_daily.
    arrayDistinct(arrayMap(h -> toStartOfDay(h), changed_hours)) AS changed_days
-- routewatch:derived begin (the analyzer reads the sums below and derives these itself:
-- analyzer/window-derive.ts)
SELECT
    is_overall,
    cohort,
    primary_route,
    tasks,
    successes,
    failures,
    known_outcomes,
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
    total_cost_usd,
    cost_squared_sum,
    success_cost_sum,
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
    fallbacks,
    fallbacks / tasks AS fallback_rate,
    cascades,
    cascades / tasks AS cascade_rate,
    invisible_fallbacks,
    reasks / tasks AS reask_rate,
    escalations / tasks AS escalation_rate,
    arraySort(x -> (-x.2, x.1), arrayMap((r, n) -> (if(r = '', '(none)', r), n),
        mapKeys(reason_tasks), mapValues(reason_tasks))) AS top_fallback_reasons,
    latency_quantiles[1] AS p50_latency_ms,
    latency_quantiles[2] AS p95_latency_ms,
    latency_quantiles[3] AS p99_latency_ms,
    -- The exact quantile of the tasks' call counts, each count repeated by its number of tasks.
    arrayReduce('quantileExactHigh(0.95)', arrayFlatten(arrayMap((calls, n) -> arrayResize([calls], n, calls),
        mapKeys(calls_tasks), mapValues(calls_tasks)))) AS p95_calls_per_task,
    arraySum(arrayMap((calls, n) -> if(calls > 10, n, 0), mapKeys(calls_tasks), mapValues(calls_tasks))) / tasks AS loop_rate,
    total_model_calls,
    unpriced_model_calls,
    if(total_model_calls = 0, NULL, 1 - unpriced_model_calls / total_model_calls) AS priced_call_share,
    http_counted_model_calls,
    retried_model_calls,
    total_http_retries,
    total_retry_wait_ms,
    if(http_counted_model_calls = 0, NULL, retried_model_calls / http_counted_model_calls) AS retry_rate,
    if(http_counted_model_calls = 0, NULL, total_http_retries / tasks) AS retries_per_task,
    score_tasks,
    score_sums,
    score_squares
FROM
(
-- routewatch:derived end
-- The sums per cohort × route and overall; the columns above are computed from them (the
-- derived columns over plain columns keep the query cheap for ClickHouse to analyse).
SELECT
    -- The overall row's cohort and primary_route are empty (the grouping sets' default).
    grouping(cohort, primary_route) != 0 AS is_overall,
    cohort,
    primary_route,
    sum(part_tasks) AS tasks,
    sum(part_successes) AS successes,
    sum(part_failures) AS failures,
    sum(part_known_outcomes) AS known_outcomes,
    toFloat64(sum(part_cost)) AS total_cost_usd,
    sum(part_cost_squared) AS cost_squared_sum,
    toFloat64(sum(part_success_cost)) AS success_cost_sum,
    sum(part_fallbacks) AS fallbacks,
    sum(part_cascades) AS cascades,
    sum(part_invisible_fallbacks) AS invisible_fallbacks,
    sum(part_reasks) AS reasks,
    sum(part_escalations) AS escalations,
    sumMap(part_reason_tasks) AS reason_tasks,
    quantilesTDigestMerge(0.5, 0.95, 0.99)(part_latency) AS latency_quantiles,
    sumMap(part_calls_tasks) AS calls_tasks,
    sum(part_model_calls) AS total_model_calls,
    sum(part_unpriced_calls) AS unpriced_model_calls,
    sum(part_http_counted_calls) AS http_counted_model_calls,
    sum(part_retried_calls) AS retried_model_calls,
    sum(part_http_retries) AS total_http_retries,
    sum(part_retry_wait_ms) AS total_retry_wait_ms,
    sumMap(part_score_tasks) AS score_tasks,
    sumMap(part_score_sums) AS score_sums,
    sumMap(part_score_squares) AS score_squares
FROM
(
    -- Whole days and hours rolled up and unchanged since the last refresh (production tasks only).
    SELECT
        toString(cohort) AS cohort,
        toString(primary_route) AS primary_route,
        tasks AS part_tasks,
        successes AS part_successes,
        failures AS part_failures,
        known_outcomes AS part_known_outcomes,
        escalations AS part_escalations,
        reasks AS part_reasks,
        fallbacks AS part_fallbacks,
        cascades AS part_cascades,
        invisible_fallbacks AS part_invisible_fallbacks,
        total_cost AS part_cost,
        cost_squared_sum AS part_cost_squared,
        success_cost AS part_success_cost,
        fallback_reason_tasks AS part_reason_tasks,
        latency_digest AS part_latency,
        calls_tasks AS part_calls_tasks,
        model_calls AS part_model_calls,
        unpriced_calls AS part_unpriced_calls,
        http_counted_calls AS part_http_counted_calls,
        retried_calls AS part_retried_calls,
        http_retries AS part_http_retries,
        retry_wait_ms AS part_retry_wait_ms,
        score_tasks AS part_score_tasks,
        score_sums AS part_score_sums,
        score_squares AS part_score_squares
    FROM
    (
        -- Whole days (cohort_route_daily), then the whole hours around them (cohort_route_hourly).
        -- routewatch:days begin (dropped by the analyzer when the window holds no whole day)
        SELECT cohort, primary_route, policy_version, service_name, tasks, successes, failures,
            known_outcomes, escalations, reasks, fallbacks, cascades, invisible_fallbacks, total_cost,
            fallback_reason_tasks, latency_digest, cost_squared_sum, success_cost, calls_tasks,
            model_calls, unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms,
            score_tasks, score_sums, score_squares
        FROM cohort_route_daily FINAL
        WHERE day >= days_from AND day < days_to AND day GLOBAL NOT IN (SELECT arrayJoin(changed_days))
        UNION ALL
        -- routewatch:days end
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
        WHERE (empty(only_cohorts) OR has(only_cohorts, toString(cohort)))
        AND (empty(only_routes) OR has(only_routes, toString(primary_route)))
        AND (empty(only_services) OR has(only_services, toString(service_name)))
        AND (empty(only_policies) OR has(only_policies, toString(policy_version)))
    UNION ALL
    -- Every other production task of the window, one row each, summed per cohort × route.
    SELECT
        cohort,
        primary_route,
        count() AS part_tasks,
        countIf(outcome = 'success') AS part_successes,
        countIf(outcome IN ('failure', 'escalated', 'abandoned')) AS part_failures,
        countIf(outcome != 'unknown') AS part_known_outcomes,
        countIf(outcome = 'escalated') AS part_escalations,
        countIf(reask) AS part_reasks,
        countIf(attempts >= 2) AS part_fallbacks,
        countIf(attempts > 2) AS part_cascades,
        sum(invisible_fallbacks) AS part_invisible_fallbacks,
        sum(llm_cost + cleanup_cost) AS part_cost,
        sum(toFloat64(llm_cost + cleanup_cost) * toFloat64(llm_cost + cleanup_cost)) AS part_cost_squared,
        sumIf(llm_cost + cleanup_cost, outcome = 'success') AS part_success_cost,
        sumMap(CAST((arrayDistinct(fallback_reasons), arrayMap(r -> toUInt64(1), arrayDistinct(fallback_reasons))), 'Map(String, UInt64)')) AS part_reason_tasks,
        quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms) AS part_latency,
        sumMap(map(model_calls, toUInt64(1))) AS part_calls_tasks,
        sum(model_calls) AS part_model_calls,
        sum(unpriced_calls) AS part_unpriced_calls,
        sum(http_counted_calls) AS part_http_counted_calls,
        sum(retried_calls) AS part_retried_calls,
        sum(http_retries) AS part_http_retries,
        sum(retry_wait_ms) AS part_retry_wait_ms,
        sumMap(CAST(mapApply((name, score) -> (name, toUInt64(1)), scores) AS Map(String, UInt64))) AS part_score_tasks,
        sumMap(scores) AS part_score_sums,
        sumMap(mapApply((name, score) -> (name, score * score), scores)) AS part_score_squares
    FROM
    (
        SELECT
            toString(cohort) AS cohort, toString(primary_route) AS primary_route,
            toString(service_name) AS service_name, toString(policy_version) AS policy_version,
            toString(outcome) AS outcome, reask, attempts, invisible_fallbacks, llm_cost, cleanup_cost,
            CAST(fallback_reasons AS Array(String)) AS fallback_reasons, latency_ms, model_calls,
            unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms,
            CAST(scores AS Map(String, Float64)) AS scores
        FROM task_snapshot FINAL
        WHERE started_at >= window_from AND started_at < window_to AND eval_run = ''
            AND (started_at < whole_from OR started_at >= whole_to OR toStartOfHour(started_at) GLOBAL IN (SELECT arrayJoin(changed_hours)))
            AND task_id GLOBAL NOT IN (SELECT arrayJoin(changed_tasks))
        -- routewatch:live begin (dropped by the analyzer when no task changed)
        UNION ALL
        SELECT
            cohort, primary_route, service_name, policy_version, outcome, reask, attempts,
            invisible_fallbacks, llm_cost, cleanup_cost, fallback_reasons, latency_ms, model_calls,
            unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms, scores
        FROM v_tasks_live
        WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks))
            AND started_at >= window_from AND started_at < window_to AND eval_run = ''
        -- routewatch:live end
    )
    WHERE (empty(only_cohorts) OR has(only_cohorts, cohort))
        AND (empty(only_routes) OR has(only_routes, primary_route))
        AND (empty(only_services) OR has(only_services, service_name))
        AND (empty(only_policies) OR has(only_policies, policy_version))
    GROUP BY cohort, primary_route
)
GROUP BY GROUPING SETS ((cohort, primary_route), ())
HAVING tasks > 0
-- routewatch:derived begin
)
-- routewatch:derived end
;
