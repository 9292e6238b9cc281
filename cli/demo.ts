import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvaluationResult } from '../analyzer/evaluator.js';
import { buildReport } from '../analyzer/report.js';
import type { Report } from '../analyzer/report.js';
import { buildAdvice } from '../analyzer/advice.js';
import { renderAdvice } from '../analyzer/gate-table.js';
import { renderReportTable } from '../analyzer/report-table.js';
import { resolveRules } from '../analyzer/rules.js';
import type { RuleSet } from '../analyzer/rules.js';
import { costPerSuccessfulTask, summarizeTruth } from '../examples/ground-truth.js';
import type { GroundTruth } from '../examples/ground-truth.js';
import { startMockLlm } from '../examples/mock-llm.js';
import type { ProfileOverrides } from '../examples/mock-models.js';
import { runExampleService } from '../examples/support-service.js';
import { configWith, parseConfig } from '../server/config.js';
import type { Config } from '../server/config.js';
import { startRoutewatch } from '../server/start.js';
import { progressReporter } from './progress.js';

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
  /**
   * Degrade the small route of extraction halfway through (the before/after); default true.
   * Without it, the demo is one steady run.
   */
  degrade?: boolean;
  out?: (text: string) => void;
}

export interface DemoResult {
  report: Report;
  truth: GroundTruth;
  spansWritten: number;
  /** Cohort × route groups whose tasks, successes or fallbacks differ from the ground truth. */
  mismatches: string[];
  /** Every alert transition of the run's evaluations, in order. */
  transitions: EvaluationResult['events'];
}

/** The simulated provider regression: the small model starts failing extraction's validation. */
export const DEMO_DEGRADATION: ProfileOverrides = {
  small: { extraction: { invalidRate: 0.75, resolvedRate: 0.75 } },
};

/** A share of each small-first cohort routed large-first: the concurrent control. */
const CONTROL_SHARE = 0.15;
/** Evaluations while the degraded half runs. */
const EVALUATIONS = 4;
/**
 * The demo's rules: the current window is the degraded half so far, the baseline the healthy half
 * before it (a pinned baseline), and minimum samples sized for a few thousand tasks.
 */
function demoRules(before: { from: Date; to: Date }, now: Date): RuleSet {
  const defaults = resolveRules();
  return {
    evaluation: {
      ...defaults.evaluation,
      horizonMs: Math.max(1_000, now.getTime() - before.to.getTime() + 1),
      buckets: 12,
      minTasks: 60,
      minBaselineTasks: 60,
      pendingEvaluations: 2,
      resolveEvaluations: 2,
    },
    baselines: { before },
    // Every default rule `routewatch start` runs, so that a degradation of another kind (retries,
    // unpriced calls, reasons) alerts here too; but p95_regression, whose latencies are this
    // machine's (the simulated ones scaled down, plus its own load): on a busy machine it went
    // pending on cohorts nothing changed, and the demo's alerts are the seed's.
    rules: defaults.rules
      .filter((r) => r.kind !== 'p95_regression')
      .map((r) =>
        r.baseline.kind === 'trailing' ? { ...r, baseline: { kind: 'pinned', name: 'before' } } : r,
      ),
  };
}

/**
 * The settings the demo runs routewatch with: a port of its own, evaluations of its own, the
 * alert channels of the environment, as for `routewatch start`.
 */
export function demoSettings(
  env: Pick<
    Config,
    'ROUTEWATCH_SLACK_WEBHOOK_URL' | 'ROUTEWATCH_WEBHOOK_URL' | 'ROUTEWATCH_PUBLIC_URL'
  >,
  where: {
    dataDir?: string | undefined;
    /** The data outlives the demo (--data-dir): `routewatch start` can serve it after. */
    kept?: boolean;
    clickhouseUrl?: string | undefined;
  },
): Record<string, string> {
  return {
    ROUTEWATCH_PORT: '0',
    ROUTEWATCH_EVALUATE_EVERY: '0',
    ...(where.dataDir ? { ROUTEWATCH_DATA_DIR: where.dataDir } : {}),
    ...(where.clickhouseUrl ? { CLICKHOUSE_URL: where.clickhouseUrl } : {}),
    ...(env.ROUTEWATCH_SLACK_WEBHOOK_URL
      ? { ROUTEWATCH_SLACK_WEBHOOK_URL: env.ROUTEWATCH_SLACK_WEBHOOK_URL }
      : {}),
    ...(env.ROUTEWATCH_WEBHOOK_URL ? { ROUTEWATCH_WEBHOOK_URL: env.ROUTEWATCH_WEBHOOK_URL } : {}),
    // The messages' "Open the dashboard" links: the demo's own port is gone once it ends, so
    // they point where `routewatch start` serves the kept data (or ROUTEWATCH_PUBLIC_URL). A
    // temporary directory is removed at the end: there is nothing to serve, and a link to
    // 4318 would open another store's dashboard, without the alert.
    ...(env.ROUTEWATCH_PUBLIC_URL || where.kept
      ? { ROUTEWATCH_PUBLIC_URL: env.ROUTEWATCH_PUBLIC_URL ?? new URL(DEMO_VIEW).origin }
      : {}),
  };
}

/**
 * The whole pipeline on one machine: routewatch (collector + analyzer + embedded ClickHouse), a
 * local OpenAI-compatible simulated LLM, and the instrumented example service exporting through
 * the real OpenTelemetry SDK and OTLP/HTTP exporter. Halfway through, the simulated small model
 * starts failing extraction; routewatch's evaluator watches the second half against the first and
 * raises the alerts (to Slack too when ROUTEWATCH_SLACK_WEBHOOK_URL is set). The simulated LLM is
 * the only simulated part.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = options.out ?? ((text: string) => process.stdout.write(text));
  const degrade = options.degrade ?? true;
  // A temporary directory unless one is given: the embedded store's data, and the write-ahead
  // log's place with a ClickHouse server too.
  const tempDir = options.dataDir ? undefined : mkdtempSync(join(tmpdir(), 'routewatch-demo-'));
  const dataDir = options.dataDir ?? tempDir;
  const started = new Date();
  // Alert channels come from the environment, as for `routewatch start`.
  const env = parseConfig();
  const routewatch = await startRoutewatch(
    configWith(
      demoSettings(env, {
        dataDir,
        kept: options.dataDir !== undefined,
        clickhouseUrl: options.clickhouseUrl,
      }),
    ),
  );
  const mock = await startMockLlm({ seed: options.seed, latencyScale: options.latencyScale });
  // Loaded here so that `routewatch start` never pulls the OpenTelemetry SDK into its process.
  const instrumentation = await import('@routewatch/instrumentation');
  const telemetry = instrumentation.registerRoutewatch({
    serviceName: 'support-service',
    tracesEndpoint: routewatch.tracesUrl,
  });
  instrumentation.instrumentOpenAI(await import('openai'));
  const transitions: EvaluationResult['events'] = [];
  const firingBefore = new Set<string>();
  try {
    out(
      `routewatch demo: ${options.tasks} tasks, seed ${options.seed}\n` +
        `  routewatch  ${routewatch.url} (${routewatch.store.driver} ClickHouse, ${routewatch.store.location})\n` +
        `  mock LLM    ${mock.url} (gpt-4o-mini = small, gpt-4o = large)\n` +
        (env.ROUTEWATCH_SLACK_WEBHOOK_URL
          ? '  alerts      also sent to Slack (ROUTEWATCH_SLACK_WEBHOOK_URL)\n'
          : '') +
        '\n',
    );
    const service = {
      seed: options.seed,
      concurrency: options.concurrency,
      openaiBaseURL: mock.url,
      policyVersion: 'demo-v1',
      controlShare: CONTROL_SHARE,
    };
    const firstHalf = degrade ? Math.floor(options.tasks / 2) : options.tasks;
    out(`Before: ${firstHalf} tasks with every model behaving as usual.\n`);
    // The first half prints nothing else while it runs: a progress line, rewritten in place on a
    // terminal (the default output), else a line per quarter.
    const progress = progressReporter(
      { write: out, isTTY: !options.out && process.stdout.isTTY },
      'tasks',
      firstHalf,
    );
    const before = await runExampleService({
      ...service,
      tasks: firstHalf,
      onProgress: (done) => progress.update(done),
    });
    progress.finish();
    const parts = [before];
    if (degrade && options.tasks > firstHalf) {
      await telemetry.forceFlush();
      await routewatch.writer.flush();
      const baseline = { from: started, to: new Date() };
      mock.setProfiles(DEMO_DEGRADATION);
      // An earlier run into the same --data-dir may have left alerts firing: they do not fire again.
      for (const alert of await routewatch.evaluator.alerts.states()) {
        if (alert.state === 'firing') firingBefore.add(`${alert.cohort} × ${alert.route}`);
      }
      const rest = options.tasks - firstHalf;
      out(
        `After: ${rest} more tasks — the small model now fails extraction's validation three times in four ` +
          '(a simulated provider regression). routewatch evaluates its rules as they run:\n',
      );
      let done = 0;
      for (let i = 0; i < EVALUATIONS; i++) {
        const chunk = Math.round((rest * (i + 1)) / EVALUATIONS) - done;
        parts.push(
          await runExampleService({ ...service, tasks: chunk, firstTaskIndex: firstHalf + done }),
        );
        done += chunk;
        await telemetry.forceFlush();
        await routewatch.writer.flush();
        const now = new Date();
        const result = await routewatch.evaluator.evaluate(now, demoRules(baseline, now));
        transitions.push(...result.events);
        const firing = result.events.filter((e) => e.kind === 'firing');
        out(
          `  ${String(firstHalf + done).padStart(6)} tasks · evaluation ${i + 1}: ` +
            (result.events.length === 0
              ? 'no change'
              : result.events
                  .map((e) => `${e.kind} ${e.ruleId} (${e.cohort} × ${e.route})`)
                  .join(', ')) +
            '\n',
        );
        for (const e of firing) out(`           ALERT ${e.summary}\n`);
      }
    }
    await telemetry.shutdown();
    await routewatch.writer.flush();
    const tasks = parts.flatMap((p) => p.tasks);
    // This run's tasks only: every one started after `started`. A window reaching back before it
    // would take in an earlier run's tasks kept in the same --data-dir.
    const thisRun = { from: started, to: new Date(Date.now() + 60_000) };
    const truth = summarizeTruth(options.seed, 'demo-v1', tasks);
    const report = await buildReport(routewatch.store, thisRun);
    out(`\n${renderReportTable(report)}`);
    // Advice needs a few hundred tasks per route: the default demo has them for the busiest cohorts.
    const advice = await buildAdvice(routewatch.store, thisRun);
    out(`\n${renderAdvice(advice)}`);
    const mismatches = compareWithTruth(report, truth);
    const cpst = costPerSuccessfulTask(truth.totals);
    out(
      `\n${routewatch.writer.stats.rowsWritten} spans stored; ${truth.totals.llmCalls} model calls; ` +
        `overall cost per successful task $${cpst === null ? '—' : cpst.toFixed(6)}.\n` +
        (mismatches.length === 0
          ? 'Every cohort × route figure matches what the example service counted itself.\n'
          : `Differences from the service's own counts:\n  ${mismatches.join('\n  ')}\n`),
    );
    if (degrade) {
      const firing = new Set(
        transitions.filter((e) => e.kind === 'firing').map((e) => `${e.cohort} × ${e.route}`),
      );
      const stillFiring = (await routewatch.evaluator.alerts.states())
        .filter((a) => a.state === 'firing')
        .map((a) => `${a.cohort} × ${a.route}`)
        .filter((where) => firingBefore.has(where) && !firing.has(where));
      const held = [...new Set(stillFiring)];
      // The degraded cohort × route's tasks after the change: what its rules had to judge.
      const degraded = parts
        .slice(1)
        .flatMap((p) => p.tasks)
        .filter((t) => t.cohort === 'extraction' && t.primaryRoute === 'small').length;
      out(
        alertOutcome([...firing], held, options.dataDir, {
          degraded,
          minTasks: demoRules(thisRun, new Date()).evaluation.minTasks,
        }),
      );
      const notifier = routewatch.notifier;
      if (notifier) await waitForDelivery(() => notifier.stats(), out);
    }
    return {
      report,
      truth,
      spansWritten: routewatch.writer.stats.rowsWritten,
      mismatches,
      transitions,
    };
  } finally {
    await telemetry.shutdown();
    await mock.close();
    await routewatch.close();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

/** Gives the notifier a few seconds to deliver what fired, and says how it went. */
async function waitForDelivery(
  stats: () => Record<string, { sent: number; queued: number; lastError: string }>,
  out: (text: string) => void,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && Object.values(stats()).some((c) => c.queued > 0)) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  for (const [channel, c] of Object.entries(stats())) {
    out(
      `${channel}: ${c.sent} alert(s) delivered${c.queued > 0 ? `, ${c.queued} still queued (last error: ${c.lastError || 'none'})` : ''}.\n`,
    );
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
      ['calls the SDK retried', row.retriedCalls, group.retriedCalls],
      ['extra HTTP requests', row.httpRetries, group.httpRetries],
    ];
    for (const [name, got, want] of pairs) {
      if (got !== want) mismatches.push(`${label}: ${name} ${got}, service counted ${want}`);
    }
    if (Math.abs(row.totalCostUsd - group.costUsd) > 1e-9) {
      mismatches.push(`${label}: cost $${row.totalCostUsd}, service counted $${group.costUsd}`);
    }
    const names = new Set([...Object.keys(group.scores), ...row.scores.map((s) => s.name)]);
    for (const name of names) {
      const want = group.scores[name];
      const got = row.scores.find((s) => s.name === name);
      const wantMean = want ? want.sum / want.n : null;
      if (got?.n !== want?.n || Math.abs((got?.mean ?? 0) - (wantMean ?? 0)) > 1e-9) {
        mismatches.push(
          `${label}: score ${name} ${got ? `${got.mean} over ${got.n}` : 'missing'}, ` +
            `service recorded ${want ? `${wantMean} over ${want.n}` : 'none'}`,
        );
      }
    }
  }
  return mismatches;
}

/** The demo's minutes of data on the dashboard: the last hour, a point a minute. */
const DEMO_VIEW = 'http://127.0.0.1:4318/?window=1h&bucket=1m';
/** What `start` makes of the demo's alerts, whose own rules it does not run. */
const UNDER_START =
  "Under start's own rules, whose trailing 7-day baseline the demo's minutes do not fill, they " +
  'stay firing with no verdict, then close unjudged (holdWithoutVerdict, docs/rules.md).';

/** Why a degraded run raised nothing: too few of the degraded route's tasks to judge. */
function noAlertWhy(evidence: { degraded: number; minTasks: number } | undefined): string {
  if (evidence === undefined) return '';
  const few =
    evidence.degraded < evidence.minTasks
      ? `fewer than the ${evidence.minTasks} a rule judges at all`
      : "too few for the evidence to reach the rules' threshold";
  return (
    `: extraction × small ran ${evidence.degraded} task${evidence.degraded === 1 ? '' : 's'} after the change, ${few}. ` +
    'Run more --tasks (3000 by default) to see it caught'
  );
}

/**
 * The demo's last word on alerts: which cohort × route fired in this run, and which were already
 * firing from an earlier run kept in the same data directory (and did not fire again).
 */
export function alertOutcome(
  fired: readonly string[],
  earlier: readonly string[],
  dataDir: string | undefined,
  /** Tasks of extraction × small after the change, and the fewest a rule judges. */
  evidence?: { degraded: number; minTasks: number },
): string {
  const kept = `kept in ${dataDir ?? 'this data directory'}`;
  const were = (list: readonly string[]) => (list.length === 1 ? 'was' : 'were');
  if (fired.length === 0) {
    return earlier.length > 0
      ? `\nNo new alert fired: ${earlier.join(', ')} ${were(earlier)} already firing ` +
          `from an earlier run ${kept}, and still ${earlier.length === 1 ? 'is' : 'are'} ` +
          '(an alert notifies when it fires, then only every repeat interval). ' +
          'A fresh --data-dir shows an alert fire.\n'
      : `\nNo alert fired${noAlertWhy(evidence)}.\n`;
  }
  return (
    `\nAlerts fired for ${fired.join(', ')} only` +
    (earlier.length > 0
      ? ` (${earlier.join(', ')} ${were(earlier)} already firing from an earlier run ${kept})`
      : '') +
    '; every other cohort stayed quiet. ' +
    (dataDir
      ? `They are kept in ${dataDir}: \`ROUTEWATCH_DATA_DIR=${dataDir} routewatch start\`, ` +
        `then \`routewatch alerts\` or the dashboard (${DEMO_VIEW}) shows them. ${UNDER_START}\n`
      : 'This run kept its data in a temporary directory, now removed; run the demo with ' +
        '`--data-dir DIR`, then `ROUTEWATCH_DATA_DIR=DIR routewatch start`, to look at ' +
        `them with \`routewatch alerts\` or the dashboard (${DEMO_VIEW}). ${UNDER_START}\n`)
  );
}
