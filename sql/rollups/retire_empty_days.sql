-- After rebuild_days: a group of a rebuilt day that has no task any more is older than this
-- refresh, and is retired (as retire_empty_groups does for hours).
INSERT INTO cohort_route_daily (day, cohort, primary_route, policy_version, service_name, version, is_deleted)
SELECT day, cohort, primary_route, policy_version, service_name, {version:DateTime64(9, 'UTC')}, 1
FROM cohort_route_daily FINAL
WHERE day IN (SELECT arrayJoin(arrayMap(h -> toStartOfDay(h), {hours:Array(DateTime('UTC'))})))
    AND version < {version:DateTime64(9, 'UTC')};
