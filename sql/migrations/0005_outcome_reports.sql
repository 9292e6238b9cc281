-- Late outcomes keyed by report. `outcomes` (0002) was keyed by (task, observed_at, outcome): a
-- retried report without observedAt got a new receive time and counted twice (its cleanup cost
-- too), and two different reports for a task in the same instant collapsed into one. Here a
-- report is identified by report_id: the client's reportId, or a hash of the report's content.
-- Not partitioned: a retry's receive time may fall in another month, and replacing rows only
-- meet within a partition.
CREATE TABLE IF NOT EXISTS outcome_reports
(
    task_id           String,
    report_id         String,
    observed_at       DateTime64(9, 'UTC'),
    outcome           LowCardinality(String),
    outcome_reason    LowCardinality(String),
    reask             UInt8,
    cleanup_cost_usd  Float64,
    source            LowCardinality(String),
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (task_id, report_id);

-- Rows already stored keep their old identity, so running this again adds nothing.
INSERT INTO outcome_reports
    (task_id, report_id, observed_at, outcome, outcome_reason, reask, cleanup_cost_usd, source)
SELECT
    task_id,
    concat('v1:', toString(toUnixTimestamp64Nano(observed_at)), ':', outcome),
    observed_at,
    outcome,
    outcome_reason,
    reask,
    cleanup_cost_usd,
    source
FROM outcomes FINAL;
