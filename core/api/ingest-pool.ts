// Threads that prepare POST /v1/events batches (ingest-worker.thread.ts): JSON parse, validation
// and the encoding for the bus (the log's framing; Kafka takes the same records' payloads), ~9 ms of the ~12 ms a 1,000-event batch cost the event loop, which did
// nothing else meanwhile; with two threads, concurrent batches use both cores. The route hands a
// body to the ready thread with the fewest batches in hand, which also looks up the ids already
// stored, and with what comes back only appends and answers. The threads start with the first batch, and until one is
// ready, or once all have failed, the route does the work itself: no request waits for a thread
// to load, and none is lost to one that died.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { EventTypeConfig } from '../domain/event-types.ts';
import { endWorker, typescriptWorker } from '../threads.ts';
import type { PreparedEvents } from './event-batch.ts';
import type { IngestReply, IngestRequest, IngestThreadData } from './ingest-worker.thread.ts';

export interface IngestPool {
  /**
   * The body prepared on a thread, or undefined when it is not a batch the threads prepare (the
   * route's own path answers it), or no thread is ready (the first call starts them).
   */
  prepare(body: Uint8Array): Promise<PreparedEvents | undefined>;
  /** Starts the threads if need be; resolves once each is ready or gone. */
  whenReady(): Promise<void>;
  readonly size: number;
  /** Batches the threads prepared so far. */
  readonly prepared: number;
  /** The same, per thread (empty until the threads start). */
  readonly preparedByThread: readonly number[];
  close(): Promise<void>;
}

export interface IngestPoolOptions {
  /** Default: the cores the process may use, at most 4. */
  threads?: number;
  eventTypes?: readonly EventTypeConfig[];
  /** The catalog file, which the threads read for stored ids (duplicates). */
  catalog?: string;
  /** Where a thread's failure to prepare a batch is told (the route then prepares it); default console.error. */
  onError?: (error: Error) => void;
}

interface Lane {
  worker: Worker;
  pending: Map<number, { resolve: (p: PreparedEvents | undefined) => void }>;
  prepared: number;
  ready: boolean;
  gone: boolean;
  /** Resolves when the thread is ready or gone. */
  settled: Promise<void>;
  exited: Promise<void>;
}

export function defaultIngestThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export function openIngestPool(options: IngestPoolOptions = {}): IngestPool {
  const size = options.threads ?? defaultIngestThreads();
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`ingest threads must be a whole number of at least 1, got ${size}`);
  const data: IngestThreadData = {
    ...(options.eventTypes === undefined ? {} : { eventTypes: options.eventTypes }),
    ...(options.catalog === undefined ? {} : { catalog: options.catalog }),
  };
  let lanes: Lane[] | undefined;
  let nextId = 0;
  let closing = false;

  function startLane(): Lane {
    const worker = typescriptWorker(new URL('./ingest-worker.thread.ts', import.meta.url), data, 'kestrel-ingest');
    let settle: () => void = () => undefined;
    const lane: Lane = { worker, pending: new Map(), prepared: 0, ready: false, gone: false, settled: new Promise((resolve) => { settle = resolve; }), exited: Promise.resolve() };
    // A thread that dies hands its batches back undone: the route prepares them itself.
    const retire = (): void => {
      lane.gone = true;
      settle();
      for (const p of lane.pending.values()) p.resolve(undefined);
      lane.pending.clear();
    };
    worker.on('message', (reply: IngestReply) => {
      if (reply === 'ready') {
        lane.ready = true;
        settle();
        return;
      }
      const p = lane.pending.get(reply.id);
      if (p === undefined) return;
      lane.pending.delete(reply.id);
      if ('error' in reply) {
        (options.onError ?? console.error)(Object.assign(new Error(`ingest thread: ${reply.error.message}`), reply.error.stack === undefined ? {} : { stack: reply.error.stack }));
        p.resolve(undefined);
      } else {
        if (reply.prepared !== undefined) lane.prepared++;
        p.resolve(reply.prepared);
      }
    });
    worker.on('error', retire);
    lane.exited = new Promise((resolve) => worker.once('exit', () => {
      retire();
      resolve();
    }));
    // Idle threads do not keep the process alive.
    worker.unref();
    return lane;
  }

  const start = (): Lane[] => {
    lanes ??= Array.from({ length: size }, startLane);
    return lanes;
  };

  return {
    size,
    prepare(body) {
      if (closing) return Promise.resolve(undefined);
      // Ties go round the threads: under one client at a time every thread takes its share and
      // stays warm, rather than the first taking all and the others meeting load cold (their
      // first batches under four clients were among the slowest of a run).
      const all = start();
      let lane: Lane | undefined;
      for (let n = 0; n < all.length; n++) {
        const l = all[(nextId + n) % all.length];
        if (l !== undefined && l.ready && !l.gone && (lane === undefined || l.pending.size < lane.pending.size)) lane = l;
      }
      if (lane === undefined) return Promise.resolve(undefined);
      const id = nextId++;
      const target = lane;
      return new Promise((resolve) => {
        target.pending.set(id, { resolve });
        // Copied, not transferred: the route keeps the body for its own path.
        target.worker.postMessage({ id, body } satisfies IngestRequest);
      });
    },
    get prepared() {
      return (lanes ?? []).reduce((sum, l) => sum + l.prepared, 0);
    },
    get preparedByThread() {
      return (lanes ?? []).map((l) => l.prepared);
    },
    async whenReady() {
      await Promise.all(start().map((l) => l.settled));
    },
    async close() {
      closing = true;
      await Promise.all((lanes ?? []).map(async (lane) => {
        await Promise.all([...lane.pending.values()].map((p) => new Promise<void>((done) => {
          const { resolve } = p;
          p.resolve = (v) => { resolve(v); done(); };
        })));
        if (!lane.gone) lane.worker.postMessage('close');
        await endWorker(lane.worker, lane.exited, 5_000);
      }));
    },
  };
}
