// The InteractionStore's `append` run in a worker thread with its own connection to the catalog
// file, so the projector's synchronous SQLite transactions (~12 ms per 1,000 events) stay off the
// event loop that serves the API. The main thread awaits each reply before it commits the bus
// offsets, so the projector keeps its guarantees: at-least-once delivery, idempotent insert,
// erasure records applied in log order (one worker, one batch at a time).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Event } from '../../domain/event.ts';
import { decodeEvent } from '../../events/bus.ts';
import { whereInLog } from '../../events/log/bus.ts';
import type { EncodedEvent } from '../../events/log/bus.ts';
import type { AppendOptions, AppendReport, InteractionStore } from '../ports.ts';

/**
 * What the main thread sends: events as a structured clone, or, from the embedded log, the
 * records' own bytes. Measured against one JSON string (stringify here, parse there) the clone was
 * as fast; but events from the log are JSON already, and decoding them there and cloning them
 * here cost the event loop ~3 ms per 1,000 events (profiled) that it now spends serving (a memcpy and a
 * transfer instead). The worker decodes them with the log bus's own decodeEvent.
 */
export type AppendRequest = {
  id: number;
  createUnknown: boolean;
} & ({ events: readonly Event[] } | EncodedBatch);

/** Records of the embedded log: payloads back to back in `bytes`, record i ending at `ends[i]`. */
export interface EncodedBatch {
  bytes: Uint8Array;
  ends: Uint32Array;
  /** Each record's log position, for the message of one that is not an Event. */
  offsets: Float64Array;
  dir: string;
}

export type AppendReply = { id: number; report: AppendReport } | { id: number; error: { message: string; stack?: string } };

export interface AppendWorker extends Pick<InteractionStore, 'append'> {
  /** `append` for events the embedded log holds: their bytes go to the worker, which decodes them. */
  appendEncoded(records: readonly EncodedEvent[], options?: AppendOptions): Promise<AppendReport>;
  /** Waits for the batch in flight, then ends the thread and closes its connection. */
  close(): Promise<void>;
}

/**
 * The worker's entry is TypeScript: it loads through tsx, registered inside the worker (a
 * worker does not inherit the loader hooks of the thread that starts it).
 */
function workerSource(): string {
  // require.resolve answers the package's CommonJS build; its ES module build sits beside it.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const entry = new URL('./append-worker.thread.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
}

export function openAppendWorker(path: string): AppendWorker {
  const worker = new Worker(workerSource(), { eval: true, workerData: { path } });
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
      const dir = records[0]?.dir ?? '';
      if (records.some((r) => r.dir !== dir)) return this.append(records.map((r) => decodeEvent(r.payload, whereInLog(r.dir, r.offset))), options);
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
        { id: nextId++, bytes, ends, offsets, dir, createUnknown: options.createUnknown ?? true },
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
