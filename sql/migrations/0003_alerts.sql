-- Alert state and notification log. The analyzer writes a new row per state change;
-- the latest row per fingerprint is the current state.
CREATE TABLE IF NOT EXISTS alerts
(
    fingerprint   String,
    changed_at    DateTime64(3, 'UTC'),
    rule          LowCardinality(String),
    cohort        LowCardinality(String),
    route         LowCardinality(String),
    state         LowCardinality(String),
    severity      LowCardinality(String),
    summary       String,
    details       String,
    notified      Array(String)
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY (fingerprint, changed_at);
