-- v_tasks_live: one row per task, computed now from task_state (sql/migrations/0010), which the
-- materialized views keep up to date with every span and late outcome stored. The columns of
-- v_tasks, with costs as Decimal(38, 18) (llm_cost, cleanup_cost) and the hours the task's spans
-- started in (span_hours). v_tasks and the window views read it for the tasks changed since the
-- last rollup refresh; filter it by task_id, which reaches task_state's primary key.
-- Late outcome reports: each report once, at its first copy (the earliest observed_at; copies of
-- one report sort by it); the latest report by (observed_at, report_id) decides.
CREATE OR REPLACE VIEW v_tasks_live AS
SELECT
    task_id,
    task_cohort AS cohort,
    task_service AS service_name,
    task_policy AS policy_version,
    first_start AS started_at,
    last_end AS ended_at,
    if(task_spans > 0, longest_task_ns, toUInt64(greatest(0, toUnixTimestamp64Nano(last_end) - toUnixTimestamp64Nano(first_start)))) / 1e6 AS latency_ms,
    route_of_lowest_attempt AS primary_route,
    highest_attempt AS attempts,
    toUInt64(length(calls)) AS model_calls,
    toUInt64(arrayCount(c -> c.5 = 1, calls)) AS failed_model_calls,
    arrayMap(a -> a.3, arraySort(a -> (a.2, a.3), fallback_spans)) AS fallback_reasons,
    toUInt64(arrayCount(a -> a.3 = '', fallback_spans)) AS invisible_fallbacks,
    arraySum(c -> c.3, calls) AS input_tokens,
    arraySum(c -> c.4, calls) AS output_tokens,
    length(reports) > 0 AND (task_outcome.1 = '' OR last_report.2 >= task_outcome.3) AS late_wins,
    if(late_wins, last_report.3, if(task_outcome.1 != '', task_outcome.1, 'unknown')) AS outcome,
    if(late_wins, last_report.4, task_outcome.2) AS outcome_reason,
    greatest(task_reask, arrayMax(r -> r.5, arrayPushBack(reports, ('', toDateTime64(0, 9, 'UTC'), '', '', toUInt8(0), toDecimal128(0, 18))))) = 1 AS reask,
    arraySum(c -> c.2, calls) AS llm_cost,
    arraySum(c -> c.2, cleanups) + arraySum(r -> r.6, reports) AS cleanup_cost,
    hours AS span_hours
FROM
(
    SELECT
        task_id,
        toString(argMinIfMerge(cohort)) AS task_cohort,
        toString(argMinMerge(service_name)) AS task_service,
        toString(argMinIfMerge(policy_version)) AS task_policy,
        assumeNotNull(min(started_at)) AS first_start,
        assumeNotNull(max(ended_at)) AS last_end,
        countIf(started_at IS NOT NULL) AS span_rows,
        CAST(groupUniqArrayArray(span_hours) AS Array(DateTime('UTC'))) AS hours,
        toString(argMinIfMerge(primary_route)) AS route_of_lowest_attempt,
        toUInt16(max(attempts)) AS highest_attempt,
        max(has_task_span) AS task_spans,
        max(task_duration_ns) AS longest_task_ns,
        argMaxIfMerge(span_outcome) AS task_outcome,
        max(span_reask) AS task_reask,
        groupUniqArrayArray(llm_calls) AS calls,
        groupUniqArrayArray(fallback_attempts) AS fallback_spans,
        groupUniqArrayArray(task_cleanups) AS cleanups,
        arraySort(groupUniqArrayArray(late_reports)) AS report_copies,
        arrayFilter((r, i) -> i = 1 OR report_copies[i - 1].1 != r.1, report_copies, arrayEnumerate(report_copies)) AS reports,
        arraySort(r -> (r.2, r.1), reports)[-1] AS last_report
    FROM task_state
    GROUP BY task_id
    -- A task is its spans: late reports alone (for a task whose spans never came) make no row.
    HAVING span_rows > 0
);
