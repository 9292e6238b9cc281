-- Late outcomes reported through POST /v1/outcomes (a reask, a human correction, a validation
-- result that arrives after the reply). The latest outcome for a task wins; cleanup costs add up.
-- A report is identified by (task_id, observed_at, outcome): sending it twice changes nothing.
CREATE TABLE IF NOT EXISTS outcomes
(
    task_id           String,
    observed_at       DateTime64(9, 'UTC'),
    outcome           LowCardinality(String),
    outcome_reason    LowCardinality(String),
    reask             UInt8,
    cleanup_cost_usd  Float64,
    source            LowCardinality(String),
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(observed_at)
ORDER BY (task_id, observed_at, outcome);
