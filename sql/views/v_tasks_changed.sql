-- v_tasks_changed: the tasks changed since the rollups were last brought up to date
-- (rollup_state.clean_before): a span or a late outcome report of theirs was stored after it. For
-- these tasks task_snapshot and cohort_route_hourly may be behind, and the views compute them
-- from task_spans and late_outcomes (v_tasks_live); for all others they read the rollups. Before
-- the first refresh, every task.
CREATE OR REPLACE VIEW v_tasks_changed AS
WITH (SELECT max(clean_before) FROM rollup_state) AS clean_before
SELECT DISTINCT task_id
FROM
(
    SELECT task_id FROM task_spans WHERE inserted_at > clean_before
    UNION ALL
    SELECT task_id FROM late_outcomes WHERE inserted_at > clean_before
);
