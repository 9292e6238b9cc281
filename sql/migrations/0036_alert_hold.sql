-- A firing alert its monitor cannot judge (no tasks of its cohort × route, too few) is held, and
-- closed without a verdict after `evaluation.holdWithoutVerdict` (analyzer/lifecycle.ts): when the
-- hold began, NULL while the monitor judges. Rows written before this migration read NULL: a hold
-- under way then starts again at the next evaluation.
ALTER TABLE alert_states ADD COLUMN IF NOT EXISTS held_since Nullable(DateTime64(3, 'UTC')) AFTER last_notified_at;
