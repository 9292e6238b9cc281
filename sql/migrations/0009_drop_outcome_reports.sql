-- outcome_reports (0005) was copied into late_outcomes by 0008, and v_tasks reads late_outcomes
-- (sql/views/v_tasks.sql, re-applied after the numbered migrations). A separate migration, so
-- that 0008 can be run again until it is recorded without finding its source gone.
DROP TABLE IF EXISTS outcome_reports;
