import { describe, expect, it } from 'vitest';
import { runDemo } from '../../cli/demo.js';
import { DEMO, expectReportMatchesTruth } from '../support/demo-truth.js';

// The same run on a ClickHouse server is test/integration/e2e-server.test.ts: a second demo run
// in one process stores no spans (the OpenTelemetry SDK is registered once per process).
describe('end to end: example service → OpenTelemetry SDK → OTLP/HTTP → collector → ClickHouse → views → report', () => {
  it('reproduces the ground truth the simulator computed itself, on the embedded engine', async () => {
    let printed = '';
    const result = await runDemo({ ...DEMO, out: (text) => (printed += text) });
    expect(printed).toMatch(/embedded ClickHouse/);
    expectReportMatchesTruth(result, printed);
  });
});
