/**
 * Run the mock LLM and the example service by hand:
 *
 *   npm run build
 *   node --import @routewatch/instrumentation/register dist/examples/run.js --seed 42 --tasks 2000
 *
 * Telemetry is the `--import` hook's business (OTEL_EXPORTER_OTLP_ENDPOINT, default the local
 * collector); without it the service runs untraced. Prints the ground truth summary as JSON.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { costPerSuccessfulTask } from './ground-truth.js';
import { startMockLlm } from './mock-llm.js';
import { runExampleService } from './support-service.js';

const argsSchema = z.object({
  seed: z.coerce.number().int(),
  tasks: z.coerce.number().int().nonnegative(),
  concurrency: z.coerce.number().int().positive(),
  'latency-scale': z.coerce.number().nonnegative(),
  'policy-version': z.string().min(1).optional(),
  'openai-base-url': z.url().optional(),
  'with-tasks': z.boolean(),
});

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '42' },
    tasks: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '32' },
    'latency-scale': { type: 'string', default: '0.1' },
    'policy-version': { type: 'string' },
    'openai-base-url': { type: 'string' },
    'with-tasks': { type: 'boolean', default: false },
  },
  strict: true,
});

const parsed = argsSchema.safeParse(values);
if (!parsed.success) {
  const issue = parsed.error.issues[0];
  console.error(`examples/run: --${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}`);
  process.exit(2);
}
const args = parsed.data;

// An external OpenAI-compatible endpoint replaces the mock (and its seed) when given.
const mock =
  args['openai-base-url'] === undefined
    ? await startMockLlm({ seed: args.seed, latencyScale: args['latency-scale'] })
    : undefined;
try {
  const truth = await runExampleService({
    seed: args.seed,
    tasks: args.tasks,
    concurrency: args.concurrency,
    openaiBaseURL: args['openai-base-url'] ?? mock?.url ?? '',
    ...(args['policy-version'] === undefined ? {} : { policyVersion: args['policy-version'] }),
  });
  const groups = truth.groups.map(({ latenciesMs, ...group }) => ({
    ...group,
    costPerSuccessfulTask: costPerSuccessfulTask(group),
    p95LatencyMs: [...latenciesMs].sort((x, y) => x - y)[Math.ceil(latenciesMs.length * 0.95) - 1],
  }));
  const summary = { seed: truth.seed, totals: truth.totals, groups };
  console.log(
    JSON.stringify(args['with-tasks'] ? { ...summary, tasks: truth.tasks } : summary, null, 2),
  );
} finally {
  await mock?.close();
}
