-- 0035: hours a refresh left for later. A refresh no longer rebuilds the hour that is still going
-- on (nor the day around it): that hour's tasks keep arriving, and rebuilding it whole from
-- task_snapshot every ROUTEWATCH_ROLLUP_INTERVAL cost more with every task it held. Its tasks are
-- in task_snapshot; the hour's rollup rows are rebuilt by the first refresh after it ends. Until
-- then the views read it from the tasks' rows, as they read an hour holding a changed task: the
-- latest rollup_state row lists it in pending_hours.
ALTER TABLE rollup_state ADD COLUMN IF NOT EXISTS pending_hours Array(DateTime('UTC')) DEFAULT [] AFTER duration_ms;
