// Reads a snapshot's catalog data (snapshot.ts readCatalogData: the catalog read, histories and
// the co-visitation, content and trending signals, ~1 s per 100,000 events) on a worker thread,
// so a refresh never stalls the requests the main thread serves. The result comes back as a
// structured clone: typed arrays, strings and Maps, no classes.
import { typescriptWorker } from '../threads.ts';
import type { CatalogData, CatalogDataInputs } from './snapshot.ts';

export type SnapshotWorkerReply = { data: CatalogData } | { error: { message: string; stack?: string } };

export function readCatalogDataInWorker(inputs: CatalogDataInputs): Promise<CatalogData> {
  return new Promise((resolve, reject) => {
    const worker = typescriptWorker(new URL('./snapshot-worker.thread.ts', import.meta.url), inputs, 'kestrel-snap');
    let settled = false;
    worker.once('message', (reply: SnapshotWorkerReply) => {
      settled = true;
      if ('error' in reply) reject(Object.assign(new Error(reply.error.message), { stack: reply.error.stack }));
      else resolve(reply.data);
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the snapshot worker exited with code ${code} before answering`));
    });
  });
}
