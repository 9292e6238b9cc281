-- v_cohort_route_window: the metrics per cohort × primary route over tasks started in
-- [from, to). Parameterized: SELECT * FROM v_cohort_route_window(from = '…', to = '…').
-- top_fallback_reasons counts tasks: a cascade that fell back twice for the same reason is one
-- task with that reason.
-- v_cohort_route_timeseries with the whole window as one bucket: read from the rollups, never from
-- raw spans (see that view). Counts and sums equal v_cohort_route_window_from_spans exactly.
CREATE OR REPLACE VIEW v_cohort_route_window AS
SELECT * EXCEPT (bucket_start)
FROM v_cohort_route_timeseries(from = {from:DateTime64(9, 'UTC')}, to = {to:DateTime64(9, 'UTC')}, bucket = 0);
