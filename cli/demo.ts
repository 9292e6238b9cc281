import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport } from '../analyzer/report.js';
import type { Report } from '../analyzer/report.js';
import { renderReportTable } from '../analyzer/report-table.js';
import { costPerSuccessfulTask } from '../examples/ground-truth.js';
import type { GroundTruth } from '../examples/ground-truth.js';
import { startMockLlm } from '../examples/mock-llm.js';
import { runExampleService } from '../examples/support-service.js';
import { configWith } from '../server/config.js';
import { startRoutewatch } from '../server/start.js';

export interface DemoOptions {
  seed: number;
  tasks: number;
  concurrency: number;
  /** Multiplies the mock model latencies (1 = realistic, seconds per call). */
  latencyScale: number;
  /** Keep the demo's data directory instead of deleting it. */
  dataDir?: string | undefined;
  /** Store on this ClickHouse server instead of the embedded engine. */
  clickhouseUrl?: string | undefined;
  out?: (text: string) => void;
}

export interface DemoResult {
  report: Report;
  truth: GroundTruth;
  spansWritten: number;
  /** Cohort × route groups whose tasks, successes or fallbacks differ from the ground truth. */
  mismatches: string[];
}

/**
 * The whole pipeline on one machine: routewatch (collector + analyzer + embedded ClickHouse), a
 * local OpenAI-compatible mock LLM, and the instrumented example service exporting through the
 * real OpenTelemetry SDK and OTLP/HTTP exporter. The mock LLM is the only simulated part.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = options.out ?? ((text: string) => process.stdout.write(text));
  // A temporary directory unless one is given: the embedded store's data, and the write-ahead
  // log's place with a ClickHouse server too.
  const tempDir = options.dataDir ? undefined : mkdtempSync(join(tmpdir(), 'routewatch-demo-'));
  const dataDir = options.dataDir ?? tempDir;
  const started = new Date();
  const routewatch = await startRoutewatch(
    configWith({
      ROUTEWATCH_PORT: '0',
      ...(dataDir ? { ROUTEWATCH_DATA_DIR: dataDir } : {}),
      ...(options.clickhouseUrl ? { CLICKHOUSE_URL: options.clickhouseUrl } : {}),
    }),
  );
  const mock = await startMockLlm({ seed: options.seed, latencyScale: options.latencyScale });
  // Loaded here so that `routewatch start` never pulls the OpenTelemetry SDK into its process.
  const instrumentation = await import('@routewatch/instrumentation');
  const telemetry = instrumentation.registerRoutewatch({
    serviceName: 'support-service',
    tracesEndpoint: routewatch.tracesUrl,
  });
  instrumentation.instrumentOpenAI(await import('openai'));
  try {
    out(
      `routewatch demo: ${options.tasks} tasks, seed ${options.seed}\n` +
        `  routewatch  ${routewatch.url} (${routewatch.store.driver} ClickHouse, ${routewatch.store.location})\n` +
        `  mock LLM    ${mock.url} (gpt-4o-mini = small, gpt-4o = large)\n\n`,
    );
    const truth = await runExampleService({
      seed: options.seed,
      tasks: options.tasks,
      concurrency: options.concurrency,
      openaiBaseURL: mock.url,
      policyVersion: 'demo-v1',
    });
    await telemetry.shutdown();
    await routewatch.writer.flush();
    const report = await buildReport(routewatch.store, {
      from: new Date(started.getTime() - 60_000),
      to: new Date(Date.now() + 60_000),
    });
    out(renderReportTable(report));
    const mismatches = compareWithTruth(report, truth);
    const cpst = costPerSuccessfulTask(truth.totals);
    out(
      `\n${routewatch.writer.stats.rowsWritten} spans stored; ${truth.totals.llmCalls} model calls; ` +
        `overall cost per successful task $${cpst === null ? '—' : cpst.toFixed(6)}.\n` +
        (mismatches.length === 0
          ? 'Every cohort × route figure matches what the example service counted itself.\n'
          : `Differences from the service's own counts:\n  ${mismatches.join('\n  ')}\n`),
    );
    return { report, truth, spansWritten: routewatch.writer.stats.rowsWritten, mismatches };
  } finally {
    await telemetry.shutdown();
    await mock.close();
    await routewatch.close();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

/** Compares the report with the ground truth the example service computed from its own calls. */
export function compareWithTruth(report: Report, truth: GroundTruth): string[] {
  const mismatches: string[] = [];
  for (const group of truth.groups) {
    const row = report.rows.find(
      (r) => r.cohort === group.cohort && r.primaryRoute === group.primaryRoute,
    );
    const label = `${group.cohort} × ${group.primaryRoute}`;
    if (!row) {
      mismatches.push(`${label}: missing from the report`);
      continue;
    }
    const pairs: [string, number, number][] = [
      ['tasks', row.tasks, group.tasks],
      ['successes', row.successes, group.successes],
      ['fallbacks', row.fallbacks, group.fallbacks],
    ];
    for (const [name, got, want] of pairs) {
      if (got !== want) mismatches.push(`${label}: ${name} ${got}, service counted ${want}`);
    }
    if (Math.abs(row.totalCostUsd - group.costUsd) > 1e-9) {
      mismatches.push(`${label}: cost $${row.totalCostUsd}, service counted $${group.costUsd}`);
    }
  }
  return mismatches;
}
