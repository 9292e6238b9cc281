import type { Store } from '../../storage/store.js';
import { sendTasks, testApp } from './app.js';
import { seeded, stream } from './tasks.js';

const HOUR = 3_600_000;

/**
 * Stores, through the real collector, cohorts whose small and large routes ran healthy (95 %
 * success, 1 600 tasks) for the 48 h before `degradedFrom`, then degraded (60 %, 1 000 tasks)
 * until `endMs`: the alert tests' incident that goes on.
 */
export async function storeDegradedCohorts(
  store: Store,
  options: { seed: number; cohorts: string[]; degradedFrom: number; endMs: number },
): Promise<void> {
  const random = seeded(options.seed);
  const tasks = options.cohorts.flatMap((cohort) => {
    const spec = { cohort, routes: ['small', 'large'], fallback: 0.1 };
    return [
      ...stream(
        {
          ...spec,
          success: 0.95,
          tasks: 1_600,
          fromMs: options.degradedFrom - 48 * HOUR,
          toMs: options.degradedFrom,
        },
        random,
      ),
      ...stream(
        { ...spec, success: 0.6, tasks: 1_000, fromMs: options.degradedFrom, toMs: options.endMs },
        random,
      ),
    ];
  });
  const loader = await testApp(store);
  await sendTasks(loader, tasks);
  await loader.close();
}
