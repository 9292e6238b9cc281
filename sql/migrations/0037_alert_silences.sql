-- Silences (analyzer/silences.ts): while one is in force, the alerts it matches notify no one.
-- Their transitions are still evaluated and recorded in alert_events (notify = 0), so the history
-- shows what a silence kept quiet. A silence matches a cohort, a route and a rule; '' matches
-- any. Ending one early writes a new version of its row with ends_at set to that time.
CREATE TABLE IF NOT EXISTS alert_silences
(
    id         String,
    cohort     String,
    route      String,
    rule_id    String,
    starts_at  DateTime64(3, 'UTC'),
    ends_at    DateTime64(3, 'UTC'),
    comment    String,
    created_at DateTime64(3, 'UTC'),
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
