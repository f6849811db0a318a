// The worker thread behind snapshot-worker.ts: reads the catalog and computes the snapshot's
// catalog data (readCatalogData), then posts it back and exits.
import { parentPort, workerData } from 'node:worker_threads';
import type { CatalogDataInputs } from './snapshot.ts';
import { readCatalogData } from './snapshot.ts';
import type { SnapshotWorkerReply } from './snapshot-worker.ts';

const port = parentPort;
if (port === null) throw new Error('snapshot-worker.thread.ts runs as a worker thread: use readCatalogDataInWorker()');
let reply: SnapshotWorkerReply;
try {
  const data = await readCatalogData(workerData as CatalogDataInputs);
  reply = { data };
} catch (error) {
  reply = { error: error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) } };
}
port.postMessage(reply);
port.close();
