-- v_cohort_route_window: the metrics per cohort × primary route over tasks started in
-- [from, to). Parameterized: SELECT * FROM v_cohort_route_window(from = '…', to = '…').
-- top_fallback_reasons counts tasks: a cascade that fell back twice for the same reason is one
-- task with that reason.
CREATE OR REPLACE VIEW v_cohort_route_window AS
SELECT
    cohort,
    primary_route,
    count() AS tasks,
    countIf(outcome = 'success') AS successes,
    countIf(outcome IN ('failure', 'escalated', 'abandoned')) AS failures,
    countIf(outcome != 'unknown') AS known_outcomes,
    if(known_outcomes = 0, NULL, successes / known_outcomes) AS success_rate,
    known_outcomes / tasks AS outcome_coverage,
    sum(cost_usd) AS total_cost_usd,
    if(successes = 0, NULL, total_cost_usd / successes) AS cost_per_successful_task,
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
    quantileTDigest(0.99)(latency_ms) AS p99_latency_ms
FROM v_tasks
WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
GROUP BY cohort, primary_route;
