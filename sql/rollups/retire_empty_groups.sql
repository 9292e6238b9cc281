-- After rebuild_hours: a group of a rebuilt hour that has no task any more (its only task moved
-- to another hour, or changed cohort) is older than this refresh, and is retired.
INSERT INTO cohort_route_hourly (hour, cohort, primary_route, policy_version, service_name, version, is_deleted)
SELECT hour, cohort, primary_route, policy_version, service_name, {version:DateTime64(9, 'UTC')}, 1
FROM cohort_route_hourly FINAL
WHERE hour IN (SELECT arrayJoin({hours:Array(DateTime('UTC'))}))
    AND version < {version:DateTime64(9, 'UTC')};
