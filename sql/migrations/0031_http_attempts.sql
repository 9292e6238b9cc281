-- Hidden retries: the HTTP requests each model call made, the SDK's own retries included
-- (`routewatch.http.attempts`, else `http.request.resend_count` + 1), and the time it waited
-- between them (`routewatch.http.retry_wait_ms`). 0 attempts: not counted (an instrumentation that
-- does not report them, or rows stored before this migration), which the views keep apart from 1.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS http_attempts UInt16 DEFAULT 0 AFTER cleanup_cost_usd;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS http_retry_wait_ms UInt32 DEFAULT 0 AFTER http_attempts;
