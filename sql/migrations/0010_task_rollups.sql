-- Task state and hourly rollups, so that reports never rescan raw spans (issue 12; the design and
-- its costs are in docs/scaling.md).
--
-- task_state: materialized views fold every inserted block of spans and of late outcome reports
-- into one aggregate row per task. A materialized view sees every block inserted, duplicates
-- included (an exporter retry that slipped past the writer's window, a replay), so every state
-- here is idempotent: min, max, argMin/argMax with a total order, and sets. What is counted or
-- summed is kept as a set of per-span tuples keyed by a hash of the span's (trace id, span id),
-- so a span stored twice is one element; a late report is kept as a set of its copies, and the
-- first copy of each report is chosen when the task is read. Costs are Decimal(38, 18): sums are
-- exact and do not depend on the order rows are read in.
CREATE TABLE IF NOT EXISTS task_state
(
    task_id             String,
    started_at          SimpleAggregateFunction(min, Nullable(DateTime64(9, 'UTC'))),
    ended_at            SimpleAggregateFunction(max, Nullable(DateTime64(9, 'UTC'))),
    -- Every hour a span of the task started in: the task's hour, wherever it started, is one of them.
    span_hours          SimpleAggregateFunction(groupUniqArrayArray, Array(DateTime('UTC'))),
    -- The task span's cohort, else the earliest span's (the key puts task spans first).
    cohort              AggregateFunction(argMinIf, String, Tuple(UInt8, DateTime64(9, 'UTC'), UInt64), UInt8),
    service_name        AggregateFunction(argMin, String, Tuple(DateTime64(9, 'UTC'), UInt64)),
    policy_version      AggregateFunction(argMinIf, String, Tuple(DateTime64(9, 'UTC'), UInt64), UInt8),
    -- The route of the lowest attempt, whichever span of it arrives first.
    primary_route       AggregateFunction(argMinIf, String, Tuple(UInt16, DateTime64(9, 'UTC'), UInt64), UInt8),
    attempts            SimpleAggregateFunction(max, UInt16),
    has_task_span       SimpleAggregateFunction(max, UInt8),
    task_duration_ns    SimpleAggregateFunction(max, UInt64),
    -- (outcome, reason, end time) of the task span that ended last.
    span_outcome        AggregateFunction(argMaxIf, Tuple(String, String, DateTime64(9, 'UTC')), Tuple(DateTime64(9, 'UTC'), UInt64), UInt8),
    span_reask          SimpleAggregateFunction(max, UInt8),
    -- LLM calls: (span hash, cost, input tokens, output tokens, failed).
    llm_calls           SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(UInt64, Decimal(38, 18), UInt64, UInt64, UInt8))),
    -- Fallback attempts: (span hash, attempt, reason).
    fallback_attempts   SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(UInt64, UInt16, String))),
    -- Cleanup costs on task spans: (span hash, cost).
    task_cleanups       SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(UInt64, Decimal(38, 18)))),
    -- Copies of late outcome reports: (report id, observed at, outcome, reason, reask, cleanup cost).
    late_reports        SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(String, DateTime64(9, 'UTC'), String, String, UInt8, Decimal(38, 18)))),
    -- When a block last changed the task: the refresher and the views find changed tasks by it.
    updated_at          SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    INDEX updated_at_minmax updated_at TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
ORDER BY task_id
-- Small granules: the tasks changed since the last refresh are looked up by id.
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS task_state_from_spans TO task_state AS
SELECT
    task_id,
    min(timestamp) AS started_at,
    max(end_time) AS ended_at,
    groupUniqArray(toStartOfHour(timestamp)) AS span_hours,
    argMinIfState(toString(cohort), (toUInt8(kind != 'task'), timestamp, cityHash64(trace_id, span_id)), cohort != '') AS cohort,
    argMinState(toString(service_name), (timestamp, cityHash64(trace_id, span_id))) AS service_name,
    argMinIfState(toString(policy_version), (timestamp, cityHash64(trace_id, span_id)), policy_version != '') AS policy_version,
    argMinIfState(toString(route), (attempt, timestamp, cityHash64(trace_id, span_id)), attempt >= 1 AND route != '') AS primary_route,
    max(attempt) AS attempts,
    max(kind = 'task') AS has_task_span,
    maxIf(duration_ns, kind = 'task') AS task_duration_ns,
    argMaxIfState((toString(outcome), toString(outcome_reason), end_time), (end_time, cityHash64(trace_id, span_id)), kind = 'task' AND outcome != '') AS span_outcome,
    maxIf(reask, kind = 'task') AS span_reask,
    groupUniqArrayIf((cityHash64(trace_id, span_id), toDecimal128(cost_usd, 18), input_tokens, output_tokens, toUInt8(status_code = 'error')), kind = 'llm') AS llm_calls,
    groupUniqArrayIf((cityHash64(trace_id, span_id), attempt, toString(fallback_reason)), kind = 'attempt' AND attempt >= 2) AS fallback_attempts,
    groupUniqArrayIf((cityHash64(trace_id, span_id), toDecimal128(cleanup_cost_usd, 18)), kind = 'task' AND cleanup_cost_usd != 0) AS task_cleanups,
    now64(3) AS updated_at
FROM spans
WHERE task_id != ''
GROUP BY task_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS task_state_from_late_outcomes TO task_state AS
SELECT
    task_id,
    groupUniqArray((report_id, observed_at, toString(outcome), toString(outcome_reason), reask, toDecimal128(cleanup_cost_usd, 18))) AS late_reports,
    now64(3) AS updated_at
FROM late_outcomes
GROUP BY task_id;

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
    version             DateTime64(9, 'UTC'),
    is_deleted          UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(started_at)
ORDER BY (toStartOfHour(started_at), task_id);

-- cohort_route_hourly: per hour (tasks by the hour they started) × cohort × primary route ×
-- policy version × service, exact counts and sums, and a t-digest of task latency. An hour is
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
    version               DateTime64(9, 'UTC'),
    is_deleted            UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, cohort, primary_route, policy_version, service_name);

-- rollup_state: how far the rollups are up to date. A task changed (task_state.updated_at) after
-- clean_before may not be in task_snapshot and cohort_route_hourly yet: the views compute such
-- tasks, and the hours they touch, from task_state. The latest refresh wins.
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

-- Backfill from what is stored. Every state is idempotent, so spans written while this runs (the
-- materialized views exist already) are folded in once whichever way they arrive, and running this
-- again changes nothing. The rollups are built from task_state by the first refresh.
INSERT INTO task_state (task_id, started_at, ended_at, span_hours, cohort, service_name, policy_version, primary_route, attempts, has_task_span, task_duration_ns, span_outcome, span_reask, llm_calls, fallback_attempts, task_cleanups, updated_at)
SELECT
    task_id,
    min(timestamp) AS started_at,
    max(end_time) AS ended_at,
    groupUniqArray(toStartOfHour(timestamp)) AS span_hours,
    argMinIfState(toString(cohort), (toUInt8(kind != 'task'), timestamp, cityHash64(trace_id, span_id)), cohort != '') AS cohort,
    argMinState(toString(service_name), (timestamp, cityHash64(trace_id, span_id))) AS service_name,
    argMinIfState(toString(policy_version), (timestamp, cityHash64(trace_id, span_id)), policy_version != '') AS policy_version,
    argMinIfState(toString(route), (attempt, timestamp, cityHash64(trace_id, span_id)), attempt >= 1 AND route != '') AS primary_route,
    max(attempt) AS attempts,
    max(kind = 'task') AS has_task_span,
    maxIf(duration_ns, kind = 'task') AS task_duration_ns,
    argMaxIfState((toString(outcome), toString(outcome_reason), end_time), (end_time, cityHash64(trace_id, span_id)), kind = 'task' AND outcome != '') AS span_outcome,
    maxIf(reask, kind = 'task') AS span_reask,
    groupUniqArrayIf((cityHash64(trace_id, span_id), toDecimal128(cost_usd, 18), input_tokens, output_tokens, toUInt8(status_code = 'error')), kind = 'llm') AS llm_calls,
    groupUniqArrayIf((cityHash64(trace_id, span_id), attempt, toString(fallback_reason)), kind = 'attempt' AND attempt >= 2) AS fallback_attempts,
    groupUniqArrayIf((cityHash64(trace_id, span_id), toDecimal128(cleanup_cost_usd, 18)), kind = 'task' AND cleanup_cost_usd != 0) AS task_cleanups,
    now64(3) AS updated_at
FROM spans
WHERE task_id != ''
GROUP BY task_id
SETTINGS max_bytes_before_external_group_by = 1000000000;

INSERT INTO task_state (task_id, late_reports, updated_at)
SELECT
    task_id,
    groupUniqArray((report_id, observed_at, toString(outcome), toString(outcome_reason), reask, toDecimal128(cleanup_cost_usd, 18))) AS late_reports,
    now64(3) AS updated_at
FROM late_outcomes
GROUP BY task_id;
