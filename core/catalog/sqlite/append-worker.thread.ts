// The worker thread behind append-worker.ts: its own connection to the catalog file, the same
// InteractionStore code, one batch at a time in arrival order.
import { parentPort, workerData } from 'node:worker_threads';
import type { Event } from '../../domain/event.ts';
import { decodeEvent, whereEncoded } from '../../events/bus.ts';
import { lowerThisThreadPriority } from '../../threads.ts';
import type { AppendReply, AppendRequest, EncodedBatch } from './append-worker.ts';
import { openSqliteCatalog } from './index.ts';

/** The events of records sent as bytes, decoded as the bus would (same checks, same messages). */
function decodeBatch({ bytes, ends, offsets, source }: EncodedBatch): Event[] {
  const events: Event[] = [];
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i] as number;
    events.push(decodeEvent(bytes.subarray(start, end), whereEncoded(source, offsets[i] as number)));
    start = end;
  }
  return events;
}

const port = parentPort;
if (port === null) throw new Error('append-worker.thread.ts runs as a worker thread: use openAppendWorker()');
lowerThisThreadPriority();
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
      const events = 'events' in message ? message.events : decodeBatch(message);
      reply = { id: message.id, report: await catalog.interactions.append(events, { createUnknown: message.createUnknown }) };
    } catch (error) {
      reply = { id: message.id, error: error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) } };
    }
    port.postMessage(reply);
  });
});
