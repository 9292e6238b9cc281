-- Late outcomes again, replacing outcome_reports (0005): the same columns, but the copy of a
-- report that the engine keeps is the one observed first. A report sent without observedAt is
-- timed by its arrival, and its retries arrive later under the same report id. outcome_reports
-- kept the latest copy (ReplacingMergeTree(inserted_at)), so a retried old report moved to the
-- retry's time and overtook newer reports. Here the version column `earliness` is larger for an
-- earlier observed_at: merges keep, and FINAL reads, each report at its first arrival, and a
-- retry changes nothing.
CREATE TABLE IF NOT EXISTS late_outcomes
(
    task_id           String,
    report_id         String,
    observed_at       DateTime64(9, 'UTC'),
    outcome           LowCardinality(String),
    outcome_reason    LowCardinality(String),
    reask             UInt8,
    cleanup_cost_usd  Float64,
    source            LowCardinality(String),
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3),
    -- 2^63 - 1 minus the time in ns; DateTime64(9) spans 1900..2262, so it stays within UInt64.
    earliness         UInt64 MATERIALIZED toUInt64(9223372036854775807 - toUnixTimestamp64Nano(observed_at))
)
ENGINE = ReplacingMergeTree(earliness)
ORDER BY (task_id, report_id);

-- Every stored copy, not FINAL: where copies of one report were not merged yet, the first one
-- survives here. Running this again only adds copies that the engine collapses.
INSERT INTO late_outcomes
    (task_id, report_id, observed_at, outcome, outcome_reason, reask, cleanup_cost_usd, source, inserted_at)
SELECT task_id, report_id, observed_at, outcome, outcome_reason, reask, cleanup_cost_usd, source, inserted_at
FROM outcome_reports;
