// The serving engine of one model version: user tower, item tower and ranker sessions, the vector
// index of its item embeddings, and the current catalog snapshot. A request runs
//
//   history  the snapshot's positives + the user's events since it (read per request)
//   vector   user tower on that history (its weights from user_tower.onnx, run in TypeScript)
//   retrieve every source under its quota and timeout, side by side (sources.ts)
//   fuse     weighted reciprocal-rank fusion, de-duplicated, filtered
//   rank     the Wide&Deep ranker (ONNX or WebGPU) on features from training's own feature code
//   rerank   multi-objective score + freshness, MMR over the item embeddings, business rules
//
// and reports each stage's time to the metrics. `candidates` stops after ranking and hands the
// edge a slate (core/domain/slate.ts), which re-ranks it per request itself.

import type { Event } from '../domain/event.ts';
import type { EventTypeConfig } from '../domain/event-types.ts';
import { fusedOf, quotaMerge, reciprocalRankFusion, reciprocalRankFusionOf } from '../domain/fusion.ts';
import { encodeServed } from './feature-log.ts';
import type { FusedCandidate, SourceColumns, SourceList } from '../domain/fusion.ts';
import { mmr } from '../domain/mmr.ts';
import type { WasmFirstLayer, WasmReranker } from '../../wasm/index.ts';
import { applyRules } from '../domain/rules.ts';
import type { BusinessRules } from '../domain/rules.ts';
import type { Slate } from '../domain/slate.ts';
import type { InteractionStore } from '../catalog/ports.ts';
import { compileFilter } from '../retrieval/vector-index.ts';
import type { AttributePredicates, VectorFilter, VectorIndex } from '../retrieval/vector-index.ts';
import type { FactoredRanker, ItemParts, SummedRows } from '../ranking/factored.ts';
import type { Ranker } from '../ranking/ranker.ts';
import { forwardNetwork } from '../../training/models/forward.ts';
import type { NetworkSpec } from '../../training/models/spec.ts';
import { DENSE_FEATURES, DENSE_SIZE } from '../../training/features/feature-state.ts';
import { combineLogits, OBJECTIVES } from '../../training/ranker/objectives.ts';
import { UserInputs } from '../../training/two-tower/inputs.ts';
import { row } from '../../training/data/dataset.ts';
import { categoriesOf, embeddingOf } from './snapshot.ts';
import type { ServingSnapshot } from './snapshot.ts';
import {
  coVisitationSource, contentSource, descendingTop, freshSource, itemItemSource, popularSource, trendingSource, twoTowerSource, withTimeout,
} from './sources.ts';
import type { Candidates, RetrievalContext, RetrievalSource, Scored } from './sources.ts';
import { ScratchPool } from './scratch.ts';
import type { RequestScratch } from './scratch.ts';

export interface EngineConfig {
  /** Candidates each source may contribute. A source with quota 0 is not run. */
  quotas: Readonly<Record<string, number>>;
  /** Per-source deadline, ms. */
  sourceTimeoutMs: number;
  /**
   * How source lists merge: `rrf`, weighted reciprocal-rank fusion (Cormack 2009), or `quota`, a
   * round-robin that takes each source's best until its quota (the quotas above).
   */
  fusion: 'rrf' | 'quota';
  /** Reciprocal-rank fusion: rank constant and per-source weights. */
  fusionK: number;
  fusionWeights: Readonly<Record<string, number>>;
  /** Candidates ranked per request at most (after fusion). */
  maxCandidates: number;
  /** MMR relevance weight in [0, 1]; 1 turns diversity off. */
  mmrLambda: number;
  /** Added to the ranking score × the item's freshness (0..1). */
  freshnessWeight: number;
  rules: BusinessRules;
  /** Events of these types make an item "consumed" (not recommended again). Default: every type with a non-zero weight. */
  consumedTypes?: readonly string[];
  /** How long the edge may serve a slate. */
  slateTtlSeconds: number;
  /**
   * Catalogs up to this many items get the model's scores of every item per request; larger ones
   * score only the candidates, z-scored with statistics from the embeddings' moments (the same
   * values, see scores.ts). Default 150,000 with the embedded index, 50,000 with Milvus
   * (snapshot.ts says why).
   */
  exactScoresUpTo?: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  quotas: { 'two-tower': 400, 'item-item': 200, 'co-visitation': 150, content: 100, trending: 100, fresh: 50, popular: 0 },
  sourceTimeoutMs: 50,
  fusion: 'rrf',
  fusionK: 60,
  fusionWeights: { 'two-tower': 1, 'item-item': 1, 'co-visitation': 0.7, content: 0.5, trending: 0.5, fresh: 0.3, popular: 0.5 },
  maxCandidates: 1000,
  mmrLambda: 0.85,
  freshnessWeight: 0,
  rules: {},
  slateTtlSeconds: 300,
};

/** For users the engine knows nothing about: these sources, fused, and no ranker. */
const ANONYMOUS_QUOTAS: Readonly<Record<string, number>> = { trending: 200, popular: 200, fresh: 50 };

export interface StageTimer {
  /** Seconds a stage took: retrieval:<source>, fusion, features, ranking, reranking, total. */
  stage(stage: string, seconds: number): void;
  candidates(source: string, count: number): void;
  sourceError(source: string): void;
}

export interface EngineParts {
  version: string;
  /** MMR on the WASM re-rank kernel; without it, core/domain/mmr.ts in TypeScript. */
  reranker?: WasmReranker;
  /** The user tower's network, read from user_tower.onnx (run per request in TypeScript). */
  userTower: NetworkSpec;
  /** An adapter opened on `factored.spec`: the ranker's layers after the first, on each row's first-layer output. */
  ranker: Ranker;
  factored: FactoredRanker;
  /** A fresh first-layer kernel per snapshot (its item shares live in that instance's memory); without it, firstLayerRowsReference. */
  firstLayer?: () => WasmFirstLayer;
  index: VectorIndex;
  interactions: InteractionStore;
  eventTypes: readonly EventTypeConfig[];
  config: EngineConfig;
  timer?: StageTimer;
}

export interface RecommendRequest {
  n: number;
  requestId: string;
  /** Only items in one of these categories. */
  categories?: readonly string[];
  /** Never items in any of these categories. */
  excludeCategories?: readonly string[];
  /** Only items whose attributes match (every name; any of its values); pushed down to the vector index. */
  attributes?: AttributePredicates;
  /** Never these item ids. */
  exclude?: readonly string[];
  explain?: boolean;
}

export interface RecommendedItem {
  id: string;
  score: number;
  sources: string[];
  categories: string[];
  explain?: {
    /** The raw dense features the ranker saw. */
    features: Record<string, number>;
    /** Score change when the feature takes the mean of this request's candidates instead (ablation). */
    contributions: Record<string, number>;
    /** Each source's own score and the fusion score. */
    retrieval: Record<string, number>;
  };
}

export interface SourceReport {
  candidates: number;
  ms: number;
  /** Why the source gave nothing (or only its fallback): its error, a timeout, or that it is skipped while failing. */
  error?: string;
  /** What answered instead of the failed source, when something could. */
  fallback?: string;
}

/** Failures in a row after which a source is skipped for a while. */
const BREAKER_FAILURES = 3;
/** The first pause; each failure of the try after it doubles it, up to BREAKER_MAX_MS. */
const BREAKER_MIN_MS = 1_000;
const BREAKER_MAX_MS = 30_000;

/**
 * Per source, failures in a row (errors and timeouts). After BREAKER_FAILURES a source is skipped
 * for a pause (1 s, doubling to 30 s while the try after it fails too): while Milvus is away, a
 * request then does not wait out the two-tower source's deadline (50 ms) each time. One success
 * forgets the failures.
 */
class SourceBreaker {
  private readonly failing = new Map<string, { failures: number; until: number; last: string }>();

  /** Why `source` is skipped at time `t` (ms, performance.now), or undefined when it runs. */
  skips(source: string, t: number): string | undefined {
    const state = this.failing.get(source);
    if (state === undefined || t >= state.until) return undefined;
    return `skipped after ${state.failures} failures in a row (the last: ${state.last}); tried again in ${Math.ceil((state.until - t) / 1000)} s`;
  }

  failed(source: string, message: string, t: number): void {
    const state = this.failing.get(source) ?? { failures: 0, until: 0, last: '' };
    state.failures++;
    state.last = message;
    if (state.failures >= BREAKER_FAILURES) state.until = t + Math.min(BREAKER_MAX_MS, BREAKER_MIN_MS * 2 ** (state.failures - BREAKER_FAILURES));
    this.failing.set(source, state);
  }

  succeeded(source: string): void {
    if (this.failing.size > 0) this.failing.delete(source);
  }
}

export interface RecommendResponse {
  requestId: string;
  userId: string;
  modelVersion: string;
  /** `personal`: ranked for this user; `anonymous`: popular, trending and fresh items (no history). */
  mode: 'personal' | 'anonymous';
  items: RecommendedItem[];
  sources: Record<string, SourceReport>;
}

/** What the feature log keeps of a served request (the training join reads it). */
export interface ServedFeatures {
  requestId: string;
  userId: string;
  modelVersion: string;
  at: number;
  features: readonly string[];
  items: { item: string; position: number; score: number; dense: number[]; sources: string[] }[];
}

/**
 * A recommendation as it leaves the engine: the response body and the served-features record,
 * both JSON text. An engine thread sends these two strings to the main thread (a structured clone
 * of the objects, ~120 µs, cost more than writing them as JSON, ~70, and the main thread would
 * then write them as JSON too).
 */
export interface EncodedRecommendation {
  /** JSON of the RecommendResponse. */
  body: string;
  served: EncodedServed;
}

/** A ServedFeatures record as one line of the served-features log. */
export interface EncodedServed {
  /** ServedFeatures.at: which day's file the line goes to. */
  at: number;
  /**
   * JSON of the ServedFeatures and a newline, as UTF-8, in an ArrayBuffer of its own: an engine
   * thread hands it over without a copy, and the log appends it without encoding it again.
   */
  bytes: Uint8Array;
}

export function encodeRecommendation({ response, served }: { response: RecommendResponse; served: ServedFeatures }): EncodedRecommendation {
  return { body: JSON.stringify(response), served: encodeServed(served) };
}

interface Ranked {
  items: Int32Array;
  scores: Float32Array;
  /**
   * The fused candidate of `items[k]` (item indexes of the snapshot's dataset), built when asked
   * for: a request asks for the few it answers with. Reads the request's scratch, so only while
   * the request holds it.
   */
  fused(k: number): FusedCandidate<number> | undefined;
  rows?: SummedRows;
  /** Row of each ranked item in `rows`. */
  rowOf?: Int32Array;
  user: number;
  mode: RecommendResponse['mode'];
  sources: Record<string, SourceReport>;
}

const now = () => performance.now();

/** Users whose user-tower vector an engine keeps (the oldest goes first): ~0.5 KB each. */
const VECTOR_MEMO_USERS = 20_000;

function sameInts(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** The user's latest events read per request, on top of the snapshot. */
const RECENT_EVENTS = 200;

export class ServingEngine {
  private snapshotRef: ServingSnapshot;
  private readonly sources: RetrievalSource[];
  private readonly consumed: Set<string>;
  /** The weight of each event type. */
  private readonly weights: Map<string, number>;
  /** Per item, historyOf's marks (SEEN, CONSUMED); all 0 between its calls. */
  private itemMarks = new Uint8Array(0);
  /** Users erased while this engine serves (the snapshot learns of them at its next refresh). */
  private readonly erasedLive = new Map<string, number>();
  private inFlight = 0;
  private idle: (() => void) | undefined;
  /** The ranker's item parts per snapshot (its vocabulary and item categories), filled as items are ranked. */
  private readonly itemParts = new WeakMap<ServingSnapshot, ItemParts>();
  private readonly breaker = new SourceBreaker();
  /** Each request's working arrays, given back once its answer is built (scratch.ts). */
  private readonly scratches = new ScratchPool();
  /** User-tower vectors of the current snapshot's users, kept with the history they came from. */
  private vectors: { snapshot: ServingSnapshot; byUser: Map<number, { recent: Int32Array; vector: Float32Array }> } | undefined;

  constructor(private readonly parts: EngineParts, snapshot: ServingSnapshot) {
    this.snapshotRef = snapshot;
    this.sources = [twoTowerSource(parts.index), itemItemSource, coVisitationSource, contentSource, trendingSource, freshSource, popularSource];
    this.consumed = consumedTypes(parts.config, parts.eventTypes);
    this.weights = new Map(parts.eventTypes.map((t) => [t.name, t.weight]));
  }

  get version(): string {
    return this.parts.version;
  }

  get snapshot(): ServingSnapshot {
    return this.snapshotRef;
  }

  get index(): VectorIndex {
    return this.parts.index;
  }

  /** Swaps in a newer snapshot; requests already running finish on the one they started with. */
  replaceSnapshot(snapshot: ServingSnapshot): void {
    this.snapshotRef = snapshot;
  }

  /**
   * Stops using what the snapshot and the model hold of an erased user: from now on the user is
   * served as a new one (no snapshot history, the model's out-of-vocabulary id). Returns how
   * many of the user's items the snapshot held.
   */
  forget(userId: string, at: number): number {
    this.erasedLive.set(userId, at);
    const u = this.snapshotRef.dataset.userIndex.get(userId);
    const kept = this.vectors?.snapshot.dataset.userIndex.get(userId);
    if (kept !== undefined) this.vectors?.byUser.delete(kept);
    return u === undefined ? 0 : row(this.snapshotRef.consumed, u).length;
  }

  /**
   * The user's index in the snapshot, or −1 when it must not be used: unknown, or erased after
   * the model was trained (its id row and the snapshot's rows predate the erasure).
   */
  private userIndexOf(snapshot: ServingSnapshot, userId: string): number {
    const u = snapshot.dataset.userIndex.get(userId);
    if (u === undefined) return -1;
    const erased = this.erasedLive.get(userId) ?? snapshot.erasedAt.get(userId);
    if (erased !== undefined && snapshot.model.manifest.createdAt <= erased) return -1;
    return u;
  }

  /** Runs `work` counted as in flight, so `drain` can wait for it. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
    }
  }

  /** Resolves when no request runs on this engine. */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.idle = () => {
        this.idle = undefined;
        resolve();
      };
    });
  }

  async recommend(userId: string, request: RecommendRequest): Promise<{ response: RecommendResponse; served: ServedFeatures }> {
    const t0 = now();
    const snapshot = this.snapshotRef;
    const scratch = this.scratches.take();
    try {
      return await this.recommendWith(scratch, snapshot, t0, userId, request);
    } finally {
      this.scratches.give(scratch);
    }
  }

  private async recommendWith(scratch: RequestScratch, snapshot: ServingSnapshot, t0: number, userId: string, request: RecommendRequest): Promise<{ response: RecommendResponse; served: ServedFeatures }> {
    const ranked = await this.rankFor(snapshot, userId, request, request.n * 4, scratch);
    const t1 = now();
    const picked = this.rerank(snapshot, ranked, request.n, scratch);
    this.parts.timer?.stage('reranking', (now() - t1) / 1000);
    const items: RecommendedItem[] = [];
    const served: ServedFeatures = { requestId: request.requestId, userId, modelVersion: this.version, at: Date.now(), features: DENSE_FEATURES, items: [] };
    const { dataset } = snapshot;
    let contributions: Float32Array | undefined;
    if (request.explain === true && ranked.rows && ranked.rowOf) contributions = await this.contributions(snapshot, ranked, picked, scratch);
    picked.forEach((k, position) => {
      const item = ranked.items[k] ?? 0;
      const fused = ranked.fused(k);
      const id = dataset.itemIds[item] ?? '';
      const out: RecommendedItem = { id, score: round(ranked.scores[k] ?? 0), sources: fused?.sources ?? [], categories: categoriesOf(dataset, item) };
      const r = ranked.rowOf?.[k];
      const dense: number[] = [];
      if (ranked.rows && r !== undefined) for (let f = 0; f < DENSE_SIZE; f++) dense.push(round(ranked.rows.dense[r * DENSE_SIZE + f] ?? 0));
      if (request.explain === true) {
        out.explain = {
          features: Object.fromEntries(DENSE_FEATURES.map((name, f) => [name, dense[f] ?? 0])),
          contributions: Object.fromEntries(DENSE_FEATURES.map((name, f) => [name, round(contributions?.[position * DENSE_SIZE + f] ?? 0)])),
          retrieval: { ...(fused?.sourceScores ?? {}), fusion: round(fused?.score ?? 0) },
        };
      }
      items.push(out);
      served.items.push({ item: id, position, score: out.score, dense, sources: out.sources });
    });
    this.parts.timer?.stage('total', (now() - t0) / 1000);
    return {
      response: { requestId: request.requestId, userId, modelVersion: this.version, mode: ranked.mode, items, sources: ranked.sources },
      served,
    };
  }

  /** The slate for the edge: the top `n` ranked candidates with compact embeddings, before MMR and rules (the edge applies those). */
  async candidates(userId: string, request: RecommendRequest): Promise<Slate> {
    const t0 = now();
    const snapshot = this.snapshotRef;
    const scratch = this.scratches.take();
    try {
      return await this.candidatesWith(scratch, snapshot, t0, userId, request);
    } finally {
      this.scratches.give(scratch);
    }
  }

  private async candidatesWith(scratch: RequestScratch, snapshot: ServingSnapshot, t0: number, userId: string, request: RecommendRequest): Promise<Slate> {
    const ranked = await this.rankFor(snapshot, userId, request, request.n, scratch);
    const { dataset } = snapshot;
    const slate: Slate = {
      version: 1, userId, modelVersion: this.version, createdAt: Date.now(), ttlSeconds: this.parts.config.slateTtlSeconds,
      dim: snapshot.dim, requestId: request.requestId, candidates: [],
    };
    const count = Math.min(request.n, ranked.items.length);
    for (let k = 0; k < count; k++) {
      const item = ranked.items[k] ?? 0;
      slate.candidates.push({
        item: dataset.itemIds[item] ?? '', score: round(ranked.scores[k] ?? 0), categories: categoriesOf(dataset, item),
        sources: ranked.fused(k)?.sources ?? [], embedding: embeddingOf(snapshot, item).slice(),
      });
    }
    this.parts.timer?.stage('total', (now() - t0) / 1000);
    return slate;
  }

  /** Items like `itemId`: ANN over its embedding fused with its co-visitation neighbours. */
  async similar(itemId: string, n: number): Promise<{ id: string; score: number; sources: string[]; categories: string[] }[] | undefined> {
    const snapshot = this.snapshotRef;
    const { dataset } = snapshot;
    const item = dataset.itemIndex.get(itemId);
    if (item === undefined) return undefined;
    const excluded = snapshot.blocked.slice();
    excluded[item] = 1;
    const hits = await this.parts.index.search(embeddingOf(snapshot, item), n + 1, { excludeIds: [itemId] });
    const ann: Scored[] = [];
    for (const hit of hits) {
      const i = dataset.itemIndex.get(hit.id);
      if (i !== undefined && excluded[i] !== 1) ann.push({ item: i, score: hit.score });
    }
    const { neighbours, weights } = snapshot.signals.coVisitation;
    const co: Scored[] = [];
    for (let e = neighbours.offsets[item] ?? 0; e < (neighbours.offsets[item + 1] ?? 0) && co.length < n; e++) {
      const j = neighbours.indices[e] ?? 0;
      if (excluded[j] !== 1) co.push({ item: j, score: weights[e] ?? 0 });
    }
    const fused = reciprocalRankFusion([{ source: 'two-tower', candidates: ann }, { source: 'co-visitation', candidates: co }], { k: this.parts.config.fusionK });
    return fused.slice(0, n).map((f) => ({
      id: dataset.itemIds[f.item] ?? '', score: round(f.score), sources: f.sources, categories: categoriesOf(dataset, f.item),
    }));
  }

  /** Popular items (time-decayed: trending), optionally in one category. */
  popular(n: number, category?: string): { id: string; score: number; categories: string[] }[] | undefined {
    const snapshot = this.snapshotRef;
    const { dataset, signals } = snapshot;
    let list = signals.trending.items;
    if (category !== undefined) {
      const c = dataset.categoryNames.indexOf(category);
      if (c < 0) return undefined;
      list = signals.trending.byCategory[c] ?? new Int32Array(0);
    }
    const out: { id: string; score: number; categories: string[] }[] = [];
    for (let k = 0; k < list.length && out.length < n; k++) {
      const i = list[k] ?? 0;
      if (snapshot.recommendable[i] === 1) out.push({ id: dataset.itemIds[i] ?? '', score: round(signals.trending.score[i] ?? 0), categories: categoriesOf(dataset, i) });
    }
    return out;
  }

  /** The ranked candidates of one request; its arrays (rows, fused candidates) live in `scratch` until the request gives it back. */
  private async rankFor(snapshot: ServingSnapshot, userId: string, request: RecommendRequest, keep: number, scratch: RequestScratch): Promise<Ranked> {
    const { dataset } = snapshot;
    const timer = this.parts.timer;
    const tHistory = now();
    const user = this.userIndexOf(snapshot, userId);
    // The snapshot has everything up to its clock; the latest events cover what came since: for a
    // user it knows, only those stored since it was read (usually none), else all of theirs.
    const recent = user >= 0
      ? await this.parts.interactions.userEventsSince(userId, { seq: snapshot.lastSeq, timestamp: snapshot.clock - 1 }, RECENT_EVENTS)
      : await this.parts.interactions.userEvents(userId, { limit: RECENT_EVENTS });
    const { history, consumed } = this.historyOf(snapshot, user, recent);
    timer?.stage('history', (now() - tHistory) / 1000);
    const excluded = snapshot.blocked.slice();
    for (const i of consumed) excluded[i] = 1;
    for (const id of request.exclude ?? []) {
      const i = dataset.itemIndex.get(id);
      if (i !== undefined) excluded[i] = 1;
    }
    let categories: number[] | undefined;
    if (request.categories !== undefined && request.categories.length > 0) {
      categories = request.categories.map((name) => dataset.categoryNames.indexOf(name)).filter((c) => c >= 0);
      const allowed = new Set(categories);
      for (let i = 0; i < excluded.length; i++) {
        if (excluded[i] === 1) continue;
        if (!row(dataset.itemCategories, i).some((c) => allowed.has(c))) excluded[i] = 1;
      }
    }
    if (request.excludeCategories !== undefined && request.excludeCategories.length > 0) {
      const banned = new Set(request.excludeCategories.map((name) => dataset.categoryNames.indexOf(name)).filter((c) => c >= 0));
      if (banned.size > 0) {
        for (let i = 0; i < excluded.length; i++) if (excluded[i] !== 1 && row(dataset.itemCategories, i).some((c) => banned.has(c))) excluded[i] = 1;
      }
    }
    const wanted = request.attributes;
    if (wanted !== undefined && Object.keys(wanted).length > 0) {
      const keep = compileFilter({ excludeHidden: false, attributes: wanted });
      for (let i = 0; i < excluded.length; i++) {
        if (excluded[i] === 1) continue;
        const attributes = snapshot.attributes[i];
        if (!keep({ id: '', ...(attributes ? { attributes } : {}) })) excluded[i] = 1;
      }
    }
    const filter: VectorFilter = {
      excludeHidden: true,
      ...(wanted !== undefined && Object.keys(wanted).length > 0 ? { attributes: wanted } : {}),
      ...(request.categories !== undefined && request.categories.length > 0 ? { categoriesAny: request.categories } : {}),
      ...(request.excludeCategories !== undefined && request.excludeCategories.length > 0 ? { categoriesNone: request.excludeCategories } : {}),
      excludeIds: idsOf(dataset.itemIds, consumed).concat(request.exclude ?? []),
    };
    const anonymous = history.length === 0 && (user < 0 || user >= snapshot.pipeline.towerInputs.users);
    const context: RetrievalContext = { snapshot, user, history, excluded, filter, ...(categories ? { categories } : {}) };
    let vector: Float32Array | undefined;
    const featureUser = user >= 0 ? user : dataset.userIds.length;
    let generated: { tt?: Float32Array; products?: Float32Array; cv: Float32Array; scores?: { tt(item: number): number } } | undefined;
    if (!anonymous) {
      const tTower = now();
      vector = this.userVector(snapshot, user, history);
      context.vector = vector;
      timer?.stage('user-tower', (now() - tTower) / 1000);
      // The model's scores of every item (two-tower dot products and item-item sums, z-scored as
      // the ranker saw them in training): once per request, kept across the awaits below.
      const tScores = now();
      const { generator } = snapshot;
      if (snapshot.moments === undefined) {
        generator.retrieve(featureUser, history, vector, 0);
        const copy = (name: string, from: Float32Array) => {
          const to = scratch.float32(name, from.length);
          to.set(from);
          return to;
        };
        generated = { tt: copy('scores.tt', generator.tt), products: copy('scores.products', generator.innerProducts), cv: copy('scores.cv', generator.cv) };
      } else {
        // A large catalog: item-item scores over the model's subset only, two-tower statistics from
        // the moments (CandidateGenerator.zScores, as training computes them).
        const scores = generator.zScores(history, vector, snapshot.moments);
        const cv = new Float32Array(dataset.itemIds.length).fill(-Infinity);
        for (const item of generator.coVisitation.subset.items) cv[item] = scores.cv(item);
        generated = { cv, scores };
      }
      context.itemItemScores = generated.cv;
      if (generated.tt) context.twoTowerScores = generated.tt;
      if (generated.products) context.twoTowerInnerProducts = generated.products;
      timer?.stage('scores', (now() - tScores) / 1000);
    }
    const quotas = anonymous ? ANONYMOUS_QUOTAS : this.parts.config.quotas;
    const reports: Record<string, SourceReport> = {};
    // Sources run side by side: an index search waits on the network while the in-process sources
    // compute. A source's time is its own synchronous work plus any wait that outlasted the
    // others' (so one source's time does not include the next one's).
    const started = this.sources.map((source) => {
      const quota = quotas[source.name] ?? 0;
      if (quota <= 0) return undefined;
      const t = now();
      const skipped = this.breaker.skips(source.name, t);
      const work = skipped !== undefined
        ? Promise.reject(new Error(skipped))
        : withTimeout(source.retrieve(context, quota), this.parts.config.sourceTimeoutMs, `source ${source.name}`);
      return { source, quota, work, syncMs: now() - t, tried: skipped === undefined };
    });
    const allStarted = now();
    const lists = await Promise.all(started.map(async (entry) => {
      if (entry === undefined) return undefined;
      const { source, quota, work, syncMs, tried } = entry;
      try {
        const found = await work;
        const ms = syncMs + Math.max(0, now() - allStarted);
        this.breaker.succeeded(source.name);
        reports[source.name] = { candidates: found.items.length, ms: round(ms) };
        timer?.stage(`retrieval:${source.name}`, ms / 1000);
        timer?.candidates(source.name, found.items.length);
        return toColumns(source.name, found);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (tried) this.breaker.failed(source.name, message, now());
        timer?.sourceError(source.name);
        const fallback = source.fallback;
        const found = fallback?.retrieve(context, quota);
        const ms = round(syncMs + Math.max(0, now() - allStarted));
        if (fallback === undefined || found === undefined) {
          reports[source.name] = { candidates: 0, ms, error: message };
          return undefined;
        }
        reports[source.name] = { candidates: found.items.length, ms, error: message, fallback: fallback.name };
        timer?.candidates(source.name, found.items.length);
        return toColumns(source.name, found);
      }
    }));
    const tFusion = now();
    const present = lists.filter((l): l is SourceColumns<number> => l !== undefined);
    const { config } = this.parts;
    // Fused in typed arrays: candidate objects only for the items the request keeps.
    const fused = config.fusion === 'quota'
      ? fusedOf(quotaMerge(present.map(toList), { quotas, total: config.maxCandidates }))
      : reciprocalRankFusionOf(present, { k: config.fusionK, weights: config.fusionWeights, arrays: scratch });
    const items = new Int32Array(Math.min(fused.items.length, config.maxCandidates));
    for (let k = 0; k < items.length; k++) items[k] = fused.items[k] ?? 0;
    timer?.stage('fusion', (now() - tFusion) / 1000);
    if (anonymous || items.length === 0) {
      const count = Math.min(keep, items.length);
      return {
        items: items.slice(0, count), scores: Float32Array.from(fused.scores.subarray(0, count)),
        fused: (k) => (k >= 0 && k < count ? fused.candidate(k) : undefined), user, mode: anonymous ? 'anonymous' : 'personal', sources: reports,
      };
    }
    // Features and ranker inputs in one synchronous block: the generator holds the scores of the
    // user it last retrieved for, and the features read them.
    const tFeatures = now();
    if (generated?.tt) {
      snapshot.generator.restore(featureUser, generated.tt, generated.cv);
    } else if (generated?.scores) {
      const { scores, cv } = generated;
      snapshot.generator.setScores(featureUser, items, Float32Array.from(items, (i) => scores.tt(i)), Float32Array.from(items, (i) => cv[i] ?? 0));
    } else {
      snapshot.generator.retrieve(featureUser, history, vector ?? new Float32Array(snapshot.dim), 0);
    }
    const rows = this.parts.factored.rows(snapshot.features, featureUser, items, -1, scratch);
    const userPart = this.parts.factored.userPart(snapshot.vocabulary, featureUser);
    const itemParts = this.itemPartsOf(snapshot);
    timer?.stage('features', (now() - tFeatures) / 1000);
    const tRank = now();
    const logits = await this.parts.factored.score(this.parts.ranker, rows, itemParts, userPart, scratch);
    const combined = combineLogits(logits, snapshot.pipeline.scoreWeights, scratch.float32('ranking.combined', logits.length / OBJECTIVES.length));
    const fresh = snapshot.signals.fresh.score;
    const w = this.parts.config.freshnessWeight;
    if (w !== 0) items.forEach((i, k) => (combined[k] = (combined[k] ?? 0) + w * (fresh[i] ?? 0)));
    const top = descendingTop(combined, keep);
    timer?.stage('ranking', (now() - tRank) / 1000);
    return {
      items: Int32Array.from(top, (k) => items[k] ?? 0),
      scores: Float32Array.from(top, (k) => combined[k] ?? 0),
      fused: (k) => {
        const rank = top[k];
        return rank === undefined ? undefined : fused.candidate(rank);
      },
      rows, rowOf: Int32Array.from(top), user, mode: 'personal', sources: reports,
    };
  }

  /** The ranker's item parts of the snapshot's items (computed as they come up, kept with the snapshot). */
  private itemPartsOf(snapshot: ServingSnapshot): ItemParts {
    let parts = this.itemParts.get(snapshot);
    if (parts === undefined) {
      parts = this.parts.factored.itemParts(snapshot.vocabulary, snapshot.dataset.itemIds.length, this.parts.firstLayer?.());
      this.itemParts.set(snapshot, parts);
    }
    return parts;
  }

  /** MMR over the ranked list's embeddings, then business rules; indexes into `ranked`, best first. */
  private rerank(snapshot: ServingSnapshot, ranked: Ranked, n: number, scratch: RequestScratch): number[] {
    const count = ranked.items.length;
    if (count === 0) return [];
    const { dim, dataset } = snapshot;
    let order: number[];
    if (this.parts.config.mmrLambda < 1) {
      const embeddings = scratch.float32('rerank.embeddings', count * dim);
      ranked.items.forEach((item, k) => embeddings.set(embeddingOf(snapshot, item), k * dim));
      const k = Math.min(count, n * 2);
      const lambda = this.parts.config.mmrLambda;
      const { reranker } = this.parts;
      // The kernel's MMR with no affinity, shown penalty or exploration is mmr() bit for bit
      // (test/kernels/rerank-wasm.test.ts), ~5× faster for 80 candidates of 64 dims.
      order = reranker === undefined ? mmr(ranked.scores, embeddings, { lambda, k, dim }) : Array.from(reranker.picks(
        {
          dim, coreScore: ranked.scores, embeddings, shown: scratch.float64('rerank.shown', count), alpha: scratch.float32('rerank.alpha', count).fill(1),
          beta: scratch.float32('rerank.beta', count).fill(1), interest: scratch.float32('rerank.interest', dim),
        },
        { affinityWeight: 0, shownPenalty: 0, lambda, k, exploreShare: 0, seed: 0 },
      ));
    } else {
      order = Array.from({ length: Math.min(count, n * 2) }, (_, k) => k);
    }
    // Rules see MMR's order as the score (best first), so boosts and buries move items within it.
    const candidates = order.map((k, rank) => ({ item: dataset.itemIds[ranked.items[k] ?? 0] ?? '', score: -rank, categories: categoriesOf(dataset, ranked.items[k] ?? 0), k }));
    return applyRules(candidates, this.parts.config.rules, n).map((c) => c.k);
  }

  /**
   * The user's history (the snapshot's, then the positive events it has not seen, oldest first,
   * each item once) and the items they consumed (each once: the snapshot's consumed, its history,
   * then the latest events of a consuming type). Marks items in `itemMarks` and clears them
   * before it returns: synchronous, so requests that interleave never see each other's marks.
   */
  private historyOf(snapshot: ServingSnapshot, user: number, recent: readonly Event[]): { history: Int32Array; consumed: Int32Array } {
    const { dataset } = snapshot;
    const base = user >= 0 ? row(snapshot.histories, user) : NO_ITEMS;
    const baseConsumed = user >= 0 ? row(snapshot.consumed, user) : NO_ITEMS;
    if (this.itemMarks.length < dataset.itemIds.length) this.itemMarks = new Uint8Array(dataset.itemIds.length);
    const marks = this.itemMarks;
    const history = new Int32Array(base.length + recent.length);
    const consumed = new Int32Array(baseConsumed.length + base.length + recent.length);
    let h = 0;
    let c = 0;
    const consume = (i: number): void => {
      if ((marks[i] ?? 0) & CONSUMED) return;
      marks[i] = (marks[i] ?? 0) | CONSUMED;
      consumed[c++] = i;
    };
    for (let k = 0; k < baseConsumed.length; k++) consume(baseConsumed[k] ?? 0);
    for (let k = 0; k < base.length; k++) {
      const i = base[k] ?? 0;
      marks[i] = (marks[i] ?? 0) | SEEN;
      history[h++] = i;
      consume(i);
    }
    // Newest first from the store: walk oldest first so the history keeps time order.
    for (let k = recent.length - 1; k >= 0; k--) {
      const event = recent[k];
      if (event === undefined) continue;
      const i = dataset.itemIndex.get(event.itemId);
      if (i === undefined) continue;
      if (this.consumed.has(event.type)) consume(i);
      // Every event here is one the snapshot did not see (or, stamped at its clock, may not have).
      if ((this.weights.get(event.type) ?? 0) > 0 && ((marks[i] ?? 0) & SEEN) === 0) {
        marks[i] = (marks[i] ?? 0) | SEEN;
        history[h++] = i;
      }
    }
    for (let k = 0; k < h; k++) marks[history[k] ?? 0] = 0;
    for (let k = 0; k < c; k++) marks[consumed[k] ?? 0] = 0;
    return { history: history.slice(0, h), consumed: consumed.subarray(0, c) };
  }

  /**
   * The user-tower vector of one user, computed in TypeScript from the weights in user_tower.onnx
   * (training/models/forward.ts): for one row that is ~0.1 ms, where a call into ONNX Runtime
   * took ~0.4 ms, nearly all of it the call and its feeds.
   */
  private userVector(snapshot: ServingSnapshot, user: number, history: Int32Array): Float32Array {
    const { dataset, pipeline } = snapshot;
    // The vector reads the user's id and features (fixed per snapshot) and the last historyLength
    // items: a user asking again with the same ones gets the vector computed before.
    const recent = history.subarray(Math.max(0, history.length - pipeline.towerInputs.historyLength));
    if (this.vectors?.snapshot !== snapshot) this.vectors = { snapshot, byUser: new Map() };
    const { byUser } = this.vectors;
    const known = user >= 0 ? byUser.get(user) : undefined;
    if (known !== undefined && sameInts(known.recent, recent)) return known.vector;
    const inputs = new UserInputs(dataset, pipeline.towerInputs, 1).fill(Int32Array.of(user >= 0 ? user : dataset.userIds.length), [history]);
    const vector = forwardNetwork(this.parts.userTower, inputs).slice(0, snapshot.dim);
    if (user >= 0) {
      // A user already kept is replaced in place; only a new one makes room.
      if (known === undefined && byUser.size >= VECTOR_MEMO_USERS) byUser.delete(byUser.keys().next().value as number);
      byUser.set(user, { recent: recent.slice(), vector });
    }
    return vector;
  }

  /**
   * Per returned item and dense feature: combined score minus the score with that feature set to
   * the mean over this request's candidates (one batched ranker call of n × features rows).
   */
  private async contributions(snapshot: ServingSnapshot, ranked: Ranked, picked: readonly number[], scratch: RequestScratch): Promise<Float32Array> {
    const rows = ranked.rows;
    const rowOf = ranked.rowOf;
    if (!rows || !rowOf) return new Float32Array(0);
    const mean = new Float32Array(DENSE_SIZE);
    for (let r = 0; r < rows.length; r++) for (let f = 0; f < DENSE_SIZE; f++) mean[f] = (mean[f] ?? 0) + (rows.dense[r * DENSE_SIZE + f] ?? 0) / rows.length;
    const n = picked.length * DENSE_SIZE;
    const { factored, ranker } = this.parts;
    const outputs = factored.outputs;
    const ablated: SummedRows = {
      length: n, user: new Int32Array(n), item: new Int32Array(n), dense: new Float32Array(n * DENSE_SIZE),
      wideOffsets: new Int32Array(n + 1), wideIds: new Int32Array(0), wideSums: new Float32Array(n * outputs),
    };
    picked.forEach((k, p) => {
      const r = rowOf[k] ?? 0;
      for (let f = 0; f < DENSE_SIZE; f++) {
        const a = p * DENSE_SIZE + f;
        ablated.user[a] = rows.user[r] ?? 0;
        ablated.item[a] = rows.item[r] ?? 0;
        ablated.dense.set(rows.dense.subarray(r * DENSE_SIZE, (r + 1) * DENSE_SIZE), a * DENSE_SIZE);
        ablated.dense[a * DENSE_SIZE + f] = mean[f] ?? 0;
        ablated.wideSums.set(rows.wideSums.subarray(r * outputs, (r + 1) * outputs), a * outputs);
      }
    });
    // The request's first ranking is done with the scratch's first-layer array by now.
    const logits = await factored.score(ranker, ablated, this.itemPartsOf(snapshot), factored.userPart(snapshot.vocabulary, rows.user[0] ?? 0), scratch);
    const scores = combineLogits(logits, snapshot.pipeline.scoreWeights);
    const w = this.parts.config.freshnessWeight;
    const out = new Float32Array(n);
    picked.forEach((k, p) => {
      const full = (ranked.scores[k] ?? 0) - w * (snapshot.signals.fresh.score[ranked.items[k] ?? 0] ?? 0);
      for (let f = 0; f < DENSE_SIZE; f++) out[p * DENSE_SIZE + f] = full - (scores[p * DENSE_SIZE + f] ?? 0);
    });
    return out;
  }
}

/** The event types that make an item consumed: the config's, else every type with a non-zero weight. */
export function consumedTypes(config: EngineConfig, eventTypes: readonly EventTypeConfig[]): Set<string> {
  return new Set(config.consumedTypes ?? eventTypes.filter((t) => t.weight !== 0).map((t) => t.name));
}

/** A source's list for fusion: its candidates' item indexes and scores as they are. */
function toColumns(source: string, found: Candidates): SourceColumns<number> {
  return { source, items: found.items, scores: found.scores };
}

/** A source's columns as objects, for quotaMerge. */
function toList(list: SourceColumns<number>): SourceList<number> {
  return { source: list.source, candidates: Array.from(list.items, (item, k) => ({ item, score: list.scores[k] ?? 0 })) };
}

const NO_ITEMS = new Int32Array(0);
/** historyOf's marks: in the history, consumed. */
const SEEN = 1;
const CONSUMED = 2;

/** The ids of `items` (indexes into `itemIds`), in order. */
function idsOf(itemIds: readonly string[], items: Int32Array): string[] {
  const ids = new Array<string>(items.length);
  for (let k = 0; k < items.length; k++) ids[k] = itemIds[items[k] ?? 0] ?? '';
  return ids;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
