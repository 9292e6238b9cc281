import type { Command } from '../command.js';
import { integerOption, numberOption } from '../command.js';

interface DemoValues {
  tasks: string;
  seed: string;
  concurrency: string;
  'latency-scale': string;
  'data-dir'?: string;
}

export const demoCommand: Command<DemoValues> = {
  name: 'demo',
  summary: 'the whole pipeline on a local simulated LLM, then the report',
  usage: `
Usage: routewatch demo [--tasks N] [--seed S] [--concurrency C] [--latency-scale X] [--data-dir DIR]

Starts routewatch (embedded ClickHouse in a temporary directory), a simulated OpenAI-compatible
LLM and the instrumented example service, sends the tasks through the real OpenTelemetry SDK and
OTLP exporter, prints the report and checks every figure against the service's own count.
Exits 1 if a figure differs.

Options:
  --tasks N            tasks to run (default 3000)
  --seed S             seed of the simulated LLM and the task mix (default 42)
  --concurrency C      tasks in flight at once (default 32)
  --latency-scale X    multiplies the simulated model latencies; 0 = none (default 0.05)
  --data-dir DIR       keep the data in DIR instead of a temporary directory
`,
  options: {
    tasks: { type: 'string', default: '3000' },
    seed: { type: 'string', default: '42' },
    concurrency: { type: 'string', default: '32' },
    'latency-scale': { type: 'string', default: '0.05' },
    'data-dir': { type: 'string' },
  },
  async run(values) {
    const options = {
      tasks: integerOption('tasks', values.tasks, 1),
      seed: integerOption('seed', values.seed, 0),
      concurrency: integerOption('concurrency', values.concurrency, 1),
      latencyScale: numberOption('latency-scale', values['latency-scale'], 0),
      dataDir: values['data-dir'],
    };
    const { runDemo } = await import('../demo.js');
    const result = await runDemo(options);
    return result.mismatches.length > 0 ? 1 : 0;
  },
};
