-- v_tasks_changed: the tasks changed since the rollups were last brought up to date
-- (rollup_state.clean_before): a span or a late outcome report of theirs was stored after it
-- (task_events.inserted_at). For these tasks task_snapshot and cohort_route_hourly may be behind,
-- and the views compute them from task_events (v_tasks_live); for all others they read the
-- rollups. Before the first refresh, every task.
CREATE OR REPLACE VIEW v_tasks_changed AS
SELECT DISTINCT task_id
FROM task_events
WHERE inserted_at > (SELECT max(clean_before) FROM rollup_state);
