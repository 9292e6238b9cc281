-- v_tasks: one row per task. A task is every span sharing routewatch.task.id (the trace id when
-- the application gave none). Cost: every LLM call of the task, fallbacks included, plus cleanup
-- costs (the task span's and every late outcome report's), summed exactly (Decimal(38, 18)).
-- Outcome: the latest of the task span's outcome (at the span's end) and the late outcome reports
-- (POST /v1/outcomes, table late_outcomes) wins; a late report wins a tie with the span. Each report
-- counts once, at the time it was first observed. Among reports of one time, the greatest
-- report_id wins: the order is fixed whatever order they arrived in.
-- Tasks of an offline eval run (routewatch.eval.run on the task span) carry eval_run and
-- eval_dataset; the production views leave them out. scores: named quality scores in 0..1, from
-- the task span (routewatch.score.<name>) and late reports; per name the latest report wins over
-- the span. Hidden retries (the SDK's own, inside one model call): http_counted_calls are the model
-- calls whose HTTP requests were counted (spans.http_attempts > 0), retried_calls those of them
-- that made more than one, http_retries the extra requests (Σ attempts − 1), retry_wait_ms the
-- time spent between them.
-- Read from the rollups: task_snapshot as of the last refresh, and v_tasks_live for the tasks
-- changed since (v_tasks_changed). The same rows as v_tasks_from_spans, the computation from raw
-- spans, which it replaces.
CREATE OR REPLACE VIEW v_tasks AS
WITH
    -- routewatch:changed begin (the analyzer binds it as a parameter: storage/window-sql.ts)
    (SELECT groupArray(task_id) FROM v_tasks_changed) AS changed_tasks
    -- routewatch:changed end
SELECT
    task_id,
    toString(cohort) AS cohort,
    toString(service_name) AS service_name,
    toString(policy_version) AS policy_version,
    toString(eval_run) AS eval_run,
    toString(eval_dataset) AS eval_dataset,
    started_at,
    ended_at,
    latency_ms,
    toString(primary_route) AS primary_route,
    attempts,
    model_calls,
    failed_model_calls,
    unpriced_calls,
    CAST(fallback_reasons AS Array(String)) AS fallback_reasons,
    invisible_fallbacks,
    input_tokens,
    output_tokens,
    late_wins,
    toString(outcome) AS outcome,
    toString(outcome_reason) AS outcome_reason,
    reask,
    toFloat64(llm_cost) AS llm_cost_usd,
    toFloat64(cleanup_cost) AS cleanup_cost_usd,
    toFloat64(llm_cost + cleanup_cost) AS cost_usd,
    CAST(scores AS Map(String, Float64)) AS scores,
    http_counted_calls,
    retried_calls,
    http_retries,
    retry_wait_ms
FROM
(
    SELECT
        task_id, cohort, service_name, policy_version, eval_run, eval_dataset, started_at,
        ended_at, latency_ms, primary_route, attempts, model_calls, failed_model_calls,
        unpriced_calls, fallback_reasons, invisible_fallbacks, input_tokens, output_tokens,
        late_wins, outcome, outcome_reason, reask, llm_cost, cleanup_cost, scores,
        http_counted_calls, retried_calls, http_retries, retry_wait_ms
    FROM task_snapshot FINAL
    WHERE task_id GLOBAL NOT IN (SELECT arrayJoin(changed_tasks))
    -- routewatch:live begin (dropped by the analyzer when no task changed)
    UNION ALL
    SELECT
        task_id, cohort, service_name, policy_version, eval_run, eval_dataset, started_at,
        ended_at, latency_ms, primary_route, attempts, model_calls, failed_model_calls,
        unpriced_calls, fallback_reasons, invisible_fallbacks, input_tokens, output_tokens,
        late_wins, outcome, outcome_reason, reask, llm_cost, cleanup_cost, scores,
        http_counted_calls, retried_calls, http_retries, retry_wait_ms
    FROM v_tasks_live
    WHERE task_id GLOBAL IN (SELECT arrayJoin(changed_tasks))
    -- routewatch:live end
);
