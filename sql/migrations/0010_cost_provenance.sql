-- Where each LLM call's cost comes from, beyond cost_source (span, price_table, unpriced, none):
-- cost_note says why a call is unpriced (no_usage, unknown_model, no_model), that a reported cost
-- of 0 was set aside (reported_zero_ignored), or that a failed call reported no usage
-- (failed_no_usage); price_ref names the price entry that priced it (`override:<model>[@<from>]` or
-- `genai-prices@<version>:<provider>/<model>`). Rows stored before this migration read ''.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cost_note LowCardinality(String) DEFAULT '' AFTER cost_source;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS price_ref LowCardinality(String) DEFAULT '' AFTER cost_note;
