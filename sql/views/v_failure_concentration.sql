-- v_failure_concentration: per cohort × primary route over tasks started in [from, to), how much
-- of the failures it carries against its share of tasks (tasks with a known outcome), compared
-- with the rest of the traffic. Parameterized: SELECT * FROM v_failure_concentration(from = '…', to = '…').
--   concentration: share of failures ÷ share of tasks (= its failure rate ÷ the global one);
--     1 is average, 2 carries twice its share.
--   z: one-sided two-proportion z statistic of its failure rate against the rest's (pooled).
--   significantly_worse: a failure rate at least 1.5× the rest's, and both z and the Freeman–Tukey
--     statistic of its failures against the rest's rate, √x + √(x + 1) − √(4·n·p + 1) (whose tail
--     stays near the normal one at a few expected failures, where z's is far too light), at or
--     above the one-sided normal quantile of 1 % ÷ the number of groups with outcomes (Bonferroni;
--     Abramowitz & Stegun 26.2.23), and at least 3: 1 % over all the groups read at once.
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
    greatest(3, bonferroni_t - (2.515517 + 0.802853 * bonferroni_t + 0.010328 * bonferroni_t * bonferroni_t)
        / (1 + 1.432788 * bonferroni_t + 0.189269 * bonferroni_t * bonferroni_t + 0.001308 * bonferroni_t * bonferroni_t * bonferroni_t)) AS z_needed,
    if(rest_tasks = 0, NULL, sqrt(failed) + sqrt(failed + 1) - sqrt(4 * known * rest_failure_rate + 1)) AS freeman_tukey,
    ifNull(z >= z_needed AND freeman_tukey >= z_needed AND failure_rate >= 1.5 * rest_failure_rate, 0) AS significantly_worse,
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
        sum(failed) OVER () AS all_failed,
        -- For the quantile of 1 % ÷ the groups with outcomes (z_needed).
        sqrt(-2 * log(0.01 / greatest(countIf(known > 0) OVER (), 1))) AS bonferroni_t
    FROM v_window_metrics(
        from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
        cohorts = [], routes = [], services = [], policies = [])
    WHERE NOT is_overall
)
ORDER BY concentration DESC;
