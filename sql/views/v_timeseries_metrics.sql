-- v_timeseries_metrics: the metrics of v_cohort_route_window (every column of it, with the
-- definitions of v_window_metrics) per cohort × primary route × time bucket, over tasks started
-- in [from, to) of the given cohorts, primary routes, services and policy versions (an empty
-- list: all). Parameterized:
--   SELECT * FROM v_timeseries_metrics(from = '…', to = '…', bucket = 3600,
--       cohorts = [], routes = [], services = [], policies = ['v4'])
-- v_cohort_route_timeseries is this view over every task (no list to give).
-- bucket is in seconds; a bucket starts at a multiple of it since 1970-01-01 UTC (bucket_start),
-- and the first and last buckets hold only the part of them inside the window. bucket = 0 makes
-- the whole window one bucket, starting at from.
-- Read from the rollups, never from raw spans: whole hours from cohort_route_hourly (when buckets
-- are whole hours), partial hours and sub-hour buckets from task_snapshot, and every hour touched
-- by a task changed since the last refresh (v_tasks_changed), or left pending by it
-- (rollup_state.pending_hours), from task_snapshot plus v_tasks_live. Counts and sums equal the computation from raw spans exactly; the latency
-- quantiles are t-digests merged per hour (ClickHouse's t-digest, δ = 0.01). Production tasks
-- only: tasks of eval runs are left out, as in the window views.
CREATE OR REPLACE VIEW v_timeseries_metrics AS
WITH
    {from:DateTime64(9, 'UTC')} AS window_from,
    {to:DateTime64(9, 'UTC')} AS window_to,
    {bucket:UInt32} AS bucket_seconds,
    {cohorts:Array(String)} AS only_cohorts,
    {routes:Array(String)} AS only_routes,
    {services:Array(String)} AS only_services,
    {policies:Array(String)} AS only_policies,
    -- Hour rows fit in buckets of whole hours only.
    bucket_seconds % 3600 = 0 AS hours_fit,
    -- [whole_from, whole_to): the whole hours inside the window (none when it lies within one).
    if(toStartOfHour(window_from) = window_from, toStartOfHour(window_from), toStartOfHour(window_from) + toIntervalHour(1)) AS whole_from,
    toStartOfHour(window_to) AS whole_to,
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
    )) AS changed_hours
    -- routewatch:changed end
SELECT
    bucket_start,
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
    if(http_counted_model_calls = 0, NULL, total_http_retries / tasks) AS retries_per_task
FROM
(
-- The sums per bucket × cohort × route; the columns above are computed from them (the
-- derived columns over plain columns keep the query cheap for ClickHouse to analyse).
SELECT
    bucket_start,
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
    sum(part_retry_wait_ms) AS total_retry_wait_ms
FROM
(
    -- Whole hours rolled up and unchanged since the last refresh (production tasks only).
    SELECT
        if(bucket_seconds = 0, window_from, toDateTime64(toStartOfInterval(hour, toIntervalSecond(bucket_seconds)), 9, 'UTC')) AS bucket_start,
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
        retry_wait_ms AS part_retry_wait_ms
    FROM cohort_route_hourly FINAL
    WHERE hours_fit AND hour >= whole_from AND hour < whole_to AND hour GLOBAL NOT IN (SELECT arrayJoin(changed_hours))
        AND (empty(only_cohorts) OR has(only_cohorts, toString(cohort)))
        AND (empty(only_routes) OR has(only_routes, toString(primary_route)))
        AND (empty(only_services) OR has(only_services, toString(service_name)))
        AND (empty(only_policies) OR has(only_policies, toString(policy_version)))
    UNION ALL
    -- Every other production task of the window, one row each, summed per bucket × cohort × route.
    SELECT
        if(bucket_seconds = 0, window_from, toDateTime64(toStartOfInterval(started_at, toIntervalSecond(bucket_seconds)), 9, 'UTC')) AS bucket_start,
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
        sum(retry_wait_ms) AS part_retry_wait_ms
    FROM
    (
        SELECT
            started_at, toString(cohort) AS cohort, toString(primary_route) AS primary_route,
            toString(service_name) AS service_name, toString(policy_version) AS policy_version,
            toString(outcome) AS outcome, reask, attempts, invisible_fallbacks, llm_cost, cleanup_cost,
            CAST(fallback_reasons AS Array(String)) AS fallback_reasons, latency_ms, model_calls,
            unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms
        FROM task_snapshot FINAL
        WHERE started_at >= window_from AND started_at < window_to AND eval_run = ''
            AND (NOT hours_fit OR started_at < whole_from OR started_at >= whole_to OR toStartOfHour(started_at) GLOBAL IN (SELECT arrayJoin(changed_hours)))
            AND task_id GLOBAL NOT IN (SELECT arrayJoin(changed_tasks))
        -- routewatch:live begin (dropped by the analyzer when no task changed)
        UNION ALL
        SELECT
            started_at, cohort, primary_route, service_name, policy_version, outcome, reask, attempts,
            invisible_fallbacks, llm_cost, cleanup_cost, fallback_reasons, latency_ms, model_calls,
            unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms
        FROM v_tasks_live
        WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks))
            AND started_at >= window_from AND started_at < window_to AND eval_run = ''
        -- routewatch:live end
    )
    WHERE (empty(only_cohorts) OR has(only_cohorts, cohort))
        AND (empty(only_routes) OR has(only_routes, primary_route))
        AND (empty(only_services) OR has(only_services, service_name))
        AND (empty(only_policies) OR has(only_policies, policy_version))
    GROUP BY bucket_start, cohort, primary_route
)
GROUP BY bucket_start, cohort, primary_route
);
