-- v_cohort_route_window: the metrics per cohort × primary route over tasks started in
-- [from, to). Parameterized: SELECT * FROM v_cohort_route_window(from = '…', to = '…').
-- top_fallback_reasons counts tasks: a cascade that fell back twice for the same reason is one
-- task with that reason.
-- Read from the rollups, never from raw spans: the window's whole hours from cohort_route_hourly,
-- its partial first and last hours from task_snapshot, and every hour touched by a task changed
-- since the last refresh (v_tasks_changed) from task_snapshot plus v_tasks_live. Counts and sums
-- equal v_cohort_route_window_from_spans exactly; the latency quantiles are t-digests merged per
-- hour (ClickHouse's t-digest, δ = 0.01). v_cohort_route_timeseries is the same query per time
-- bucket; this one is not written as its single-bucket case because reading a view through
-- another costs ~20 ms of query analysis, a fifth of a 24 h window's time.
CREATE OR REPLACE VIEW v_cohort_route_window AS
WITH
    {from:DateTime64(9, 'UTC')} AS window_from,
    {to:DateTime64(9, 'UTC')} AS window_to,
    -- [whole_from, whole_to): the whole hours inside the window (none when it lies within one).
    if(toStartOfHour(window_from) = window_from, toStartOfHour(window_from), toStartOfHour(window_from) + toIntervalHour(1)) AS whole_from,
    toStartOfHour(window_to) AS whole_to,
    -- The tasks changed since the last refresh, read once (small between refreshes).
    (SELECT groupArray(task_id) FROM v_tasks_changed) AS changed_tasks,
    -- Hours holding a changed task: its old hour and its new one are both among the hours its
    -- spans started in.
    (
        SELECT groupUniqArray(toStartOfHour(timestamp))
        FROM task_events
        WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks)) AND kind != 'late_outcome'
    ) AS changed_hours
SELECT
    cohort,
    primary_route,
    tasks,
    successes,
    failures,
    known_outcomes,
    if(known_outcomes = 0, NULL, successes / known_outcomes) AS success_rate,
    known_outcomes / tasks AS outcome_coverage,
    total_cost_usd,
    if(successes = 0, NULL, total_cost_usd / successes) AS cost_per_successful_task,
    fallbacks,
    fallbacks / tasks AS fallback_rate,
    cascades,
    cascades / tasks AS cascade_rate,
    invisible_fallbacks,
    reasks / tasks AS reask_rate,
    escalations / tasks AS escalation_rate,
    arraySort(x -> (-x.2, x.1), arrayMap((r, n) -> (if(r = '', '(none)', r), n), mapKeys(reason_tasks), mapValues(reason_tasks))) AS top_fallback_reasons,
    latency_quantiles[1] AS p50_latency_ms,
    latency_quantiles[2] AS p95_latency_ms,
    latency_quantiles[3] AS p99_latency_ms
FROM
(
    SELECT
        cohort,
        primary_route,
        sum(part_tasks) AS tasks,
        sum(part_successes) AS successes,
        sum(part_failures) AS failures,
        sum(part_known_outcomes) AS known_outcomes,
        toFloat64(sum(part_cost)) AS total_cost_usd,
        sum(part_fallbacks) AS fallbacks,
        sum(part_cascades) AS cascades,
        sum(part_invisible_fallbacks) AS invisible_fallbacks,
        sum(part_reasks) AS reasks,
        sum(part_escalations) AS escalations,
        sumMap(part_reason_tasks) AS reason_tasks,
        quantilesTDigestMerge(0.5, 0.95, 0.99)(part_latency) AS latency_quantiles
    FROM
    (
        -- Whole hours rolled up and unchanged since the last refresh.
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
            fallback_reason_tasks AS part_reason_tasks,
            latency_digest AS part_latency
        FROM cohort_route_hourly FINAL
        WHERE hour >= whole_from AND hour < whole_to AND hour GLOBAL NOT IN (SELECT arrayJoin(changed_hours))
        UNION ALL
        -- Every other task of the window, one row each.
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
            sumMap(CAST((arrayDistinct(fallback_reasons), arrayMap(r -> toUInt64(1), arrayDistinct(fallback_reasons))), 'Map(String, UInt64)')) AS part_reason_tasks,
            quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms) AS part_latency
        FROM
        (
            SELECT started_at, toString(cohort) AS cohort, toString(primary_route) AS primary_route, toString(outcome) AS outcome, reask, attempts, invisible_fallbacks, llm_cost, cleanup_cost, CAST(fallback_reasons AS Array(String)) AS fallback_reasons, latency_ms
            FROM task_snapshot FINAL
            WHERE started_at >= window_from AND started_at < window_to
                AND (started_at < whole_from OR started_at >= whole_to OR toStartOfHour(started_at) GLOBAL IN (SELECT arrayJoin(changed_hours)))
                AND task_id GLOBAL NOT IN (SELECT arrayJoin(changed_tasks))
            UNION ALL
            SELECT started_at, cohort, primary_route, outcome, reask, attempts, invisible_fallbacks, llm_cost, cleanup_cost, fallback_reasons, latency_ms
            FROM v_tasks_live
            WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks))
                AND started_at >= window_from AND started_at < window_to
        )
        GROUP BY cohort, primary_route
    )
    GROUP BY cohort, primary_route
);
