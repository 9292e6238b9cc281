-- v_overall_window: the same metrics over every task started in [from, to), one row: the global
-- average, to read beside the cohorts it averages over. Parameterized like v_cohort_route_window.
CREATE OR REPLACE VIEW v_overall_window AS
SELECT * EXCEPT (is_overall, z95, cost_per_successful_task_half_width, cohort, primary_route, score_tasks, score_sums, score_squares)
FROM v_window_metrics(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, cohorts = [], routes = [], services = [], policies = [])
WHERE is_overall;
