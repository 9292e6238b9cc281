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
-- The counts are v_window_metrics' (known_outcomes, failures) per cohort × route over all the
-- traffic: read from the rollups, equal to those of v_tasks_from_spans exactly. The report computes
-- the same from those rows (analyzer/report.ts, concentrationOf).
CREATE OR REPLACE VIEW v_failure_concentration AS
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
    -- The totals over every group, beside each group.
    SELECT
        cohort,
        primary_route,
        known_outcomes AS known,
        failures AS failed,
        sum(known) OVER () AS all_known,
        sum(failed) OVER () AS all_failed
    FROM v_window_metrics(
        from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
        cohorts = [], routes = [], services = [], policies = [])
    WHERE NOT is_overall
)
ORDER BY concentration DESC;
