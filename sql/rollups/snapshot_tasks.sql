-- One pass of a refresh: the current row of every task changed in (since, until] (one slice of
-- them, by hash of the task id, so that a backfill of millions of tasks runs in bounded memory) is
-- written to task_snapshot, under the hour the task now starts in.
INSERT INTO task_snapshot
    (task_id, cohort, service_name, policy_version, started_at, ended_at, latency_ms, primary_route,
     attempts, model_calls, failed_model_calls, fallback_reasons, invisible_fallbacks, input_tokens,
     output_tokens, late_wins, outcome, outcome_reason, reask, llm_cost, cleanup_cost, eval_run,
     eval_dataset, unpriced_calls, scores, http_counted_calls, retried_calls, http_retries,
     retry_wait_ms, version, is_deleted)
SELECT
    task_id, cohort, service_name, policy_version, started_at, ended_at, latency_ms, primary_route,
    attempts, model_calls, failed_model_calls, fallback_reasons, invisible_fallbacks, input_tokens,
    output_tokens, late_wins, outcome, outcome_reason, reask, llm_cost, cleanup_cost, eval_run,
    eval_dataset, unpriced_calls, scores, http_counted_calls, retried_calls, http_retries,
    retry_wait_ms, {version:DateTime64(9, 'UTC')}, 0
FROM v_tasks_live
WHERE task_id GLOBAL IN
(
    SELECT task_id FROM task_events
    WHERE inserted_at > {since:DateTime64(3, 'UTC')} AND inserted_at <= {until:DateTime64(3, 'UTC')}
        AND cityHash64(task_id) % {slices:UInt64} = {slice:UInt64}
);
