import type { AdmissionStats } from './admission.js';
import { stageHistogramLines } from './latency-histogram.js';
import type { IngestStats } from './ingest-pool.js';
import type { CollectorStats } from './otlp-routes.js';
import type { ProcessSnapshot } from './process-metrics.js';
import type { SpanWriterStats, WalSnapshot } from './span-writer.js';

/** Everything /metrics reports, read at scrape time. */
export interface MetricsSources {
  collector: CollectorStats;
  writer: SpanWriterStats;
  ingest: IngestStats;
  admission: AdmissionStats;
  /** The alert evaluator's last result and the notification channels, when they run. */
  alerts?: () => {
    evaluations: number;
    firing: number;
    failedEvaluations: number;
    skippedEvaluations: number;
  };
  channels?: () => Record<string, { sent: number; retries: number; queued: number }>;
  /** The write-ahead log, read at scrape time; absent with ROUTEWATCH_WAL=off. */
  wal?: WalSnapshot | undefined;
  /** The process's memory, CPU, open files and event-loop delay, read at scrape time. */
  process?: ProcessSnapshot | undefined;
}

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  value: number;
}

/** LLM calls by cost source: one series per source, so `unpriced` shows next to the priced ones. */
function costSourceLines({ collector }: MetricsSources): string {
  const name = 'routewatch_llm_calls_total';
  const series = Object.entries(collector.llmCallsByCostSource)
    .map(([source, value]) => `${name}{cost_source="${source}"} ${value}\n`)
    .join('');
  return (
    `# HELP ${name} LLM calls taken, by cost source (span, price_table, unpriced); an exporter's retry of calls taken before does not count again.\n` +
    `# TYPE ${name} counter\n${series}`
  );
}

type MetricRow = [string, string, 'counter' | 'gauge', number];

/** The write-ahead log's series; none when it is off. */
function walMetrics(wal: WalSnapshot | undefined): MetricRow[] {
  if (!wal) return [];
  return [
    ['routewatch_wal_bytes', 'Bytes of write-ahead log segments on disk.', 'gauge', wal.bytes],
    [
      'routewatch_wal_max_bytes',
      'Disk budget of the write-ahead log (ROUTEWATCH_WAL_MAX_BYTES).',
      'gauge',
      wal.maxBytes,
    ],
    [
      'routewatch_wal_records',
      'Records in the write-ahead log not yet stored in ClickHouse.',
      'gauge',
      wal.records,
    ],
    [
      'routewatch_wal_spans',
      'Spans acknowledged and in the write-ahead log, not yet stored in ClickHouse.',
      'gauge',
      wal.rows,
    ],
    [
      'routewatch_wal_oldest_unstored_age_seconds',
      'Age of the oldest span in the write-ahead log not yet stored (0 when none).',
      'gauge',
      wal.oldestUnstoredAgeSeconds,
    ],
    [
      'routewatch_wal_drain_spans_per_second',
      'Spans stored from the write-ahead log per second, over the last 10 s.',
      'gauge',
      wal.drainRowsPerSecond,
    ],
    [
      'routewatch_wal_store_available',
      '1 while the store takes inserts from the log; 0 until it is migrated, and from a failed ' +
        'insert until one succeeds.',
      'gauge',
      wal.storeAvailable ? 1 : 0,
    ],
    [
      'routewatch_wal_store_failures_total',
      'Inserts from the write-ahead log that failed and are retried.',
      'counter',
      wal.storeFailures,
    ],
    [
      'routewatch_wal_spans_rejected_after_ack_total',
      'Acknowledged spans the store refused for their content, logged and dropped.',
      'counter',
      wal.rowsRejectedAfterAck,
    ],
    [
      'routewatch_wal_appends_total',
      'Group commits to the write-ahead log (one durable write each).',
      'counter',
      wal.appends,
    ],
    [
      'routewatch_wal_appended_bytes_total',
      'Bytes appended to the write-ahead log.',
      'counter',
      wal.bytesAppended,
    ],
    [
      'routewatch_wal_replayed_records_total',
      'Records found in the write-ahead log at start, not yet stored (stored after it).',
      'counter',
      wal.replayedRecords,
    ],
    [
      'routewatch_wal_torn_records_dropped_total',
      'Torn records cut off the end of the log at start (never acknowledged).',
      'counter',
      wal.tornRecordsDropped,
    ],
    [
      'routewatch_wal_corrupt_records_total',
      'Records that failed their checksum where no crash can tear them (a failing disk).',
      'counter',
      wal.corruptRecords,
    ],
    [
      'routewatch_wal_segments_deleted_total',
      'Log segments deleted once every record in them was stored.',
      'counter',
      wal.segmentsDeleted,
    ],
  ];
}

/** The collector's own counters in the Prometheus text exposition format. Pure. */
export function renderMetrics(sources: MetricsSources): string {
  const { collector, writer, ingest, admission } = sources;
  const metrics: Metric[] = [
    [
      'routewatch_otlp_requests_total',
      'OTLP trace export requests received, whatever the answer: those refused before their body ' +
        'was read (401, 413, 415, 503) count here too. The OTLP counters are parts of it; ' +
        'routewatch_requests_refused_total and routewatch_unauthenticated_requests_total also count other routes.',
      'counter',
      collector.requests,
    ],
    [
      'routewatch_otlp_requests_rejected_total',
      'OTLP requests answered with a 4xx.',
      'counter',
      collector.rejectedRequests,
    ],
    [
      'routewatch_unauthenticated_requests_total',
      'Requests to any route refused with 401: no token or a wrong one (ROUTEWATCH_TOKEN).',
      'counter',
      collector.unauthenticatedRequests,
    ],
    [
      'routewatch_misaddressed_requests_total',
      "Requests to any route refused with 403 for their Host header: without ROUTEWATCH_TOKEN only loopback names (and ROUTEWATCH_PUBLIC_URL's host) are answered.",
      'counter',
      collector.misaddressedRequests,
    ],
    [
      'routewatch_requests_refused_total',
      'Ingest requests (OTLP traces and /v1/outcomes) refused with 503 before their body was read (overload).',
      'counter',
      admission.refused,
    ],
    [
      'routewatch_spans_received_total',
      'Spans in accepted requests.',
      'counter',
      collector.spansReceived,
    ],
    [
      'routewatch_spans_skipped_total',
      'Spans without routewatch or GenAI attributes, not stored.',
      'counter',
      collector.spansSkipped,
    ],
    [
      'routewatch_spans_out_of_window_total',
      'Spans refused for a start time older than retention or too far ahead.',
      'counter',
      collector.spansOutOfWindow,
    ],
    [
      'routewatch_spans_invalid_total',
      'Spans refused alone for a trace or span id that is not one (wrong length, all zero).',
      'counter',
      collector.spansInvalid,
    ],
    [
      'routewatch_spans_written_total',
      'Spans written to ClickHouse.',
      'counter',
      writer.rowsWritten,
    ],
    [
      'routewatch_spans_rejected_total',
      'Spans the store refused for their content (without the write-ahead log answered as an ' +
        'OTLP partial success; with it acknowledged already, then logged and dropped).',
      'counter',
      writer.rowsRejected,
    ],
    [
      'routewatch_spans_duplicate_total',
      'Spans dropped as already written (exporter retries).',
      'counter',
      writer.duplicatesDropped,
    ],
    [
      'routewatch_writes_refused_total',
      'Writes refused with 503 because the queue to the store (or to the log) was full.',
      'counter',
      writer.overloadRefusals,
    ],
    [
      'routewatch_wal_full_refusals_total',
      'Ingest requests refused with 503 because the write-ahead log was at its disk budget.',
      'counter',
      writer.logFullRefusals,
    ],
    [
      'routewatch_wal_append_failures_total',
      'Appends to the write-ahead log that failed (a full disk, an I/O error); their requests were answered 503.',
      'counter',
      writer.logAppendFailures,
    ],
    [
      'routewatch_insert_batches_total',
      'ClickHouse inserts of span batches.',
      'counter',
      writer.batches,
    ],
    [
      'routewatch_spans_pending',
      'Spans waiting to be written (to the write-ahead log when it is on, else to the store).',
      'gauge',
      writer.pendingRows,
    ],
    [
      'routewatch_spans_pending_bytes',
      'Serialized size of the spans waiting to be written (to the log, or to the store).',
      'gauge',
      writer.pendingBytes,
    ],
    [
      'routewatch_insert_rows_per_second',
      'Rows the store takes per second, measured over recent inserts.',
      'gauge',
      writer.insertRowsPerSecond,
    ],
    [
      'routewatch_inflight_bytes',
      'Bytes of ingest requests being received, decoded or written.',
      'gauge',
      admission.inflightBytes,
    ],
    [
      'routewatch_arriving_bytes',
      'Bytes received so far of ingest request bodies still arriving (counted as work queued by admission).',
      'gauge',
      admission.arrivingBytes,
    ],
    [
      'routewatch_inflight_requests',
      'Ingest requests being received, decoded or written.',
      'gauge',
      admission.inflightRequests,
    ],
    [
      'routewatch_ingest_queued_requests',
      'Request bodies waiting for an ingest thread.',
      'gauge',
      ingest.queued,
    ],
    [
      'routewatch_ingest_worker_restarts_total',
      'Ingest threads replaced after they died.',
      'counter',
      ingest.workerRestarts,
    ],
    [
      'routewatch_ingest_shed_requests_total',
      'Export requests refused with 503 after their body waited for an ingest thread longer than ROUTEWATCH_MAX_QUEUE_WAIT (overload the admission estimate missed).',
      'counter',
      ingest.shed,
    ],
    ...walMetrics(sources.wal),
    ...processMetrics(sources.process),
  ].map(([name, help, type, value]) => ({ name, help, type, value }) as Metric);
  const alerts = sources.alerts?.();
  if (alerts) {
    metrics.push(
      {
        name: 'routewatch_alert_evaluations_total',
        help: 'Evaluations of the alert rules.',
        type: 'counter',
        value: alerts.evaluations,
      },
      {
        name: 'routewatch_alert_evaluations_failed_total',
        help: 'Evaluations that failed (the store did not answer).',
        type: 'counter',
        value: alerts.failedEvaluations,
      },
      {
        name: 'routewatch_alert_evaluations_skipped_total',
        help: 'Scheduled evaluations skipped because the one before was still running (raise ROUTEWATCH_EVALUATE_EVERY).',
        type: 'counter',
        value: alerts.skippedEvaluations,
      },
      {
        name: 'routewatch_alerts_firing',
        help: 'Alerts firing after the last evaluation.',
        type: 'gauge',
        value: alerts.firing,
      },
    );
  }
  return (
    metrics
      .map((m) => `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n${m.name} ${m.value}\n`)
      .join('') +
    costSourceLines(sources) +
    stageLines(sources) +
    channelLines(sources)
  );
}

/** The process's own series, under the names Prometheus' client libraries give them. */
function processMetrics(p: ProcessSnapshot | undefined): MetricRow[] {
  if (!p) return [];
  const rows: MetricRow[] = [
    [
      'process_cpu_user_seconds_total',
      'User CPU time spent, seconds.',
      'counter',
      p.cpuUserSeconds,
    ],
    [
      'process_cpu_system_seconds_total',
      'System CPU time spent, seconds.',
      'counter',
      p.cpuSystemSeconds,
    ],
    [
      'process_cpu_seconds_total',
      'User and system CPU time spent, seconds.',
      'counter',
      p.cpuUserSeconds + p.cpuSystemSeconds,
    ],
    [
      'process_start_time_seconds',
      'Start time of the process, seconds since the Unix epoch.',
      'gauge',
      p.startTimeSeconds,
    ],
    [
      'process_resident_memory_bytes',
      'Resident memory size, bytes (the embedded engine included, when the store is embedded).',
      'gauge',
      p.residentBytes,
    ],
    [
      'nodejs_heap_size_total_bytes',
      "Size of the main thread's JavaScript heap, bytes.",
      'gauge',
      p.heapTotalBytes,
    ],
    [
      'nodejs_heap_size_used_bytes',
      "Used size of the main thread's JavaScript heap, bytes.",
      'gauge',
      p.heapUsedBytes,
    ],
    [
      'nodejs_external_memory_bytes',
      'Memory of C++ objects bound to JavaScript objects, bytes.',
      'gauge',
      p.externalBytes,
    ],
    [
      'nodejs_eventloop_lag_p99_seconds',
      "99th percentile of the main thread's event-loop delay since the scrape before (any scraper's), seconds; the 10-ms sampling interval included.",
      'gauge',
      p.eventLoopDelayP99Seconds,
    ],
    [
      'nodejs_eventloop_lag_max_seconds',
      "Longest event-loop delay of the main thread since the scrape before (any scraper's), seconds; the 10-ms sampling interval included.",
      'gauge',
      p.eventLoopDelayMaxSeconds,
    ],
  ];
  if (p.openFds !== null)
    rows.push(['process_open_fds', 'Open file descriptors.', 'gauge', p.openFds]);
  return rows;
}

/** Where the time of an export request goes, stage by stage. */
function stageLines({ collector, ingest, writer }: MetricsSources): string {
  return stageHistogramLines('routewatch_export_stage_seconds', {
    receive: collector.receiveMs,
    ingest_wait: ingest.waitMs,
    ingest: ingest.workMs,
    ingest_return: ingest.returnMs,
    write_wait: writer.writeWaitMs,
    write: writer.writeMs,
    total: collector.totalMs,
  });
}

/** Per-channel notification counters, labelled by channel. */
function channelLines(sources: MetricsSources): string {
  const channels = Object.entries(sources.channels?.() ?? {});
  if (channels.length === 0) return '';
  type Stats = {
    sent: number;
    retries: number;
    queued: number;
    expired?: number;
    refused?: number;
    silenced?: number;
    unannounced?: number;
  };
  const labelled = (name: string, help: string, type: string, pick: (c: Stats) => number) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n` +
    channels.map(([channel, c]) => `${name}{channel="${channel}"} ${pick(c)}\n`).join('');
  return (
    labelled(
      'routewatch_notifications_sent_total',
      'Alert messages delivered, per channel.',
      'counter',
      (c) => c.sent,
    ) +
    labelled(
      'routewatch_notification_retries_total',
      'Failed delivery attempts, retried, per channel.',
      'counter',
      (c) => c.retries,
    ) +
    labelled(
      'routewatch_notifications_queued',
      'Alert messages waiting, per channel.',
      'gauge',
      (c) => c.queued,
    ) +
    labelled(
      'routewatch_notifications_expired_total',
      'Alert messages never delivered that grew older than the look-back (7 days) and were given up, per channel.',
      'counter',
      (c) => c.expired ?? 0,
    ) +
    labelled(
      'routewatch_notifications_refused_total',
      'Alert messages the endpoint refused as they are (HTTP 400, 413, 422, three times) and that were given up, per channel.',
      'counter',
      (c) => c.refused ?? 0,
    ) +
    labelled(
      'routewatch_notifications_silenced_total',
      'Alert messages still waiting when a silence that matches them came into force, kept back, per channel.',
      'counter',
      (c) => c.silenced ?? 0,
    ) +
    labelled(
      'routewatch_notifications_unannounced_total',
      'Ends of incidents (resolved, closed) not sent because their firing never reached the channel (kept back by a silence, refused or given up), per channel.',
      'counter',
      (c) => c.unannounced ?? 0,
    )
  );
}
