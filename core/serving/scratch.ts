// Typed arrays that one request works in and is done with by its answer: kept for the next
// request instead of made anew. A typed array over 64 bytes lives outside V8's heap, and a request
// made ~195 KB of them in ~40 arrays (the ranker's dense rows, fusion's slots, MMR's embeddings
// and the scores of every item the largest; the ranker's first layer, 256 KB, already had a buffer
// of its own, now one of these). Freeing them falls to V8's helper threads, which on
// a machine whose cores the engine threads already fill wait for a core and take it from the
// requests. With the largest taken from here (~29 KB a request left), `kestrel serve
// --engine-threads 2` under wrk c8 on the 2-core machine, alternated with the parent (ml-100k,
// 15 s runs): V8's helper threads 0.15–0.21 → 0.11–0.14 ms of CPU per request (8 pairs); p99
// better in 5 of 6 pairs (medians 33.7 → 28.5 ms), though the total CPU per request moved within
// this VM's noise; answers byte-identical for 300 users.
//
// Each request takes its own RequestScratch and gives it back after its answer is built, so
// requests that interleave (an engine waits on Milvus, or on an asynchronous ranker) never share
// one. Nothing from a scratch may outlive the request: answers copy what they keep.

import type { ArraySource } from '../domain/arrays.ts';

/** Zero-filled arrays by name, each the length asked: the same name twice in one request is the same memory. */
export class RequestScratch implements ArraySource {
  readonly #float32 = new Map<string, Float32Array>();
  readonly #float64 = new Map<string, Float64Array>();
  readonly #int32 = new Map<string, Int32Array>();

  float32(name: string, length: number): Float32Array {
    return zeroed(this.#float32, name, length, (n) => new Float32Array(n));
  }

  float64(name: string, length: number): Float64Array {
    return zeroed(this.#float64, name, length, (n) => new Float64Array(n));
  }

  int32(name: string, length: number): Int32Array {
    return zeroed(this.#int32, name, length, (n) => new Int32Array(n));
  }
}

/** Room for 25% more than asked when an array grows, so that lengths that vary a little (the fused candidates) settle on one array. */
const GROWTH = 1.25;

function zeroed<T extends Float32Array | Float64Array | Int32Array>(kept: Map<string, T>, name: string, length: number, make: (n: number) => T): T {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`scratch array '${name}' needs a whole length ≥ 0, got ${length}`);
  let array = kept.get(name);
  if (array === undefined || array.length < length) {
    array = make(Math.ceil(length * GROWTH));
    kept.set(name, array);
    return array.subarray(0, length) as T;
  }
  const view = array.subarray(0, length) as T;
  view.fill(0);
  return view;
}

/** Scratches kept between requests, at most this many (more are made while more requests overlap, then dropped). */
const KEPT = 8;

export class ScratchPool {
  readonly #free: RequestScratch[] = [];

  take(): RequestScratch {
    return this.#free.pop() ?? new RequestScratch();
  }

  /** Gives a scratch back once its request is done with every array it handed out. */
  give(scratch: RequestScratch): void {
    if (this.#free.length < KEPT && !this.#free.includes(scratch)) this.#free.push(scratch);
  }

  /** Scratches waiting to be taken. */
  get free(): number {
    return this.#free.length;
  }
}
