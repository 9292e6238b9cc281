-- After rebuild_hours: a group of a rebuilt hour that has no task any more (its only task moved
-- to another hour, or changed cohort) is older than this refresh, and is retired.
INSERT INTO cohort_route_hourly (hour, cohort, primary_route, policy_version, service_name, version, is_deleted)
SELECT hour, cohort, primary_route, policy_version, service_name, {version:DateTime64(9, 'UTC')}, 1
FROM cohort_route_hourly FINAL
WHERE hour GLOBAL IN
    (
        SELECT toStartOfHour(timestamp) FROM task_events
        WHERE kind != 'late_outcome' AND task_id GLOBAL IN (SELECT task_id FROM task_events WHERE inserted_at > {since:DateTime64(3, 'UTC')})
    )
    AND version < {version:DateTime64(9, 'UTC')};
