-- Alert state, history and deliveries (analyzer/alert-store.ts). The table `alerts` of 0003 was
-- never written by any version: it goes.
--   alert_states: one row per alert fingerprint (rule, cohort, route, detail); the latest version
--     wins. A restart reads it and continues each alert where it was.
--   alert_events: every transition (pending, firing, repeat, resolved, cleared), keyed by
--     fingerprint, incident and sequence, so the same transition computed twice (a crash between
--     writing an event and its state) is one row. Events with notify = 1 are the outbox.
--   alert_deliveries: what each channel received; an event without a 'sent' row for a channel is
--     (re)sent, so a message is neither lost nor sent twice across restarts.
DROP TABLE IF EXISTS alerts;

CREATE TABLE IF NOT EXISTS alert_states
(
    fingerprint      String,
    rule_id          LowCardinality(String),
    cohort           LowCardinality(String),
    route            LowCardinality(String),
    detail           String,
    state            LowCardinality(String),
    since            DateTime64(3, 'UTC'),
    pending_count    UInt16,
    clear_count      UInt16,
    incident         UInt32,
    seq              UInt32,
    last_notified_at Nullable(DateTime64(3, 'UTC')),
    finding          String,
    evaluated_at     DateTime64(3, 'UTC'),
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY fingerprint;

CREATE TABLE IF NOT EXISTS alert_events
(
    fingerprint String,
    incident    UInt32,
    seq         UInt32,
    kind        LowCardinality(String),
    at          DateTime64(3, 'UTC'),
    notify      UInt8,
    rule_id     LowCardinality(String),
    cohort      LowCardinality(String),
    route       LowCardinality(String),
    detail      String,
    message     String,
    created_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (fingerprint, incident, seq);

CREATE TABLE IF NOT EXISTS alert_deliveries
(
    fingerprint String,
    incident    UInt32,
    seq         UInt32,
    channel     LowCardinality(String),
    status      LowCardinality(String),
    attempts    UInt32,
    last_error  String,
    updated_at  DateTime64(3, 'UTC'),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (fingerprint, incident, seq, channel);
