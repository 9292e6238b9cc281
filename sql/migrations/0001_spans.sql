-- Normalized spans: one row per span that carries routewatch.* or GenAI attributes.
-- Routing dimensions are typed LowCardinality columns early in the sort key, not map keys.
-- Every column is derived from the span alone, so a span that arrives twice (exporter retry,
-- log replay) lands on the same sort key and ReplacingMergeTree keeps one copy; views read FINAL.
CREATE TABLE IF NOT EXISTS spans
(
    timestamp            DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    end_time             DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    duration_ns          UInt64,
    trace_id             String CODEC(ZSTD(1)),
    span_id              String CODEC(ZSTD(1)),
    parent_span_id       String CODEC(ZSTD(1)),
    name                 LowCardinality(String),
    span_kind            LowCardinality(String),
    kind                 LowCardinality(String),
    service_name         LowCardinality(String),
    scope_name           LowCardinality(String),
    task_id              String CODEC(ZSTD(1)),
    cohort               LowCardinality(String),
    route                LowCardinality(String),
    attempt              UInt16,
    fallback_reason      LowCardinality(String),
    policy_version       LowCardinality(String),
    validation           LowCardinality(String),
    confidence           Nullable(Float64),
    provider             LowCardinality(String),
    operation            LowCardinality(String),
    request_model        LowCardinality(String),
    response_model       LowCardinality(String),
    input_tokens         UInt64,
    output_tokens        UInt64,
    cache_read_tokens    UInt64,
    cache_creation_tokens UInt64,
    reasoning_tokens     UInt64,
    cost_usd             Float64,
    cost_source          LowCardinality(String),
    status_code          LowCardinality(String),
    status_message       String CODEC(ZSTD(1)),
    error_type           LowCardinality(String),
    outcome              LowCardinality(String),
    outcome_reason       LowCardinality(String),
    reask                UInt8,
    cleanup_cost_usd     Float64,
    attributes           Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    inserted_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toDate(timestamp)
ORDER BY (cohort, kind, route, toStartOfHour(timestamp), trace_id, span_id)
SETTINGS index_granularity = 8192;
