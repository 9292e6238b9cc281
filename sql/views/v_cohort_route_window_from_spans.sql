-- v_cohort_route_window_from_spans(from = …, to = …): v_cohort_route_window computed from raw
-- spans (v_window_metrics_from_spans), as it was before the rollups. The reference the rollups are
-- tested against and the benchmark's raw scan; slow, and blind to spans past retention.
CREATE OR REPLACE VIEW v_cohort_route_window_from_spans AS
SELECT * EXCEPT (is_overall, z95, cost_per_successful_task_half_width, score_tasks, score_sums, score_squares)
FROM v_window_metrics_from_spans(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, cohorts = [], routes = [], services = [], policies = [])
WHERE NOT is_overall;
