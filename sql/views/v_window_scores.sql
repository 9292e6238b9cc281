-- v_window_scores: named quality scores (0..1; task.setScore, `scores` of POST /v1/outcomes) of
-- the tasks started in [from, to), per cohort × primary route and overall (is_overall = 1), with
-- the same filters as v_window_metrics. Production tasks only. One row per score name a group has.
--   n: tasks with the score; mean_score and a normal 95 % interval of the mean (clamped to 0..1);
--   the interval is NULL below 2 tasks.
-- From v_window_metrics' score_tasks, score_sums and score_squares (per name: the tasks, Σ score,
-- Σ score², read from the rollups as every window metric is). n equals the raw computation
-- exactly; the mean and the deviation are Float64 sums whose last bits depend on the order of the
-- parts. The report computes the same from the metrics rows (analyzer/report.ts, scoresOf).
CREATE OR REPLACE VIEW v_window_scores AS
SELECT
    is_overall,
    cohort,
    primary_route,
    score_name,
    score_tasks[score_name] AS n,
    score_sums[score_name] / n AS mean_score,
    if(n < 2, NULL, sqrt(greatest(0, (score_squares[score_name] - score_sums[score_name] * score_sums[score_name] / n) / (n - 1)))) AS score_stddev,
    if(n < 2, NULL, greatest(0, mean_score - 1.959963984540054 * score_stddev / sqrt(n))) AS mean_score_lower,
    if(n < 2, NULL, least(1, mean_score + 1.959963984540054 * score_stddev / sqrt(n))) AS mean_score_upper
FROM v_window_metrics(
    from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')},
    cohorts = {cohorts:Array(String)}, routes = {routes:Array(String)},
    services = {services:Array(String)}, policies = {policies:Array(String)})
ARRAY JOIN mapKeys(score_tasks) AS score_name;
