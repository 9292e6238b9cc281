import { parentPort, workerData } from 'node:worker_threads';
import { createIngest } from './ingest.js';
import type { IngestSettings } from './ingest.js';
import type { IngestTask, IngestAnswer } from './ingest-pool.js';

/** An ingest thread: runs the pipeline on each body it is sent, and answers with the rows. */
const ingest = createIngest(workerData as IngestSettings);
const port = parentPort!;

port.on('message', (task: IngestTask) => {
  let answer: IngestAnswer;
  try {
    answer = {
      id: task.id,
      ok: true,
      result: ingest(new Uint8Array(task.body), task.encoding, task.nowMs),
    };
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
  port.postMessage(answer);
});
