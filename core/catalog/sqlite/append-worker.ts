// The InteractionStore's `append` run in a worker thread with its own connection to the catalog
// file, so the projector's synchronous SQLite transactions (~12 ms per 1,000 events) stay off the
// event loop that serves the API. The main thread awaits each reply before it commits the bus
// offsets, so the projector keeps its guarantees: at-least-once delivery, idempotent insert,
// erasure records applied in log order (one worker, one batch at a time).
import type { Event } from '../../domain/event.ts';
import { decodeEvent, whereEncoded } from '../../events/bus.ts';
import type { EncodedEvent } from '../../events/bus.ts';
import { typescriptWorker } from '../../threads.ts';
import type { AppendOptions, AppendReport, InteractionStore } from '../ports.ts';

/**
 * What the main thread sends: events as a structured clone, or, from either bus, the records' own
 * bytes. Measured against one JSON string (stringify here, parse there) the clone was as fast; but
 * events on a bus are JSON already, and decoding them there and cloning them here cost the event
 * loop ~3 ms per 1,000 events (profiled) that it now spends serving (a memcpy and a transfer
 * instead). The worker decodes them with the bus's own decodeEvent.
 */
export type AppendRequest = {
  id: number;
  createUnknown: boolean;
} & ({ events: readonly Event[] } | EncodedBatch);

/** Records of one bus partition: payloads back to back in `bytes`, record i ending at `ends[i]`. */
export interface EncodedBatch {
  bytes: Uint8Array;
  ends: Uint32Array;
  /** Each record's position, for the message of one that is not an Event (see EncodedEvent). */
  offsets: Float64Array;
  source: string;
}

export type AppendReply = { id: number; report: AppendReport } | { id: number; error: { message: string; stack?: string } };

export interface AppendWorker extends Pick<InteractionStore, 'append'> {
  /** `append` for events as the bus holds them: their bytes go to the worker, which decodes them. */
  appendEncoded(records: readonly EncodedEvent[], options?: AppendOptions): Promise<AppendReport>;
  /** Waits for the batch in flight, then ends the thread and closes its connection. */
  close(): Promise<void>;
}

export function openAppendWorker(path: string): AppendWorker {
  const worker = typescriptWorker(new URL('./append-worker.thread.ts', import.meta.url), { path }, 'kestrel-sqlite');
  const pending = new Map<number, { resolve: (r: AppendReport) => void; reject: (e: unknown) => void }>();
  let nextId = 0;
  let failed: unknown;
  let exited = false;
  const failAll = (error: unknown): void => {
    failed = error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.on('message', (reply: AppendReply) => {
    const p = pending.get(reply.id);
    if (p === undefined) return;
    pending.delete(reply.id);
    if ('error' in reply) p.reject(Object.assign(new Error(reply.error.message), { stack: reply.error.stack }));
    else p.resolve(reply.report);
  });
  worker.on('error', failAll);
  const exit = new Promise<void>((resolve) => {
    worker.once('exit', (code) => {
      exited = true;
      failAll(failed ?? new Error(`the catalog append worker for ${path} exited (code ${code})`));
      resolve();
    });
  });

  function send(request: AppendRequest, transfer: ArrayBuffer[] = []): Promise<AppendReport> {
    if (failed !== undefined) return Promise.reject(failed);
    return new Promise<AppendReport>((resolve, reject) => {
      pending.set(request.id, { resolve, reject });
      worker.postMessage(request, transfer);
    });
  }

  return {
    append(events: readonly Event[], options: AppendOptions = {}) {
      return send({ id: nextId++, events, createUnknown: options.createUnknown ?? true });
    },
    appendEncoded(records: readonly EncodedEvent[], options: AppendOptions = {}) {
      const source = records[0]?.source ?? '';
      if (records.some((r) => r.source !== source)) return this.append(records.map((r) => decodeEvent(r.payload, whereEncoded(r.source, r.offset))), options);
      let total = 0;
      for (const r of records) total += r.payload.byteLength;
      // A fresh buffer of its own, transferred: no copy on the way, nothing shared with the log's reads.
      const bytes = new Uint8Array(total);
      const ends = new Uint32Array(records.length);
      const offsets = new Float64Array(records.length);
      let p = 0;
      records.forEach((r, i) => {
        bytes.set(r.payload, p);
        p += r.payload.byteLength;
        ends[i] = p;
        offsets[i] = r.offset;
      });
      return send(
        { id: nextId++, bytes, ends, offsets, source, createUnknown: options.createUnknown ?? true },
        [bytes.buffer, ends.buffer, offsets.buffer],
      );
    },
    async close() {
      await Promise.allSettled([...pending.values()].map((p) => new Promise<void>((resolve) => {
        const { resolve: res, reject } = p;
        p.resolve = (r) => { res(r); resolve(); };
        p.reject = (e) => { reject(e); resolve(); };
      })));
      if (!exited) worker.postMessage('close');
      await exit;
    },
  };
}
