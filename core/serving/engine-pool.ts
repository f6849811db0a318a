// Engine threads: serving on more than one core. One event loop runs one request's CPU work at a
// time (~4 ms on ml-100k), so at concurrency 8 a request waits for the ones ahead of it. With
// `engineThreads` N, N worker threads each run a follower ServingHost (host.ts: same registry,
// catalog and index, its own snapshot, sessions and in-memory index) and answer
// /v1/recommendations and /v1/candidates; the main thread keeps HTTP, the data plane, the feature
// log and its own host (the index's owner, /readyz, /similar, /popular), and answers on its own
// engine when no thread is ready (starting, loading, or gone).
//
// A request goes to the ready thread with the fewest in flight. Stage timings come back with
// each answer and reach the main thread's metrics; erasures (GDPR) are sent to every thread.
// A thread that dies fails its requests over to the main engine and is started again.
import type { Worker } from 'node:worker_threads';
import type { Slate } from '../domain/slate.ts';
import { endWorker, typescriptWorker } from '../threads.ts';
import type { EncodedRecommendation, RecommendRequest, StageTimer } from './engine.ts';
import type { ServingHostOptions } from './host.ts';

/** What an engine thread opens: its host's settings (plain data, posted to it as workerData). */
export type EngineThreadOptions = Pick<ServingHostOptions, 'registryRoot' | 'dataDir' | 'eventTypes' | 'ranker' | 'index' | 'config' | 'modelPollMs' | 'refreshMs'> & {
  /** The catalog's SQLite file: the thread reads users' latest events from its own connection. */
  catalogPath: string;
};

/** A stage timer call, replayed on the main thread: [kind, name, value]. */
export type TimerEvent = ['stage' | 'candidates' | 'error', string, number];

export type ToThread =
  | { type: 'recommend'; id: number; userId: string; request: RecommendRequest }
  | { type: 'candidates'; id: number; userId: string; request: RecommendRequest }
  | { type: 'erase'; userId: string; at: number }
  | { type: 'close' };

export type FromThread =
  | { type: 'ready'; version: string | undefined }
  | { type: 'answer'; id: number; value: unknown; timings: TimerEvent[] }
  | { type: 'failed'; id: number; message: string; timings: TimerEvent[] }
  | { type: 'log'; line: string }
  | { type: 'closed' };

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  /** The model version it serves; undefined until it has loaded one. */
  version: string | undefined;
  inFlight: number;
  pending: Map<number, Pending>;
  closed: Promise<unknown>;
}

/** Delay before a thread that died is started again. */
const RESTART_MS = 1000;

export class EnginePool {
  private readonly threads: (Thread | undefined)[];
  private nextId = 0;
  private closing = false;
  private readonly erased: { userId: string; at: number }[] = [];

  constructor(private readonly options: EngineThreadOptions, count: number, private readonly timer?: StageTimer, private readonly log: (line: string) => void = console.error) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`engine threads must be a positive integer, got ${count}`);
    this.threads = Array.from({ length: count }, () => undefined);
    for (let k = 0; k < count; k++) this.start(k);
  }

  /** Engine threads, started or starting. */
  get size(): number {
    return this.threads.length;
  }

  /** Threads that have a model loaded. */
  get ready(): number {
    return this.threads.filter((t) => t?.version !== undefined).length;
  }

  /** Recommendations from the least busy ready thread, as JSON; undefined when none is ready (the caller serves them). */
  recommend(userId: string, request: RecommendRequest): Promise<EncodedRecommendation> | undefined {
    return this.send((id) => ({ type: 'recommend', id, userId, request })) as Promise<EncodedRecommendation> | undefined;
  }

  /** The slate from the least busy ready thread; undefined when none is ready. */
  candidates(userId: string, request: RecommendRequest): Promise<Slate> | undefined {
    return this.send((id) => ({ type: 'candidates', id, userId, request })) as Promise<Slate> | undefined;
  }

  /** GDPR erasure: every thread stops using what its snapshot holds of the user (and threads started later too). */
  eraseUser(userId: string, at: number): void {
    this.erased.push({ userId, at });
    for (const thread of this.threads) thread?.worker.postMessage({ type: 'erase', userId, at } satisfies ToThread);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map(async (thread) => {
      if (thread === undefined) return;
      thread.worker.postMessage({ type: 'close' } satisfies ToThread);
      await endWorker(thread.worker, thread.closed);
    }));
  }

  private send(message: (id: number) => ToThread): Promise<unknown> | undefined {
    let best: Thread | undefined;
    for (const thread of this.threads) {
      if (thread?.version === undefined) continue;
      if (best === undefined || thread.inFlight < best.inFlight) best = thread;
    }
    if (best === undefined) return undefined;
    const thread = best;
    const id = this.nextId++;
    thread.inFlight++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage(message(id));
    });
  }

  private start(slot: number): void {
    const worker = typescriptWorker(new URL('./engine-worker.thread.ts', import.meta.url), this.options, 'kestrel-engine');
    const thread: Thread = { worker, version: undefined, inFlight: 0, pending: new Map(), closed: Promise.resolve() };
    thread.closed = new Promise((resolve) => {
      worker.on('message', (message: FromThread) => {
        if (message.type === 'closed') resolve(undefined);
        else this.receive(thread, message);
      });
    });
    for (const { userId, at } of this.erased) worker.postMessage({ type: 'erase', userId, at } satisfies ToThread);
    worker.on('error', (error) => this.log(`kestrel core: engine thread ${slot + 1} failed: ${error.message}`));
    worker.on('exit', (code) => {
      thread.version = undefined;
      for (const pending of thread.pending.values()) pending.reject(new Error(`engine thread ${slot + 1} exited (code ${code})`));
      thread.pending.clear();
      if (this.threads[slot] === thread) this.threads[slot] = undefined;
      if (this.closing) return;
      this.log(`kestrel core: engine thread ${slot + 1} exited (code ${code}); starting it again in ${RESTART_MS} ms`);
      setTimeout(() => {
        if (!this.closing) this.start(slot);
      }, RESTART_MS).unref();
    });
    this.threads[slot] = thread;
  }

  private receive(thread: Thread, message: FromThread): void {
    switch (message.type) {
      case 'ready':
        thread.version = message.version;
        return;
      case 'log':
        this.log(message.line);
        return;
      case 'answer':
      case 'failed': {
        this.replay(message.timings);
        const pending = thread.pending.get(message.id);
        if (pending === undefined) return;
        thread.pending.delete(message.id);
        thread.inFlight--;
        if (message.type === 'answer') pending.resolve(message.value);
        else pending.reject(new Error(message.message));
        return;
      }
      default:
        return;
    }
  }

  private replay(timings: readonly TimerEvent[]): void {
    const timer = this.timer;
    if (timer === undefined) return;
    for (const [kind, name, value] of timings) {
      if (kind === 'stage') timer.stage(name, value);
      else if (kind === 'candidates') timer.candidates(name, value);
      else timer.sourceError(name);
    }
  }
}
