// Milvus searches on the serving path, sent without the SDK's search(). Measured against Milvus
// 2.3.5 on the 2-core machine (1,682 64-d items, k = 1,000, eight searches at a time, warm),
// CPU per query in this process / in Milvus:
//  - SDK 2.3.5's search(): 1.9-2.4 / 3.0-3.2 ms. Its retry interceptor JSON-encodes every request
//    and answer for a debug line that the log level then drops, and each hit becomes an object
//    carrying every output field. Encoding the request here and reading ids and scores straight
//    from the decoded answer: 1.0-1.6 ms in this process.
//  - No output fields: a hit's primary key comes back as its id anyway, and asking for the key
//    again as a field cost more on both sides (four queries a request: 0.9-1.2 / 1.9-2.7 ms
//    against the 0.5-0.9 / 1.5-2.1 below).
//  - Queries that arrive while MAX_IN_FLIGHT requests wait on Milvus go together, several query
//    vectors in one request (Milvus takes one filter expression and one limit per request, so
//    only queries with the same expression and about the same k): four a request cost
//    0.5-0.9 / 1.5-2.1 ms a query. A lone query is sent at once, so a quiet server waits for
//    nothing. These calls skip the SDK's retries: a failed search is reported, and serving
//    answers it from the request's exact scores (core/serving/sources.ts).
import { createRequire } from 'node:module';
import { getMetaInterceptor } from '@zilliz/milvus2-sdk-node';
import type { MilvusClient } from '@zilliz/milvus2-sdk-node';
import protobuf from 'protobufjs';
import type { VectorHit } from './vector-index.ts';

/** Requests of one searcher waiting on Milvus at once; later queries queue and go together. */
const MAX_IN_FLIGHT = 2;
/** Query vectors in one request, at most. */
const MAX_BATCH = 16;
/**
 * A request out longer than this stops holding its place among the MAX_IN_FLIGHT, so that one
 * Milvus leaves unanswered (it runs to its deadline, a minute by default) does not hold back the
 * searches queued behind it; serving gave up on it long before (its sources' deadline is 50 ms).
 */
const STALLED_MS = 1_000;
/**
 * Queries whose k differ by up to ~19% (a quarter octave) share a request, asking for the
 * larger k: the extra hits cost less than a request of their own.
 */
const K_BUCKETS_PER_OCTAVE = 4;
const SEARCH_METHOD = '/milvus.proto.milvus.MilvusService/Search';
/** milvus.proto.common.DslType.BoolExprV1 and PlaceholderType.FloatVector. */
const BOOL_EXPR_V1 = 1;
const FLOAT_VECTOR = 101;

interface Codec {
  request: protobuf.Type;
  results: protobuf.Type;
  placeholders: protobuf.Type;
}

let codec: Codec | undefined;

/** The message types, from the proto files the SDK ships (loaded once, ~40 ms). */
function loadCodec(): Codec {
  if (codec !== undefined) return codec;
  const require = createRequire(import.meta.url);
  const root = protobuf.loadSync(require.resolve('@zilliz/milvus2-sdk-node/dist/proto/proto/milvus.proto'));
  codec = {
    request: root.lookupType('milvus.proto.milvus.SearchRequest'),
    results: root.lookupType('milvus.proto.milvus.SearchResults'),
    placeholders: root.lookupType('milvus.proto.common.PlaceholderGroup'),
  };
  return codec;
}

/** The parts of a decoded SearchResults this reads (protobufjs names fields in camelCase). */
interface DecodedResults {
  status?: { errorCode?: number; code?: number; reason?: string };
  results?: {
    scores?: number[];
    topks?: Array<number | { toString(): string }>;
    ids?: { strId?: { data?: string[] } };
  };
}

type GrpcClient = NonNullable<MilvusClient['client']>;

interface Waiting {
  vector: Float32Array;
  k: number;
  resolve(hits: VectorHit[]): void;
  reject(error: unknown): void;
}

interface Group {
  expr: string;
  selective: boolean;
  waiting: Waiting[];
}

export interface MilvusSearcherOptions {
  collection: string;
  /** milvus.proto.common.ConsistencyLevel of every search. */
  consistency: number;
  timeoutMs: number;
  /** The HNSW ef of a request for `k` hits; `selective` = the filter passes few items. */
  efFor(k: number, selective: boolean): number;
}

export class MilvusSearcher {
  readonly #client: GrpcClient;
  readonly #codec = loadCodec();
  // The SDK's own interceptors (metadata, then retry with its debug encoding) are replaced for
  // these calls; the database name is the one metadata entry the SDK would add here (no auth).
  readonly #interceptors = [getMetaInterceptor(() => undefined, [{ dbname: 'default' }])];
  readonly #groups = new Map<string, Group>();
  #inFlight = 0;

  constructor(sdk: MilvusClient, private readonly options: MilvusSearcherOptions) {
    if (sdk.client === undefined) throw new Error('the Milvus client has no gRPC channel');
    this.#client = sdk.client;
  }

  /** The top `k` hits of one query vector among items matching `expr`. */
  search(vector: Float32Array, k: number, expr: string, selective: boolean): Promise<VectorHit[]> {
    return new Promise<VectorHit[]>((resolve, reject) => {
      const key = `${selective ? 's' : 'a'}${Math.ceil(Math.log2(k) * K_BUCKETS_PER_OCTAVE)}|${expr}`;
      let group = this.#groups.get(key);
      if (group === undefined) {
        group = { expr, selective, waiting: [] };
        this.#groups.set(key, group);
      }
      // A copy: a caller may reuse its array once this returns, before the query leaves the queue.
      group.waiting.push({ vector: vector.slice(), k, resolve, reject });
      this.pump();
    });
  }

  /** Several query vectors in one request, sent at once, each answered with up to `k` hits. */
  searchMany(vectors: readonly Float32Array[], k: number, expr: string, selective: boolean): Promise<VectorHit[][]> {
    return this.request(vectors, k, expr, this.options.efFor(k, selective));
  }

  /** Sends the oldest group's queries while fewer than MAX_IN_FLIGHT requests are out. */
  private pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT) {
      const next = this.#groups.entries().next();
      if (next.done === true) return;
      const [key, group] = next.value;
      const batch = group.waiting.splice(0, MAX_BATCH);
      // A group with more left goes to the back, behind the groups that waited as long.
      this.#groups.delete(key);
      if (group.waiting.length > 0) this.#groups.set(key, group);
      this.#inFlight++;
      let held = true;
      const release = (): void => {
        if (!held) return;
        held = false;
        clearTimeout(stalled);
        this.#inFlight--;
        this.pump();
      };
      const stalled = setTimeout(release, STALLED_MS);
      stalled.unref();
      const k = batch.reduce((most, w) => Math.max(most, w.k), 0);
      this.request(batch.map((w) => w.vector), k, group.expr, this.options.efFor(k, group.selective))
        .then(
          (lists) => batch.forEach((w, q) => w.resolve((lists[q] ?? []).slice(0, w.k))),
          (error: unknown) => batch.forEach((w) => w.reject(error)),
        )
        .finally(release);
    }
  }

  private async request(vectors: readonly Float32Array[], k: number, expr: string, ef: number): Promise<VectorHit[][]> {
    const { request, results, placeholders } = this.#codec;
    const { collection } = this.options;
    const message = {
      collectionName: collection,
      dsl: expr,
      dslType: BOOL_EXPR_V1,
      placeholderGroup: placeholders.encode({
        placeholders: [{ tag: '$0', type: FLOAT_VECTOR, values: vectors.map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) }],
      }).finish(),
      outputFields: [],
      searchParams: [
        { key: 'anns_field', value: 'vector' },
        { key: 'topk', value: String(k) },
        { key: 'metric_type', value: 'IP' },
        { key: 'params', value: JSON.stringify({ ef }) },
      ],
      nq: vectors.length,
      consistencyLevel: this.options.consistency,
    };
    return new Promise<VectorHit[][]>((resolve, reject) => {
      this.#client.makeUnaryRequest(
        SEARCH_METHOD,
        (m: typeof message) => Buffer.from(request.encode(m).finish()),
        (bytes: Buffer) => results.decode(bytes) as unknown as DecodedResults,
        message,
        { deadline: Date.now() + this.options.timeoutMs, interceptors: this.#interceptors },
        (error, answer) => {
          if (error !== null || answer === undefined) {
            reject(new Error(`Milvus search '${collection}' failed: ${error?.message ?? 'no answer'}`));
            return;
          }
          try {
            resolve(hitLists(answer, vectors.length, collection));
          } catch (failure) {
            reject(failure);
          }
        },
      );
    });
  }
}

/** The flat answer cut into one list per query by `topks` (hits per query). */
function hitLists(answer: DecodedResults, nq: number, collection: string): VectorHit[][] {
  const status = answer.status;
  const code = status?.code ?? 0;
  const errorCode = status?.errorCode ?? 0;
  if (code !== 0 || errorCode !== 0) {
    throw new Error(`Milvus search '${collection}' failed: ${errorCode || code} ${status?.reason ?? ''}`);
  }
  const data = answer.results;
  const scores = data?.scores ?? [];
  if (scores.length === 0) return Array.from({ length: nq }, () => []);
  const ids = data?.ids?.strId?.data;
  const topks = data?.topks ?? [];
  if (ids === undefined || ids.length !== scores.length || topks.length !== nq) {
    throw new Error(`unexpected Milvus search answer for '${collection}': ${ids?.length ?? 'no'} string ids, ${scores.length} scores, ${topks.length} hit counts for ${nq} queries`);
  }
  const lists: VectorHit[][] = [];
  let at = 0;
  for (const topk of topks) {
    const n = typeof topk === 'number' ? topk : Number(topk.toString());
    const hits: VectorHit[] = new Array<VectorHit>(n);
    for (let j = 0; j < n; j++) hits[j] = { id: ids[at + j] ?? '', score: scores[at + j] ?? 0 };
    lists.push(hits);
    at += n;
  }
  if (at !== ids.length) throw new Error(`unexpected Milvus search answer for '${collection}': hit counts sum to ${at}, ${ids.length} hits`);
  return lists;
}
