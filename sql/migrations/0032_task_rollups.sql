-- Task rollups, so that reports never rescan raw spans (issue 12; the design and its costs are
-- in docs/scaling.md). Numbered after 0031 so that a store migrated by an earlier version adds them
-- in place, over spans that already have every column copied here.
--
-- task_events: what a task's row of v_tasks is computed from, keyed by task: every span (the
-- columns v_tasks reads) and every late outcome report, copied here by materialized views as each
-- block is inserted. Copies collapse as in the raw tables: a span stored twice (an exporter retry
-- that slipped past the writer's window, a replay) has one key (task, hash of trace id and span
-- id) and is one row at merge and under FINAL, as in spans FINAL; the copies of a late report
-- (task, hash of report id) keep the first observed, by the same version as late_outcomes. Kept as
-- long as the rollups: a task's row is recomputed from it when a late span or outcome changes the
-- task.
CREATE TABLE IF NOT EXISTS task_events
(
    task_id            String,
    event_hash         UInt64,
    -- 'task', 'attempt', 'llm', 'other' for spans; 'late_outcome' for a late outcome report.
    kind               LowCardinality(String),
    -- A span's start and end; a report's observed_at, in both.
    timestamp          DateTime64(9, 'UTC'),
    end_time           DateTime64(9, 'UTC'),
    duration_ns        UInt64,
    cohort             LowCardinality(String),
    service_name       LowCardinality(String),
    policy_version     LowCardinality(String),
    route              LowCardinality(String),
    attempt            UInt16,
    fallback_reason    LowCardinality(String),
    cost_usd           Float64,
    input_tokens       UInt64,
    output_tokens      UInt64,
    status_code        LowCardinality(String),
    outcome            LowCardinality(String),
    outcome_reason     LowCardinality(String),
    reask              UInt8,
    cleanup_cost_usd   Float64,
    -- Model calls: 'unpriced' when no cost could be given (the priced-call share).
    cost_source        LowCardinality(String),
    -- Model calls: HTTP requests made (0: not counted) and time waited between them.
    http_attempts      UInt16,
    http_retry_wait_ms UInt32,
    -- Task spans: routewatch.eval.run / .dataset ('' for production).
    eval_run           LowCardinality(String),
    eval_dataset       LowCardinality(String),
    -- Task spans: routewatch.score.<name> as numbers; reports: their scores.
    scores             Map(LowCardinality(String), Float64),
    report_id          String,
    -- 0 for spans (copies are equal); for reports late_outcomes.earliness: the first copy wins.
    version            UInt64,
    -- When the copy was stored: the refresher and the views find the tasks changed since a time by it.
    inserted_at        DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX inserted_at_minmax inserted_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (task_id, event_hash)
-- The tasks changed since the last refresh are looked up by id, each in a place of its own: small
-- granules and small compressed blocks keep what is read and decompressed per task small (a third
-- of the time of the defaults for 50 tasks among 300 000, for 8 % more bytes on disk).
SETTINGS index_granularity = 256, min_compress_block_size = 4096, max_compress_block_size = 16384;

CREATE MATERIALIZED VIEW IF NOT EXISTS task_events_from_spans TO task_events AS
SELECT
    task_id, cityHash64(trace_id, span_id) AS event_hash, kind, timestamp, end_time, duration_ns, cohort,
    service_name, policy_version, route, attempt, fallback_reason, cost_usd, input_tokens,
    output_tokens, status_code, outcome, outcome_reason, reask, cleanup_cost_usd, cost_source,
    http_attempts, http_retry_wait_ms,
    if(kind = 'task', attributes['routewatch.eval.run'], '') AS eval_run,
    if(kind = 'task', attributes['routewatch.eval.dataset'], '') AS eval_dataset,
    if(kind = 'task',
        mapApply((k, v) -> (substring(k, 18), toFloat64OrZero(v)),
            mapFilter((k, v) -> startsWith(k, 'routewatch.score.') AND isNotNull(toFloat64OrNull(v)), attributes)),
        CAST(map(), 'Map(LowCardinality(String), Float64)')) AS scores
FROM spans
WHERE task_id != '';

CREATE MATERIALIZED VIEW IF NOT EXISTS task_events_from_late_outcomes TO task_events AS
SELECT
    task_id, cityHash64('late_outcome', report_id) AS event_hash, 'late_outcome' AS kind,
    observed_at AS timestamp, observed_at AS end_time, outcome, outcome_reason, reask,
    cleanup_cost_usd, scores, report_id,
    -- late_outcomes.earliness (0008), computed here from the block as inserted.
    toUInt64(9223372036854775807 - toUnixTimestamp64Nano(observed_at)) AS version
FROM late_outcomes;

-- task_snapshot: each task's row of v_tasks as of the last refresh (storage/rollups.ts), keyed by
-- the hour the task started, so a window's partial hours are read without touching the rest. A
-- task whose start moves to another hour (an earlier span arrives) leaves a row under its old hour,
-- which the refresher retires (is_deleted = 1). Read with FINAL.
CREATE TABLE IF NOT EXISTS task_snapshot
(
    task_id             String,
    cohort              LowCardinality(String),
    service_name        LowCardinality(String),
    policy_version      LowCardinality(String),
    started_at          DateTime64(9, 'UTC'),
    ended_at            DateTime64(9, 'UTC'),
    latency_ms          Float64,
    primary_route       LowCardinality(String),
    attempts            UInt16,
    model_calls         UInt64,
    failed_model_calls  UInt64,
    fallback_reasons    Array(LowCardinality(String)),
    invisible_fallbacks UInt64,
    input_tokens        UInt64,
    output_tokens       UInt64,
    late_wins           UInt8,
    outcome             LowCardinality(String),
    outcome_reason      LowCardinality(String),
    reask               UInt8,
    llm_cost            Decimal(38, 18),
    cleanup_cost        Decimal(38, 18),
    eval_run            LowCardinality(String),
    eval_dataset        LowCardinality(String),
    unpriced_calls      UInt64,
    scores              Map(LowCardinality(String), Float64),
    http_counted_calls  UInt64,
    retried_calls       UInt64,
    http_retries        UInt64,
    retry_wait_ms       UInt64,
    version             DateTime64(9, 'UTC'),
    is_deleted          UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(started_at)
ORDER BY (toStartOfHour(started_at), task_id);

-- cohort_route_hourly: per hour (tasks by the hour they started) × cohort × primary route ×
-- policy version × service, exact counts and sums, and a t-digest of task latency, over the
-- production tasks (tasks of eval runs are left out, as the window views leave them out). An hour is
-- rebuilt whole from task_snapshot whenever a task of it changes; groups that no longer exist
-- are retired (is_deleted = 1). Read with FINAL.
CREATE TABLE IF NOT EXISTS cohort_route_hourly
(
    hour                  DateTime('UTC'),
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
    -- Tasks that fell back at least once for each reason ('' for none given).
    fallback_reason_tasks Map(String, UInt64),
    latency_digest        AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float64),
    -- Σ cost² (Float64, for the interval of cost per success) and the cost of successful tasks.
    cost_squared_sum      Float64,
    success_cost          Decimal(38, 18),
    -- Tasks per number of model calls: the exact p95 of calls per task and the loop rate.
    calls_tasks           Map(UInt64, UInt64),
    model_calls           UInt64,
    unpriced_calls        UInt64,
    http_counted_calls    UInt64,
    retried_calls         UInt64,
    http_retries          UInt64,
    retry_wait_ms         UInt64,
    version               DateTime64(9, 'UTC'),
    is_deleted            UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, cohort, primary_route, policy_version, service_name);

-- rollup_state: how far the rollups are up to date. A task changed after clean_before (a span or a
-- late outcome of it stored after it: task_events.inserted_at) may not be in task_snapshot and
-- cohort_route_hourly yet: the views compute such tasks, and the hours they touch, from
-- task_events (v_tasks_live, v_tasks_changed). The latest refresh wins.
CREATE TABLE IF NOT EXISTS rollup_state
(
    refreshed_at   DateTime64(9, 'UTC'),
    clean_before   DateTime64(3, 'UTC'),
    tasks          UInt64,
    hours          UInt64,
    duration_ms    UInt64
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY tuple();

-- Raw spans are partitioned by day: their TTL (set from ROUTEWATCH_RETENTION_DAYS at start)
-- drops whole days instead of rewriting parts.
ALTER TABLE spans MODIFY SETTING ttl_only_drop_parts = 1;

-- Backfill from what is stored, every copy (copies collapse as above). Rows written while this
-- runs (the materialized views exist already) may be copied twice, which is the same, and running
-- this again changes nothing. The rollups are built from task_events by the first refresh
-- (storage/rollups.ts).
INSERT INTO task_events
    (task_id, event_hash, kind, timestamp, end_time, duration_ns, cohort, service_name,
     policy_version, route, attempt, fallback_reason, cost_usd, input_tokens, output_tokens,
     status_code, outcome, outcome_reason, reask, cleanup_cost_usd, cost_source, http_attempts,
     http_retry_wait_ms, eval_run, eval_dataset, scores)
SELECT
    task_id, cityHash64(trace_id, span_id), kind, timestamp, end_time, duration_ns, cohort, service_name,
    policy_version, route, attempt, fallback_reason, cost_usd, input_tokens, output_tokens,
    status_code, outcome, outcome_reason, reask, cleanup_cost_usd, cost_source, http_attempts,
    http_retry_wait_ms,
    if(kind = 'task', attributes['routewatch.eval.run'], ''),
    if(kind = 'task', attributes['routewatch.eval.dataset'], ''),
    if(kind = 'task',
        mapApply((k, v) -> (substring(k, 18), toFloat64OrZero(v)),
            mapFilter((k, v) -> startsWith(k, 'routewatch.score.') AND isNotNull(toFloat64OrNull(v)), attributes)),
        CAST(map(), 'Map(LowCardinality(String), Float64)'))
FROM spans
WHERE task_id != '';

INSERT INTO task_events
    (task_id, event_hash, kind, timestamp, end_time, outcome, outcome_reason, reask,
     cleanup_cost_usd, scores, report_id, version)
SELECT
    task_id, cityHash64('late_outcome', report_id), 'late_outcome', observed_at, observed_at,
    outcome, outcome_reason, reask, cleanup_cost_usd, scores, report_id,
    toUInt64(9223372036854775807 - toUnixTimestamp64Nano(observed_at))
FROM late_outcomes;
