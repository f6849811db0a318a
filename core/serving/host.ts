// Keeps the core serving the registry's current model on a fresh view of the catalog.
//
// * Model hot-swap: the registry's current.json is polled; a new current version is loaded in the
//   background (sessions, snapshot, vector index) and swapped in with one assignment. Requests in
//   flight finish on the engine they started on; it is closed once they have drained.
// * Catalog refresh: when the catalog changed (catalogFingerprint, read only after some connection
//   committed: CatalogWatch), a new snapshot is built in the background and swapped into the
//   engine; items new to the index are embedded by the item tower and upserted, items hidden or
//   deleted since are re-flagged.
//
// A failed load or refresh keeps serving what was there and is reported by `status()` (/readyz).

import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InteractionStore } from '../catalog/ports.ts';
import type { EventTypeConfig } from '../domain/event-types.ts';
import { openRegistry } from '../models/index.ts';
import type { ModelDir, ModelRegistry } from '../models/index.ts';
import { compileWasmKernels, createWasmFirstLayer } from '../kernels/wasm.ts';
import { createNodeSession } from '../ranking/onnx-session.ts';
import { instantiateKernelsSync, WasmReranker } from '../../wasm/index.ts';
import type { OnnxSession } from '../ranking/onnx-session.ts';
import { FactoredRanker } from '../ranking/factored.ts';
import { openRanker } from '../ranking/ranker.ts';
import type { Ranker, RankerKind } from '../ranking/ranker.ts';
import { openHnswIndex } from '../retrieval/hnsw-index.ts';
import { checkMilvusReachable, dropMilvusCollections, openMilvusIndex } from '../retrieval/milvus-index.ts';
import type { IndexedItem, VectorIndex } from '../retrieval/vector-index.ts';
import { exportNetwork, networkFeeds, readNetwork } from '../../training/onnx/network.ts';
import { checkNetworkSpec } from '../../training/models/forward.ts';
import { CO_VISITATION_FILE, modelVocabularies, PIPELINE_FILE } from '../../training/pipeline/model-dir.ts';
import type { PipelineConfig } from '../../training/pipeline/model-dir.ts';
import { ItemInputs } from '../../training/two-tower/inputs.ts';
import type { Dataset } from '../../training/data/dataset.ts';
import { float32FromBytes } from '../models/model-dir.ts';
import { consumedTypes, ServingEngine } from './engine.ts';
import type { EngineConfig, StageTimer } from './engine.ts';
import {
  CatalogWatch, DEFAULT_EXACT_SCORES_UP_TO, DEFAULT_EXACT_SCORES_UP_TO_MILVUS, assembleSnapshot, catalogFingerprint, categoriesOf, embeddingOf,
} from './snapshot.ts';
import { readCatalogDataInWorker } from './snapshot-worker.ts';
import type { ServingSnapshot } from './snapshot.ts';

export type IndexChoice =
  | { kind: 'hnsw' }
  | {
    kind: 'milvus';
    address: string;
    /** Collections are named `<prefix>_<model version>`. Default 'kestrel_items'. */
    collectionPrefix?: string;
    /**
     * Drop a model's collection when its engine is retired or the host closes (tests). Default
     * false: a restart reuses it, and after a swap the host drops the collections of the
     * registry's other versions, all but the one now serving and the one it replaced (which
     * replicas still polling the registry may serve for a little longer).
     */
    dropOnClose?: boolean;
  };

export interface ServingHostOptions {
  /** The model registry folder (`kestrel train --out`). */
  registryRoot: string;
  dataDir: string;
  interactions: InteractionStore;
  eventTypes: readonly EventTypeConfig[];
  ranker: RankerKind;
  index: IndexChoice;
  config: EngineConfig;
  /** How often current.json is checked. Default 2 s; 0: only by `checkNow`. */
  modelPollMs?: number;
  /** How often the catalog is checked for changes. Default 30 s; 0: only by `refreshNow`. */
  refreshMs?: number;
  timer?: StageTimer;
  log?: (line: string) => void;
  /**
   * A follower (an engine thread, ./engine-pool.ts) serves beside the host that owns the index:
   * its embedded index lives in memory only (nothing written to the data folder), and with
   * Milvus it reads the collection the owner fills (it waits for it to be filled when it loads a
   * version, upserts nothing and drops nothing).
   */
  follower?: boolean;
}

export interface ServingStatus {
  /** The version serving, if any. */
  version?: string;
  /** A version being loaded in the background. */
  loading?: string;
  /** Why the last load or refresh failed, if it did. */
  error?: string;
  snapshot?: { items: number; users: number; events: number; clock: number; buildMs: number };
  /**
   * The vector index: its kind, how many items came back from disk rather than being upserted at
   * load, and how many this host put in it or found there (`held`). An engine thread puts none:
   * on Milvus the owner fills the collection, and its embedded index stays empty while the
   * catalog is scored whole.
   */
  index?: { kind: 'hnsw' | 'milvus'; restored: number; held: number };
}

interface Loaded {
  engine: ServingEngine;
  itemTower: OnnxSession;
  ranker: Ranker;
  index: VectorIndex;
  /** What the index holds: id → signature (visibility and attributes). */
  indexed: Map<string, string>;
  model: ModelDir;
  /** The embedded index's folder, if it is persisted. */
  indexDir?: string;
  /** Items the index already held when loaded. */
  restored: number;
}

export class ServingHost {
  private loaded: Loaded | undefined;
  private loading: string | undefined;
  private error: string | undefined;
  private timers: ReturnType<typeof setInterval>[] = [];
  /** Commits to the catalog since the last refresh check (no table read). */
  private readonly watch: CatalogWatch;
  /** Whether the last refresh check found the serving snapshot current (or made it so). */
  private snapshotCurrent = false;
  private busy: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly log: (line: string) => void;

  /** How often the registry is checked for a new current model (and a failed load tried again); 0: never. */
  private get pollMs(): number {
    return this.options.modelPollMs ?? 2000;
  }

  private constructor(private readonly options: ServingHostOptions, private readonly registry: ModelRegistry) {
    this.log = options.log ?? console.error;
    this.watch = new CatalogWatch(options.dataDir);
  }

  /** Opens the registry and loads its current model, if it has one (the core serves without). */
  static async open(options: ServingHostOptions): Promise<ServingHost> {
    const host = new ServingHost(options, await openRegistry(options.registryRoot));
    await host.checkNow();
    const poll = host.pollMs;
    const refresh = options.refreshMs ?? 30_000;
    if (poll > 0) host.timers.push(setInterval(() => void host.checkNow(), poll));
    if (refresh > 0) host.timers.push(setInterval(() => void host.refreshNow(), refresh));
    for (const t of host.timers) t.unref();
    return host;
  }

  /** The engine serving now, or undefined before the first model. */
  get engine(): ServingEngine | undefined {
    return this.loaded?.engine;
  }

  status(): ServingStatus {
    const snapshot = this.loaded?.engine.snapshot;
    return {
      ...(this.loaded ? { version: this.loaded.engine.version } : {}),
      ...(this.loading ? { loading: this.loading } : {}),
      ...(this.error ? { error: this.error } : {}),
      ...(snapshot ? { snapshot: describe(snapshot) } : {}),
      ...(this.loaded ? { index: { kind: this.loaded.index.kind, restored: this.loaded.restored, held: this.loaded.indexed.size } } : {}),
    };
  }

  /** Loads the registry's current version if it is not the one serving; resolves when swapped (or failed). */
  checkNow(): Promise<void> {
    return this.serialise(async () => {
      const version = await this.registry.current();
      if (version === undefined || version === this.loaded?.engine.version) return;
      this.loading = version;
      try {
        const next = await this.load(version);
        const previous = this.loaded;
        this.loaded = next;
        this.error = undefined;
        this.log(`kestrel core: serving model ${version} (${describeLine(next.engine.snapshot)})`);
        if (previous) void this.retire(previous).then(() => this.dropRetiredCollections(version, previous.engine.version));
      } catch (error) {
        const message = `loading model ${version} failed: ${error instanceof Error ? error.message : String(error)}`;
        // Tried again at every poll: the same failure is logged once, not every few seconds.
        if (message !== this.error) this.log(`kestrel core: ${message}${this.pollMs > 0 ? ` (trying again every ${this.pollMs / 1000} s)` : ''}`);
        this.error = message;
      } finally {
        this.loading = undefined;
      }
    });
  }

  /** Rebuilds the snapshot if the catalog changed since; resolves when swapped (or failed). */
  refreshNow(force = false): Promise<void> {
    return this.serialise(async () => {
      const loaded = this.loaded;
      if (!loaded) return;
      const current = loaded.engine.snapshot;
      // No commit since the last check that found the snapshot current: nothing to read.
      const committed = this.watch.changed();
      if (!force && !committed && this.snapshotCurrent) return;
      this.snapshotCurrent = false;
      if (!force && catalogFingerprint(this.options.dataDir) === current.fingerprint) {
        this.snapshotCurrent = true;
        return;
      }
      try {
        const snapshot = await this.snapshotFor(loaded.model, loaded.itemTower);
        // A follower on Milvus reads what the owner upserts.
        if (!(this.options.follower === true && loaded.index.kind === 'milvus') && this.indexSearched(loaded.index, snapshot)) {
          await syncIndex(loaded.index, loaded.indexed, snapshot);
        }
        loaded.engine.replaceSnapshot(snapshot);
        // Commits after the snapshot's read changed data_version again, so the next check reads them.
        this.snapshotCurrent = true;
      } catch (error) {
        this.error = `refreshing the catalog snapshot failed: ${error instanceof Error ? error.message : String(error)}`;
        this.log(`kestrel core: ${this.error}`);
      }
    });
  }

  /**
   * GDPR erasure: the serving engine stops using the user's snapshot history and model rows at
   * once, and a refreshed snapshot without them is built in the background. Returns how many
   * of the user's items the snapshot held.
   */
  eraseUser(userId: string, at: number): number {
    const removed = this.loaded?.engine.forget(userId, at) ?? 0;
    void this.refreshNow(true);
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.busy;
    this.watch.close();
    if (this.loaded) await this.retire(this.loaded, true);
    this.loaded = undefined;
  }

  /**
   * Whether the engine on `snapshot` may search `index`. An engine thread's embedded index is
   * searched only by the two-tower source, and only when the catalog is too large to score whole
   * (`exactScoresUpTo`; /similar stays on the main thread): below that, a thread leaves its index
   * empty (at 100,000 items a build of ~40 s of CPU and tens of MB per thread), and fills it
   * (`indexed` says what it holds) with the first snapshot that has outgrown the limit.
   */
  private indexSearched(index: VectorIndex, snapshot: ServingSnapshot): boolean {
    return !(this.options.follower === true && index.kind === 'hnsw' && snapshot.moments === undefined);
  }

  private serialise(work: () => Promise<void>): Promise<void> {
    const next = this.busy.then(() => (this.closed ? undefined : work()));
    this.busy = next.catch(() => undefined);
    return next;
  }

  private async load(version: string): Promise<Loaded> {
    const model = await this.registry.load(version);
    if (!model.ranker) throw new Error(`model ${version} has no ranker.onnx: it is not a two-stage model`);
    // Before the snapshot: seconds of CPU, and a failed load is tried again at every poll.
    if (this.options.index.kind === 'milvus') await checkMilvusReachable(this.options.index.address);
    const opened: { close(): Promise<void> }[] = [];
    try {
      const userTower = readNetwork(model.userTower);
      checkNetworkSpec(userTower);
      const itemTower = await createNodeSession(model.itemTower);
      opened.push({ close: () => itemTower.release() });
      // The adapter runs the ranker with its first layer factored (core/ranking/factored.ts): the
      // engine adds the user's and each item's parts, the adapter the rest of the network.
      const factored = new FactoredRanker(readNetwork(model.ranker));
      const ranker = await openRanker(this.options.ranker, exportNetwork(factored.spec));
      opened.push(ranker);
      const snapshot = await this.snapshotFor(model, itemTower);
      const follower = this.options.follower === true;
      const indexDir = this.options.index.kind === 'hnsw' && !follower ? join(this.options.dataDir, 'index', version) : undefined;
      const index = await this.openIndex(version, snapshot.dim, indexDir);
      opened.push(index);
      // A persisted index comes back with what it held, so only the changes since are upserted.
      const indexed = indexDir === undefined ? new Map<string, string>() : await readIndexed(indexDir, (await index.stats()).count);
      const restored = indexed.size;
      if (follower && index.kind === 'milvus') await this.awaitFilled(index, snapshot);
      else if (this.indexSearched(index, snapshot)) await syncIndex(index, indexed, snapshot);
      const kernels = await compileWasmKernels();
      const reranker = new WasmReranker(instantiateKernelsSync(kernels));
      const engine = new ServingEngine({
        version, userTower, reranker, ranker, factored, firstLayer: () => createWasmFirstLayer(kernels), index, interactions: this.options.interactions, eventTypes: this.options.eventTypes,
        config: this.options.config, ...(this.options.timer ? { timer: this.options.timer } : {}),
      }, snapshot);
      return { engine, itemTower, ranker, index, indexed, model, restored, ...(indexDir ? { indexDir } : {}) };
    } catch (error) {
      for (const o of opened.reverse()) await o.close().catch(() => undefined);
      throw error;
    }
  }

  private async snapshotFor(model: ModelDir, itemTower: OnnxSession): Promise<ServingSnapshot> {
    const pipeline = JSON.parse(await readFile(join(model.dir, PIPELINE_FILE), 'utf8')) as PipelineConfig;
    const weights = float32FromBytes(await readFile(join(model.dir, CO_VISITATION_FILE)));
    const n = pipeline.coVisitationItems.length;
    if (weights.length !== n * n) throw new Error(`${model.dir}/${CO_VISITATION_FILE} holds ${weights.length} weights, ${n} × ${n} expected`);
    const t0 = performance.now();
    // The catalog read and the signals on a worker thread; the model's part (item tower for new
    // items, retrieval scores, frozen features) here.
    const data = await readCatalogDataInWorker({
      dataDir: this.options.dataDir, vocabularies: modelVocabularies(model.vocabularies), eventTypes: this.options.eventTypes,
      consumedTypes: [...consumedTypes(this.options.config, this.options.eventTypes)],
    });
    return assembleSnapshot(data, {
      model, pipeline, itemItemWeights: weights,
      embedItems: (dataset, items) => embedItems(itemTower, model, pipeline, dataset, items),
    }, t0, this.options.config.exactScoresUpTo ?? (this.options.index.kind === 'milvus' ? DEFAULT_EXACT_SCORES_UP_TO_MILVUS : DEFAULT_EXACT_SCORES_UP_TO));
  }

  private async openIndex(version: string, dim: number, dir: string | undefined): Promise<VectorIndex> {
    const choice = this.options.index;
    if (choice.kind === 'hnsw') return openHnswIndex({ dim, ...(dir ? { dir } : {}) });
    const collection = collectionOf(choice, version);
    const index = await openMilvusIndex({ address: choice.address, collection, dim, consistency: 'Session' });
    // Only the owner drops: a follower leaves the collection to it.
    if (choice.dropOnClose !== true || this.options.follower === true) return index;
    return {
      kind: index.kind, dim: index.dim,
      upsert: (items) => index.upsert(items), delete: (ids) => index.delete(ids), search: (q, k, f) => index.search(q, k, f),
      searchMany: (qs, k, f) => index.searchMany(qs, k, f), stats: () => index.stats(), flush: () => index.flush(),
      close: () => index.drop(),
    } as VectorIndex & { flush(): Promise<void> };
  }

  /**
   * A follower on Milvus: waits until the owner has upserted the snapshot's items into the
   * collection (it loads the same version at about the same time), at most FOLLOWER_FILL_WAIT_MS.
   */
  private async awaitFilled(index: VectorIndex, snapshot: ServingSnapshot): Promise<void> {
    const want = snapshot.dataset.itemIds.length;
    const deadline = Date.now() + FOLLOWER_FILL_WAIT_MS;
    let count = (await index.stats()).count;
    while (count < want && Date.now() < deadline && !this.closed) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      count = (await index.stats()).count;
    }
    if (count < want) this.log(`kestrel core: the Milvus collection holds ${count} of ${want} items; serving from it anyway`);
  }

  /** After a swap to `serving` from `replaced`: drops the Milvus collections of every other version. */
  private async dropRetiredCollections(serving: string, replaced: string): Promise<void> {
    const choice = this.options.index;
    if (choice.kind !== 'milvus' || choice.dropOnClose === true || this.options.follower === true) return;
    try {
      // Only this registry's versions: another deployment's collections are never touched.
      const keep = new Set([collectionOf(choice, serving), collectionOf(choice, replaced)]);
      const retired = (await this.registry.list()).map((v) => collectionOf(choice, v)).filter((name) => !keep.has(name));
      const dropped = await dropMilvusCollections(choice.address, retired);
      if (dropped.length > 0) this.log(`kestrel core: dropped the Milvus collections of retired models: ${dropped.join(', ')}`);
    } catch (error) {
      this.log(`kestrel core: dropping retired Milvus collections failed (they stay; the next swap retries): ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Closes an engine once its requests drained; `keep` keeps its persisted index (the host closes, not a swap). */
  private async retire(loaded: Loaded, keep = false): Promise<void> {
    await loaded.engine.drain();
    await loaded.ranker.close().catch(() => undefined);
    await loaded.itemTower.release().catch(() => undefined);
    await loaded.index.close().catch(() => undefined);
    if (loaded.indexDir === undefined) return;
    try {
      if (keep) await writeIndexed(loaded.indexDir, loaded.indexed);
      else await rm(loaded.indexDir, { recursive: true, force: true });
    } catch (error) {
      this.log(`kestrel core: the index folder ${loaded.indexDir}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Item-tower embeddings of items the model has no trained row for (ids go to the OOV row: content only). */
async function embedItems(itemTower: OnnxSession, model: ModelDir, pipeline: PipelineConfig, dataset: Dataset, items: Int32Array): Promise<Float32Array> {
  const dim = model.manifest.dims.embedding;
  const out = new Float32Array(items.length * dim);
  const batch = 512;
  const output = model.manifest.featureSpec.itemTower.output;
  for (let start = 0; start < items.length; start += batch) {
    const part = items.subarray(start, Math.min(items.length, start + batch));
    const inputs = new ItemInputs(dataset, pipeline.towerInputs, part.length).fill(part);
    const vectors = (await itemTower.run(networkFeeds(inputs)))[output];
    if (!vectors) throw new Error('the item tower returned no output');
    out.set(vectors.subarray(0, part.length * dim), start * dim);
  }
  return out;
}

const INDEXED_FILE = 'serving-indexed.json';
/** How long a follower waits for the owner to fill a Milvus collection. */
const FOLLOWER_FILL_WAIT_MS = 120_000;

/** What a persisted index held when it was saved (id → signature), if it still holds that many items. */
async function readIndexed(dir: string, count: number): Promise<Map<string, string>> {
  try {
    const path = join(dir, INDEXED_FILE);
    const saved = JSON.parse(await readFile(path, 'utf8')) as { ids?: string[]; signatures?: string[] };
    // Consumed: if this run dies before its own close, the next one must not trust a stale list.
    await rm(path, { force: true });
    if (!Array.isArray(saved.ids) || !Array.isArray(saved.signatures) || saved.ids.length !== count) return new Map();
    return new Map(saved.ids.map((id, k) => [id, saved.signatures?.[k] ?? '']));
  } catch {
    return new Map();
  }
}

async function writeIndexed(dir: string, indexed: ReadonlyMap<string, string>): Promise<void> {
  const tmp = join(dir, `${INDEXED_FILE}.tmp`);
  await writeFile(tmp, JSON.stringify({ ids: [...indexed.keys()], signatures: [...indexed.values()] }));
  await rename(tmp, join(dir, INDEXED_FILE));
}

/** What the index must be told again when it changes: visibility and attributes. */
function signatureOf(snapshot: ServingSnapshot, i: number): string {
  const attributes = snapshot.attributes[i];
  return `${snapshot.recommendable[i] === 1 ? 'v' : 'h'}${attributes ? JSON.stringify(attributes) : ''}`;
}

/** Brings the index in line with the snapshot: new items inserted, changed visibility or attributes re-sent. */
async function syncIndex(index: VectorIndex, indexed: Map<string, string>, snapshot: ServingSnapshot): Promise<void> {
  const { dataset } = snapshot;
  const changed: IndexedItem[] = [];
  const signatures: string[] = [];
  for (let i = 0; i < dataset.itemIds.length; i++) {
    const id = dataset.itemIds[i] ?? '';
    const signature = signatureOf(snapshot, i);
    if (indexed.get(id) === signature) continue;
    const published = dataset.itemPublishedAt[i] ?? Number.NaN;
    const attributes = snapshot.attributes[i];
    changed.push({
      id, vector: embeddingOf(snapshot, i), categories: categoriesOf(dataset, i), hidden: snapshot.recommendable[i] !== 1,
      ...(Number.isFinite(published) ? { publishedAt: published } : {}), ...(attributes ? { attributes } : {}),
    });
    signatures.push(signature);
  }
  for (let start = 0; start < changed.length; start += 5000) await index.upsert(changed.slice(start, start + 5000));
  // Milvus searches unsealed rows through a rough temporary index (recall ~0.4): seal them now.
  if (changed.length > 0 && 'flush' in index && typeof index.flush === 'function') await (index as { flush(): Promise<void> }).flush();
  changed.forEach((item, k) => indexed.set(item.id, signatures[k] ?? ''));
}

function describe(snapshot: ServingSnapshot): NonNullable<ServingStatus['snapshot']> {
  const { dataset } = snapshot;
  return { items: dataset.itemIds.length, users: dataset.userIds.length, events: dataset.interactions.length, clock: snapshot.clock, buildMs: Math.round(snapshot.buildMs) };
}

function describeLine(snapshot: ServingSnapshot): string {
  const d = describe(snapshot);
  return `${d.items} items, ${d.users} users, ${d.events} events; snapshot built in ${d.buildMs} ms`;
}

type MilvusChoice = Extract<IndexChoice, { kind: 'milvus' }>;

/** One collection per model version: a new model's embeddings live in another space. */
function collectionOf(choice: MilvusChoice, version: string): string {
  return `${choice.collectionPrefix ?? 'kestrel_items'}_${version.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 255);
}
