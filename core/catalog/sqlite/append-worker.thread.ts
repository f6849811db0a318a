// The worker thread behind append-worker.ts: its own connection to the catalog file, the same
// InteractionStore code, one batch at a time in arrival order.
import { parentPort, workerData } from 'node:worker_threads';
import type { AppendReply, AppendRequest } from './append-worker.ts';
import { openSqliteCatalog } from './index.ts';

const port = parentPort;
if (port === null) throw new Error('append-worker.thread.ts runs as a worker thread: use openAppendWorker()');
const catalog = openSqliteCatalog((workerData as { path: string }).path);
let queue = Promise.resolve();

port.on('message', (message: AppendRequest | 'close') => {
  queue = queue.then(async () => {
    if (message === 'close') {
      catalog.close();
      port.close();
      return;
    }
    let reply: AppendReply;
    try {
      reply = { id: message.id, report: await catalog.interactions.append(message.events, { createUnknown: message.createUnknown }) };
    } catch (error) {
      reply = { id: message.id, error: error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) } };
    }
    port.postMessage(reply);
  });
});
