// The InteractionStore's `append` run in a worker thread with its own connection to the catalog
// file, so the projector's synchronous SQLite transactions (~12 ms per 1,000 events) stay off the
// event loop that serves the API. The main thread awaits each reply before it commits the bus
// offsets, so the projector keeps its guarantees: at-least-once delivery, idempotent insert,
// erasure records applied in log order (one worker, one batch at a time).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Event } from '../../domain/event.ts';
import type { AppendOptions, AppendReport, InteractionStore } from '../ports.ts';

/**
 * What the main thread sends. The events go as a structured clone: measured against one JSON
 * string (stringify here, parse there), the clone was as fast or faster and costs less code.
 */
export interface AppendRequest {
  id: number;
  events: readonly Event[];
  createUnknown: boolean;
}

export type AppendReply = { id: number; report: AppendReport } | { id: number; error: { message: string; stack?: string } };

export interface AppendWorker extends Pick<InteractionStore, 'append'> {
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

  return {
    append(events: readonly Event[], options: AppendOptions = {}) {
      if (failed !== undefined) return Promise.reject(failed);
      const id = nextId++;
      return new Promise<AppendReport>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        const request: AppendRequest = { id, events, createUnknown: options.createUnknown ?? true };
        worker.postMessage(request);
      });
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
