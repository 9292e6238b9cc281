-- 0035: a min-max index on task_events.inserted_at. Every read of the rollup views first asks
-- which tasks changed since the last refresh (v_tasks_changed: inserted_at > clean_before), and
-- task_events is ordered by task, so that question scanned the whole column: 15 ms at 10 M spans,
-- on every report. Blocks written before the last refresh are now skipped.
ALTER TABLE task_events ADD INDEX IF NOT EXISTS inserted_at_minmax inserted_at TYPE minmax GRANULARITY 1;
ALTER TABLE task_events MATERIALIZE INDEX inserted_at_minmax SETTINGS mutations_sync = 2;
