/**
 * The slice of the `@routewatch/instrumentation` tagging API the example service uses, declared
 * structurally so the service can run with an injected implementation (tests count calls, or run
 * before the instrumentation package is built). The default is the real package, loaded lazily.
 */

export type TaskOutcome = 'success' | 'failure' | 'escalated' | 'abandoned' | 'unknown';

export interface TaskHandle {
  taskId: string;
  cohort: string;
  setOutcome(
    outcome: TaskOutcome,
    opts?: { reason?: string; reask?: boolean; cleanupCostUsd?: number },
  ): void;
  /** Task-level `routewatch.fallback.reason`; optional in the contract, used when present. */
  setFallbackReason?(reason: string): void;
}

export interface AttemptHandle {
  route: string;
  attempt: number;
  setValidation(result: 'pass' | 'fail'): void;
  setConfidence(value: number): void;
}

export interface TaggingApi {
  runTask<T>(
    opts: { cohort: string; policyVersion?: string; taskId?: string },
    fn: (task: TaskHandle) => T | Promise<T>,
  ): Promise<T>;
  runAttempt<T>(
    opts: { route: string; attempt?: number; fallbackReason?: string },
    fn: (attempt: AttemptHandle) => T | Promise<T>,
  ): Promise<T>;
}

/** The real tagging API. Assigning it to `TaggingApi` checks the contract at compile time. */
export async function loadInstrumentationTagging(): Promise<TaggingApi> {
  const instrumentation = await import('@routewatch/instrumentation');
  const tagging: TaggingApi = {
    runTask: instrumentation.runTask,
    runAttempt: instrumentation.runAttempt,
  };
  return tagging;
}
