-- Every hour that holds a task changed in (since, until] — {hours}: its old and its new hour are
-- among the hours its spans started in — is rebuilt whole from task_snapshot: a task's outcome,
-- cost or hour may have changed after its hour was rolled up, and only a rebuild from per-task
-- rows undoes that.
INSERT INTO cohort_route_hourly
    (hour, cohort, primary_route, policy_version, service_name, tasks, successes, failures,
     known_outcomes, escalations, reasks, fallbacks, cascades, invisible_fallbacks, total_cost,
     fallback_reason_tasks, latency_digest, version, is_deleted)
SELECT
    toStartOfHour(started_at) AS hour,
    cohort,
    primary_route,
    policy_version,
    service_name,
    count(),
    countIf(outcome = 'success'),
    countIf(outcome IN ('failure', 'escalated', 'abandoned')),
    countIf(outcome != 'unknown'),
    countIf(outcome = 'escalated'),
    countIf(reask),
    countIf(attempts >= 2),
    countIf(attempts > 2),
    sum(invisible_fallbacks),
    sum(llm_cost + cleanup_cost),
    sumMap(CAST((arrayDistinct(fallback_reasons), arrayMap(r -> toUInt64(1), arrayDistinct(fallback_reasons))), 'Map(String, UInt64)')),
    quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms),
    {version:DateTime64(9, 'UTC')},
    0
FROM task_snapshot FINAL
WHERE toStartOfHour(started_at) IN (SELECT arrayJoin({hours:Array(DateTime('UTC'))}))
GROUP BY hour, cohort, primary_route, policy_version, service_name;
