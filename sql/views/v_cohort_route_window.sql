-- v_cohort_route_window: the metrics per cohort × primary route over tasks started in
-- [from, to), with their intervals (see v_window_metrics for every column; read from the
-- rollups). Parameterized: SELECT * FROM v_cohort_route_window(from = '…', to = '…').
-- top_fallback_reasons counts tasks: a cascade that fell back twice for the same reason is one
-- task with that reason.
CREATE OR REPLACE VIEW v_cohort_route_window AS
SELECT * EXCEPT (is_overall, z95, cost_per_successful_task_half_width, score_tasks, score_sums, score_squares)
FROM v_window_metrics(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, cohorts = [], routes = [], services = [], policies = [])
WHERE NOT is_overall;
