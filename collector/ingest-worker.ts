import { parentPort, workerData } from 'node:worker_threads';
import { createIngest } from './ingest.js';
import type { IngestSettings } from './ingest.js';
import { epochNowMs } from './latency-histogram.js';
import type { IngestTask, IngestAnswer } from './ingest-pool.js';

/** An ingest thread: runs the pipeline on each body it is sent, and answers with the rows. */

/** The records' buffers, each one record's own (prepareRows makes them so; copied if not). */
function transferable(records: Uint8Array[]): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (let i = 0; i < records.length; i++) {
    let record = records[i]!;
    if (record.byteOffset !== 0 || record.byteLength !== record.buffer.byteLength) {
      record = records[i] = new Uint8Array(record);
    }
    buffers.push(record.buffer as ArrayBuffer);
  }
  return buffers;
}
const ingest = createIngest(workerData as IngestSettings);
const port = parentPort!;

port.on('message', (task: IngestTask) => {
  let answer: IngestAnswer;
  const startedAt = epochNowMs();
  try {
    const result = ingest(new Uint8Array(task.body), task.encoding, task.nowMs, task.part);
    answer = { id: task.id, ok: true, result, startedAt, finishedAt: epochNowMs() };
  } catch (error) {
    const e = error as { name?: unknown; message?: unknown; code?: unknown };
    answer = {
      id: task.id,
      ok: false,
      error: {
        name: typeof e.name === 'string' ? e.name : 'Error',
        message: typeof e.message === 'string' ? e.message : String(error),
        code: typeof e.code === 'string' ? e.code : '',
      },
    };
  }
  // The records' memory is handed over, not copied: the main thread appends them as they are.
  port.postMessage(answer, answer.ok ? transferable(answer.result.records) : []);
});
