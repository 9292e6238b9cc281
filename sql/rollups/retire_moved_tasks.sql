-- After snapshot_tasks: a changed task whose start moved to an earlier hour still has a row under
-- its old hour, older than this refresh. It is retired (is_deleted = 1 under the same key). Its old
-- hour is one of the hours its spans started in ({hours}), which bounds the rows read.
INSERT INTO task_snapshot (task_id, started_at, version, is_deleted)
SELECT task_id, started_at, {version:DateTime64(9, 'UTC')}, 1
FROM task_snapshot FINAL
WHERE toStartOfHour(started_at) IN (SELECT arrayJoin({hours:Array(DateTime('UTC'))}))
    AND task_id GLOBAL IN
    (
        SELECT task_id FROM task_events
        WHERE inserted_at > {since:DateTime64(3, 'UTC')} AND inserted_at <= {until:DateTime64(3, 'UTC')}
            AND cityHash64(task_id) % {slices:UInt64} = {slice:UInt64}
    )
    AND version < {version:DateTime64(9, 'UTC')};
