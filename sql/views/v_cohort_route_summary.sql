-- v_cohort_route_summary: the metrics of v_cohort_route_window over all time.
CREATE OR REPLACE VIEW v_cohort_route_summary AS
SELECT *
FROM v_cohort_route_window(from = '1970-01-01 00:00:00', to = '2262-04-11 00:00:00');
