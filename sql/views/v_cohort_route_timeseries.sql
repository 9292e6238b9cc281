-- v_cohort_route_timeseries: the metrics of v_cohort_route_window (every column of it, with the
-- definitions of v_window_metrics) per cohort × primary route × time bucket, over every
-- production task started in [from, to). Parameterized:
--   SELECT * FROM v_cohort_route_timeseries(from = '…', to = '…', bucket = 3600)
-- bucket is in seconds; a bucket starts at a multiple of it since 1970-01-01 UTC (bucket_start),
-- and the first and last buckets hold only the part of them inside the window. bucket = 0 makes
-- the whole window one bucket, starting at from. v_timeseries_metrics is the same cut by cohort,
-- primary route, service and policy version (read from the same rollups).
CREATE OR REPLACE VIEW v_cohort_route_timeseries AS
SELECT *
FROM v_timeseries_metrics(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, bucket = {bucket:UInt32},
    cohorts = [], routes = [], services = [], policies = []);
