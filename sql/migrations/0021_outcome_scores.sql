-- Named quality scores in 0..1 on late outcome reports (POST /v1/outcomes `scores`:
-- groundedness, schema validity, …), name → value. Reports stored before this read an empty map.
-- The names follow the instrumentation's rule (SCORE_NAME_PATTERN: [a-z0-9_.-], 1-64), at most 32
-- per report, so the keys stay few: LowCardinality.
ALTER TABLE late_outcomes ADD COLUMN IF NOT EXISTS scores Map(LowCardinality(String), Float64);
