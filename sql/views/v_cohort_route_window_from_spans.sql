-- v_cohort_route_window_from_spans(from = …, to = …): v_cohort_route_window computed from raw
-- spans (v_tasks_from_spans), as it was before the rollups. The reference the rollups are tested
-- against and the benchmark's raw scan; slow, and blind to spans past retention.
CREATE OR REPLACE VIEW v_cohort_route_window_from_spans AS
SELECT
    cohort,
    primary_route,
    count() AS tasks,
    countIf(outcome = 'success') AS successes,
    countIf(outcome IN ('failure', 'escalated', 'abandoned')) AS failures,
    countIf(outcome != 'unknown') AS known_outcomes,
    if(known_outcomes = 0, NULL, successes / known_outcomes) AS success_rate,
    known_outcomes / tasks AS outcome_coverage,
    toFloat64(sum(llm_cost + cleanup_cost)) AS total_cost_usd,
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
FROM v_tasks_from_spans
WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
GROUP BY cohort, primary_route;
