import type { CollectorStats } from './app.js';
import type { SpanWriterStats } from './span-writer.js';

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  value: number;
}

/** The collector's own counters in the Prometheus text exposition format. Pure. */
export function renderMetrics(collector: CollectorStats, writer: SpanWriterStats): string {
  const metrics: Metric[] = [
    {
      name: 'routewatch_otlp_requests_total',
      help: 'OTLP trace export requests received.',
      type: 'counter',
      value: collector.requests,
    },
    {
      name: 'routewatch_otlp_requests_rejected_total',
      help: 'OTLP requests answered with a 4xx.',
      type: 'counter',
      value: collector.rejectedRequests,
    },
    {
      name: 'routewatch_spans_received_total',
      help: 'Spans in accepted requests.',
      type: 'counter',
      value: collector.spansReceived,
    },
    {
      name: 'routewatch_spans_skipped_total',
      help: 'Spans without routewatch or GenAI attributes, not stored.',
      type: 'counter',
      value: collector.spansSkipped,
    },
    {
      name: 'routewatch_spans_written_total',
      help: 'Spans written to ClickHouse.',
      type: 'counter',
      value: writer.rowsWritten,
    },
    {
      name: 'routewatch_spans_rejected_total',
      help: 'Spans the store refused for their content (answered as an OTLP partial success).',
      type: 'counter',
      value: writer.rowsRejected,
    },
    {
      name: 'routewatch_spans_duplicate_total',
      help: 'Spans dropped as already written (exporter retries).',
      type: 'counter',
      value: writer.duplicatesDropped,
    },
    {
      name: 'routewatch_insert_batches_total',
      help: 'ClickHouse inserts of span batches.',
      type: 'counter',
      value: writer.batches,
    },
    {
      name: 'routewatch_spans_pending',
      help: 'Spans waiting to be written.',
      type: 'gauge',
      value: writer.pendingRows,
    },
    {
      name: 'routewatch_spans_pending_bytes',
      help: 'Serialized size of the spans waiting to be written.',
      type: 'gauge',
      value: writer.pendingBytes,
    },
  ];
  return metrics
    .map((m) => `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n${m.name} ${m.value}\n`)
    .join('');
}
