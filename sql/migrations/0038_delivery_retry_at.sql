-- A channel that answered 429 with Retry-After is not tried again before then, across a restart
-- too (analyzer/notifier.ts): when the channel may be tried again, on the `failing` row recorded
-- at that answer; NULL otherwise. A later row of the same message (`sent`, `refused`) replaces it.
ALTER TABLE alert_deliveries ADD COLUMN IF NOT EXISTS retry_at Nullable(DateTime64(3, 'UTC')) AFTER last_error;
