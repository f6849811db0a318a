// A serving snapshot: the catalog as of one moment, read in a trained model's index spaces, with
// everything a request needs precomputed. Training and serving share the code that turns data
// into model inputs: the same Dataset, the same CandidateGenerator scores and the same frozen
// FeatureState (training/features) build the ranker's rows here as in `kestrel train` and
// `kestrel recommend`, so the features served are the features trained on.
//
// A snapshot is immutable once built. The engine rebuilds it in the background when the catalog
// changed and swaps it in; events newer than the snapshot reach a request through the user's
// latest events, read per request from the interaction table (see engine.ts).

import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import type { Csr, Dataset, DatasetVocabularies } from '../../training/data/dataset.ts';
import { belowCsr, positiveRows, row, withRows } from '../../training/data/dataset.ts';
import { loadCatalogDataset } from '../../training/data/catalog-source.ts';
import { distinctUserItems } from '../../training/eval/baselines/cooccurrence.ts';
import type { FrozenFeatures } from '../../training/features/point-in-time.ts';
import { modelVocabularies } from '../../training/pipeline/model-dir.ts';
import type { PipelineConfig } from '../../training/pipeline/model-dir.ts';
import { CandidateGenerator } from '../../training/pipeline/two-stage.ts';
import type { RankerVocabulary } from '../../training/ranker/inputs.ts';
import type { EventTypeConfig } from '../domain/event-types.ts';
import type { ModelDir } from '../models/index.ts';
import { dataPaths } from '../paths.ts';
import { createWasmRowSums, createWasmScorer } from '../kernels/wasm.ts';
import { embeddingMoments } from './scores.ts';
import type { EmbeddingMoments } from './scores.ts';
import { buildSignals } from './signals.ts';
import type { SignalOptions, Signals } from './signals.ts';

export interface SnapshotInputs {
  model: ModelDir;
  pipeline: PipelineConfig;
  /** The model's item-item (co-visitation) weights, [n × n] over pipeline.coVisitationItems. */
  itemItemWeights: Float32Array;
  /** Data folder of the core: its catalog.db is read (read-only). */
  dataDir: string;
  eventTypes?: readonly EventTypeConfig[];
  /** Embeds items the model has not seen (item tower on their content); rows [items.length × dim]. */
  embedItems(dataset: Dataset, items: Int32Array): Promise<Float32Array>;
  signals?: SignalOptions;
  /** Events of these types make an item consumed (not recommended to that user again). */
  consumedTypes: ReadonlySet<string>;
}

export interface ServingSnapshot {
  readonly model: ModelDir;
  readonly pipeline: PipelineConfig;
  readonly dataset: Dataset;
  /** Catalog state this snapshot was read at (compare with `catalogFingerprint`). */
  readonly fingerprint: string;
  /** One millisecond after the latest event: features and decays are as of this time. */
  readonly clock: number;
  /** The interaction store's sequence number of the last event read: later ones are not in it. */
  readonly lastSeq: number;
  readonly dim: number;
  /** [items × dim]: the model's embeddings, then the item tower's for items new since training. */
  readonly embeddings: Float32Array;
  /** Items the model has embeddings for from training (the rest were embedded from content). */
  readonly modelItems: number;
  /** 1 when the item may be recommended: in the catalog (not deleted) and not hidden. */
  readonly recommendable: Uint8Array;
  /** Its complement (1 = never recommend), the start of every request's exclusion mask (copied, not recomputed). */
  readonly blocked: Uint8Array;
  /** Per item, its catalog attributes (null: none). */
  readonly attributes: readonly (Readonly<Record<string, string | number>> | null)[];
  /** Erased users (GDPR) and when: the model's rows for them predate it and must not be used. */
  readonly erasedAt: ReadonlyMap<string, number>;
  /** Per user, distinct positive items, oldest first. */
  readonly histories: Csr;
  /** Per user, distinct items with an event of a consumed type (positives, skips, dislikes...). */
  readonly consumed: Csr;
  readonly generator: CandidateGenerator;
  /** Ranker features frozen at `clock`, reading `generator`'s scores of its current user. */
  readonly features: FrozenFeatures;
  /** The ranker's vocabulary sizes (ids new since training go to the OOV rows); one InputBuilder per request. */
  readonly vocabulary: RankerVocabulary;
  readonly signals: Signals;
  /**
   * The item embeddings' moments, for catalogs too large to score whole per request (more items
   * than `exactScoresUpTo`): the engine then z-scores two-tower scores from them (scores.ts).
   */
  readonly moments?: EmbeddingMoments;
  readonly buildMs: number;
}

/** A cheap summary of the catalog's contents: when it changes, a new snapshot has something new. */
export function catalogFingerprint(dataDir: string): string {
  const path = dataPaths(dataDir).catalog;
  if (!existsSync(path)) return 'empty';
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const r = db.prepare<[], { seq: number | null; events: number; items: number; updated: number | null }>(
      'SELECT (SELECT max(seq) FROM interactions) AS seq, (SELECT count(*) FROM interactions) AS events, (SELECT count(*) FROM items) AS items, (SELECT max(updated_at) FROM items) AS updated',
    ).get();
    return r === undefined ? 'empty' : `${r.seq ?? 0}:${r.events}:${r.items}:${r.updated ?? 0}`;
  } finally {
    db.close();
  }
}

/**
 * Whether the catalog database may have changed, without reading its tables: SQLite's
 * `PRAGMA data_version` on a read-only connection kept open, which changes whenever any other
 * connection, in this process or another, commits. catalogFingerprint counts every interaction, a
 * scan on the event loop (~7 ms for ml-100k's 100,000 rows, growing with the table), so a periodic
 * refresh asks this first and fingerprints only after a commit.
 */
export class CatalogWatch {
  private db: Database.Database | undefined;
  private version: number | undefined;

  constructor(private readonly dataDir: string) {}

  /** True on the first call and whenever some connection committed since the previous call. */
  changed(): boolean {
    if (this.db === undefined) {
      const path = dataPaths(this.dataDir).catalog;
      if (!existsSync(path)) return true;
      this.db = new Database(path, { readonly: true, fileMustExist: true });
    }
    const version = this.db.pragma('data_version', { simple: true }) as number;
    const changed = version !== this.version;
    this.version = version;
    return changed;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
    this.version = undefined;
  }
}

type Attributes = Record<string, string | number>;

/** Which items may be recommended (in the catalog, not hidden), their attributes, and the erasure tombstones. */
function catalogState(dataDir: string, dataset: Dataset): { recommendable: Uint8Array; attributes: (Attributes | null)[]; erasedAt: Map<string, number> } {
  const recommendable = new Uint8Array(dataset.itemIds.length);
  const attributes: (Attributes | null)[] = new Array<Attributes | null>(dataset.itemIds.length).fill(null);
  const erasedAt = new Map<string, number>();
  const path = dataPaths(dataDir).catalog;
  if (!existsSync(path)) return { recommendable, attributes, erasedAt };
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    for (const r of db.prepare<[], { id: string; hidden: number; attributes: string }>('SELECT id, hidden, attributes FROM items').iterate()) {
      const i = dataset.itemIndex.get(r.id);
      if (i === undefined) continue;
      if (r.hidden === 0) recommendable[i] = 1;
      if (r.attributes !== '{}') attributes[i] = JSON.parse(r.attributes) as Attributes;
    }
    for (const r of db.prepare<[], { user_id: string; erased_at: number }>('SELECT user_id, erased_at FROM erased_users').iterate()) erasedAt.set(r.user_id, r.erased_at);
  } finally {
    db.close();
  }
  return { recommendable, attributes, erasedAt };
}

/**
 * The catalog part of a snapshot: everything read and computed from catalog.db alone. Plain data
 * (typed arrays, strings, Maps), so a worker thread can build it and post it back
 * (snapshot-worker.ts): this is the slow part, ~1 s per 100,000 events.
 */
export interface CatalogData {
  dataset: Dataset;
  fingerprint: string;
  clock: number;
  /** The store's sequence number of the last event read (InteractionStore.userEventsSince). */
  lastSeq: number;
  recommendable: Uint8Array;
  /** Per item, its catalog attributes (null when it has none): for attribute predicates. */
  attributes: (Record<string, string | number> | null)[];
  erasedAt: Map<string, number>;
  positives: Int32Array;
  histories: Csr;
  consumed: Csr;
  signals: Signals;
}

export interface CatalogDataInputs {
  dataDir: string;
  /** The model's vocabularies: ids keep the model's indexes. */
  vocabularies: DatasetVocabularies;
  eventTypes?: readonly EventTypeConfig[];
  /** Event types that make an item consumed. */
  consumedTypes: readonly string[];
  signals?: SignalOptions;
}

export async function readCatalogData(inputs: CatalogDataInputs): Promise<CatalogData> {
  const fingerprint = catalogFingerprint(inputs.dataDir);
  const { dataset, lastSeq } = await loadCatalogDataset(inputs.dataDir, {
    vocabularies: inputs.vocabularies,
    ...(inputs.eventTypes ? { eventTypes: inputs.eventTypes } : {}),
  });
  const { recommendable, attributes, erasedAt } = catalogState(inputs.dataDir, dataset);
  const positives = positiveRows(dataset);
  const histories = distinctUserItems(dataset, positives);
  const consumedRows: number[] = [];
  const consumedTypes = new Set(inputs.consumedTypes);
  const consumedType = dataset.eventTypes.map((t) => consumedTypes.has(t.name));
  for (let r = 0; r < dataset.interactions.length; r++) if (consumedType[dataset.interactions.type[r] ?? 0] === true) consumedRows.push(r);
  const consumed = distinctUserItems(dataset, Int32Array.from(consumedRows));
  const { timestamp, length } = dataset.interactions;
  const clock = length > 0 ? (timestamp[length - 1] ?? 0) + 1 : Date.now();
  const signals = buildSignals(dataset, positives, clock, inputs.signals);
  return { dataset, fingerprint, clock, lastSeq, recommendable, attributes, erasedAt, positives, histories, consumed, signals };
}

/**
 * Catalogs up to this many items get the model's scores of every item per request (exact, as in
 * training), with the embedded index: the two-tower source then takes the exact top n of those
 * scores instead of walking the graph. The scan's cost grows with the catalog (at 100,000 items
 * ~2.5 ms to read 25.6 MB of vectors, plus the z-scoring), the walk's barely (~9 ms at ef 5,000
 * for a top 1,000): a request took 9.4 against 16–17 ms of CPU at 100,000 items, 18–19 against
 * 16–18 at 200,000 (in process, README `scale-serve`).
 */
export const DEFAULT_EXACT_SCORES_UP_TO = 150_000;
/**
 * The same with Milvus: every request searches Milvus anyway, so the scan only serves the
 * ranker's features (and the fallback when Milvus fails), which the moments give for less.
 */
export const DEFAULT_EXACT_SCORES_UP_TO_MILVUS = 50_000;

/** The model's part: embeddings (the item tower for new items), retrieval scores and frozen features. */
export async function assembleSnapshot(
  data: CatalogData, inputs: Omit<SnapshotInputs, 'dataDir' | 'eventTypes' | 'signals' | 'consumedTypes'>, startedAt = performance.now(),
  exactScoresUpTo = DEFAULT_EXACT_SCORES_UP_TO,
): Promise<ServingSnapshot> {
  const { model, pipeline } = inputs;
  const { dataset, positives } = data;
  const vocab = modelVocabularies(model.vocabularies);
  const dim = model.manifest.dims.embedding;
  const modelItems = model.itemIds.length;
  const n = dataset.itemIds.length;
  const embeddings = new Float32Array(n * dim);
  embeddings.set(model.itemEmbeddings.subarray(0, Math.min(modelItems, n) * dim));
  if (n > modelItems) {
    const fresh = Int32Array.from({ length: n - modelItems }, (_, k) => modelItems + k);
    embeddings.set(await inputs.embedItems(dataset, fresh), modelItems * dim);
  }
  // The model's item-item matrix covers the items it was trained on; newer items get none (−∞ → 0).
  const subset = { items: Int32Array.from(pipeline.coVisitationItems), local: new Int32Array(n).fill(-1) };
  subset.items.forEach((item, l) => (subset.local[item] = l));
  const generator = new CandidateGenerator(embeddings, dim, { subset, weights: inputs.itemItemWeights });
  if (n <= exactScoresUpTo) {
    // Every request scores the whole catalog: on the WASM SIMD kernels, the vectors and the
    // item-item weights resident in their memory.
    const scorer = await createWasmScorer();
    scorer.setItems(embeddings, dim);
    generator.useScorer((query, out) => scorer.score(query, out));
    const rowSums = await createWasmRowSums();
    rowSums.setMatrix(inputs.itemItemWeights, subset.items.length);
    generator.useRowSums((rows, acc) => rowSums.sums(rows, acc));
  }
  const features = generator.features(withRows(dataset, positives), pipeline.wideBuckets);
  const vocabulary: RankerVocabulary = {
    users: vocab.userIds.length, items: vocab.itemIds.length, categories: vocab.categoryNames.length, userFeatures: vocab.userFeatureNames.length,
    itemCategories: belowCsr(dataset.itemCategories, vocab.categoryNames.length),
    userFeatureRows: belowCsr(dataset.userFeatures, vocab.userFeatureNames.length),
  };
  return {
    model, pipeline, dataset, fingerprint: data.fingerprint, clock: data.clock, lastSeq: data.lastSeq, dim, embeddings, modelItems, recommendable: data.recommendable,
    blocked: data.recommendable.map((v) => 1 - v), attributes: data.attributes,
    erasedAt: data.erasedAt, histories: data.histories, consumed: data.consumed, generator, features, vocabulary, signals: data.signals,
    ...(n > exactScoresUpTo ? { moments: embeddingMoments(embeddings, dim) } : {}),
    buildMs: performance.now() - startedAt,
  };
}

/** Both phases on this thread (tests, tools); the core reads the catalog in a worker (snapshot-worker.ts). */
export async function buildSnapshot(inputs: SnapshotInputs): Promise<ServingSnapshot> {
  const t0 = performance.now();
  const data = await readCatalogData({
    dataDir: inputs.dataDir, vocabularies: modelVocabularies(inputs.model.vocabularies), consumedTypes: [...inputs.consumedTypes],
    ...(inputs.eventTypes ? { eventTypes: inputs.eventTypes } : {}), ...(inputs.signals ? { signals: inputs.signals } : {}),
  });
  return assembleSnapshot(data, inputs, t0);
}

/** The item's embedding row (a view). */
export function embeddingOf(snapshot: ServingSnapshot, item: number): Float32Array {
  return snapshot.embeddings.subarray(item * snapshot.dim, (item + 1) * snapshot.dim);
}

/** The item's category names. */
/** Per dataset, each item's category names as categoriesOf built them (filled as items come up). */
const categoryLists = new WeakMap<Dataset, (readonly string[] | undefined)[]>();

/**
 * The item's category names. One array per item and dataset, built once and shared by every
 * answer that lists the item (a request names ~60 items' categories): callers must not change it.
 */
export function categoriesOf(dataset: Dataset, item: number): string[] {
  let lists = categoryLists.get(dataset);
  if (lists === undefined) {
    lists = new Array<readonly string[] | undefined>(dataset.itemIds.length);
    categoryLists.set(dataset, lists);
  }
  let names = lists[item];
  if (names === undefined) {
    names = Object.freeze(Array.from(row(dataset.itemCategories, item), (c) => dataset.categoryNames[c] ?? ''));
    if (item >= 0 && item < lists.length) lists[item] = names;
  }
  // Frozen: a caller that tried to change the shared list would throw, not corrupt other answers.
  return names as string[];
}

