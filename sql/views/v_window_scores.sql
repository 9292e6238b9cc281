-- v_window_scores: named quality scores (0..1; task.setScore, `scores` of POST /v1/outcomes) of
-- the tasks started in [from, to), per cohort × primary route and overall (is_overall = 1), with
-- the same filters as v_window_metrics. Production tasks only. One row per score name a group has.
--   n: tasks with the score; mean_score and a normal 95 % interval of the mean (clamped to 0..1);
--   the interval is NULL below 2 tasks.
CREATE OR REPLACE VIEW v_window_scores AS
SELECT
    grouping(cohort, primary_route) != 0 AS is_overall,
    cohort,
    primary_route,
    score_name,
    count() AS n,
    avg(score) AS mean_score,
    if(n < 2, NULL, stddevSamp(score)) AS score_stddev,
    if(n < 2, NULL, greatest(0, mean_score - 1.959963984540054 * score_stddev / sqrt(n))) AS mean_score_lower,
    if(n < 2, NULL, least(1, mean_score + 1.959963984540054 * score_stddev / sqrt(n))) AS mean_score_upper
FROM v_tasks
ARRAY JOIN mapKeys(scores) AS score_name, mapValues(scores) AS score
WHERE started_at >= {from:DateTime64(9, 'UTC')} AND started_at < {to:DateTime64(9, 'UTC')}
    AND eval_run = ''
    AND (empty({cohorts:Array(String)}) OR has({cohorts:Array(String)}, cohort))
    AND (empty({routes:Array(String)}) OR has({routes:Array(String)}, primary_route))
    AND (empty({services:Array(String)}) OR has({services:Array(String)}, service_name))
    AND (empty({policies:Array(String)}) OR has({policies:Array(String)}, policy_version))
GROUP BY GROUPING SETS ((cohort, primary_route, score_name), (score_name));
