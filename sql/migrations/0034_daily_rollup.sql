-- 0034: cohort_route_daily, the hourly rollup summed per UTC day, so that a window of weeks or
-- months reads one row per day and group instead of 24 (a 30-day report at 10 M spans merged
-- 144 000 hourly latency digests: half its time; docs/benchmarks.md). The views read a window's
-- whole days from it, the whole hours around them from cohort_route_hourly, and the partial hours
-- from task rows. A refresh rebuilds every day holding an hour it rebuilt
-- (sql/rollups/rebuild_days.sql), from cohort_route_hourly; groups gone from a rebuilt day are
-- retired. Read with FINAL. The columns are cohort_route_hourly's, day for hour.
CREATE TABLE IF NOT EXISTS cohort_route_daily
(
    day                   DateTime('UTC'),
    cohort                LowCardinality(String),
    primary_route         LowCardinality(String),
    policy_version        LowCardinality(String),
    service_name          LowCardinality(String),
    tasks                 UInt64,
    successes             UInt64,
    failures              UInt64,
    known_outcomes        UInt64,
    escalations           UInt64,
    reasks                UInt64,
    fallbacks             UInt64,
    cascades              UInt64,
    invisible_fallbacks   UInt64,
    total_cost            Decimal(38, 18),
    fallback_reason_tasks Map(String, UInt64),
    latency_digest        AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float64),
    cost_squared_sum      Float64,
    success_cost          Decimal(38, 18),
    calls_tasks           Map(UInt64, UInt64),
    model_calls           UInt64,
    unpriced_calls        UInt64,
    http_counted_calls    UInt64,
    retried_calls         UInt64,
    http_retries          UInt64,
    retry_wait_ms         UInt64,
    score_tasks           Map(String, UInt64),
    score_sums            Map(String, Float64),
    score_squares         Map(String, Float64),
    version               DateTime64(9, 'UTC'),
    is_deleted            UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(day)
ORDER BY (day, cohort, primary_route, policy_version, service_name);

-- Every day rolled up so far, from cohort_route_hourly (as a refresh rebuilds a day). Repeating
-- this statement writes the same rows again.
INSERT INTO cohort_route_daily
    (day, cohort, primary_route, policy_version, service_name, tasks, successes, failures,
     known_outcomes, escalations, reasks, fallbacks, cascades, invisible_fallbacks, total_cost,
     fallback_reason_tasks, latency_digest, cost_squared_sum, success_cost, calls_tasks,
     model_calls, unpriced_calls, http_counted_calls, retried_calls, http_retries, retry_wait_ms,
     score_tasks, score_sums, score_squares, version, is_deleted)
SELECT
    toStartOfDay(hour) AS day,
    cohort,
    primary_route,
    policy_version,
    service_name,
    sum(tasks),
    sum(successes),
    sum(failures),
    sum(known_outcomes),
    sum(escalations),
    sum(reasks),
    sum(fallbacks),
    sum(cascades),
    sum(invisible_fallbacks),
    sum(total_cost),
    sumMap(fallback_reason_tasks),
    quantilesTDigestMergeState(0.5, 0.95, 0.99)(latency_digest),
    sum(cost_squared_sum),
    sum(success_cost),
    sumMap(calls_tasks),
    sum(model_calls),
    sum(unpriced_calls),
    sum(http_counted_calls),
    sum(retried_calls),
    sum(http_retries),
    sum(retry_wait_ms),
    sumMap(score_tasks),
    sumMap(score_sums),
    sumMap(score_squares),
    now64(9),
    0
FROM cohort_route_hourly FINAL
GROUP BY day, cohort, primary_route, policy_version, service_name;
