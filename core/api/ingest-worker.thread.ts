// An ingest thread (ingest-pool.ts): prepares POST /v1/events batch bodies with the same schema
// the route validates with, and sends back the fresh events encoded for the bus (publishFramed).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { storedEventIds } from '../catalog/sqlite/interactions.ts';
import type { EventTypeConfig } from '../domain/event-types.ts';
import { eventFastPath, eventInputSchema } from '../domain/schemas.ts';
import { prepareEventBatch } from './event-batch.ts';
import type { PreparedEvents } from './event-batch.ts';

export interface IngestThreadData {
  eventTypes?: readonly EventTypeConfig[];
  /** The catalog file, read here for the ids already stored (duplicates); without it, none are. */
  catalog?: string;
}

export interface IngestRequest {
  id: number;
  body: Uint8Array;
}

/** 'ready' once, when the thread has loaded; then one reply per request. */
export type IngestReply =
  | 'ready'
  | { id: number; prepared: PreparedEvents | undefined }
  | { id: number; error: { message: string; stack?: string } };

const port = parentPort;
if (port === null) throw new Error('ingest-worker.thread.ts runs as a worker thread: use openIngestPool()');
const { eventTypes, catalog } = workerData as IngestThreadData;
const schema = eventInputSchema({ ...(eventTypes === undefined ? {} : { eventTypes }), now: Date.now });
const fast = eventFastPath(schema);
// Read-only, WAL: sees what the projector committed, as the main thread's connection does.
const db = catalog === undefined ? undefined : new Database(catalog, { readonly: true, fileMustExist: true });
const storedIds = db === undefined ? undefined : storedEventIds(db);

port.on('message', (message: IngestRequest | 'close') => {
  if (message === 'close') {
    db?.close();
    port.close();
    return;
  }
  let reply: IngestReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const prepared = prepareEventBatch(message.body, schema, fast, storedIds);
    if (prepared !== undefined) {
      // A small block may sit in Buffer's shared pool: copy it out rather than detach the pool.
      const { records } = prepared;
      if (records.byteOffset !== 0 || records.byteLength !== records.buffer.byteLength) prepared.records = records.slice();
      transfer.push(prepared.records.buffer as ArrayBuffer, prepared.ends.buffer as ArrayBuffer);
    }
    reply = { id: message.id, prepared };
  } catch (error) {
    reply = { id: message.id, error: error instanceof Error ? { message: error.message, ...(error.stack === undefined ? {} : { stack: error.stack }) } : { message: String(error) } };
  }
  port.postMessage(reply, transfer);
});
port.postMessage('ready' satisfies IngestReply);
