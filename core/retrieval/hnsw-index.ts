// The embedded VectorIndex: an in-process HNSW graph (Malkov 2018) from hnswlib-node over inner
// product, for a single machine (`npm start`) with no vector server. hnswlib knows only integer
// labels and vectors, so the item ids and the fields filters look at live here in JS, keyed by
// label; filters run as hnswlib's per-label filter callback, or, when they leave few items, as an
// exact scan over those items. With a folder, `close()` saves the graph and a JSON sidecar there
// atomically and `openHnswIndex` loads them back.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import type { HierarchicalNSW } from 'hnswlib-node';
import {
  byScore, checkDim, checkItems, checkK, checkQuery, compileFilter, innerProduct, lastPerId, onlyHiddenRule,
  resolveHnswParams, searchEf,
} from './vector-index.ts';
import type { FilterPredicate, HnswParams, IndexedItem, VectorFilter, VectorHit, VectorIndex } from './vector-index.ts';

export interface HnswIndexOptions {
  dim: number;
  /** Folder the index is saved to on close and loaded from on open; none: memory only. */
  dir?: string;
  params?: Partial<HnswParams>;
  /** Items the graph has room for before it first grows (it doubles when full). */
  capacity?: number;
}

/** Room for this many items when no capacity is given. */
const DEFAULT_CAPACITY = 1024;
/**
 * A filter that leaves at most this many items is answered by an exact scan of them. Reading a
 * vector back from hnswlib (getPoint) costs about 9 µs, so 2,000 items take about 18 ms, which is
 * what a filtered graph walk costs when the filter passes under 5% of a 20,000-item index (the
 * walk then visits most of the graph, calling the JS filter at every node).
 */
const EXACT_MAX_MATCHES = 2_000;
/**
 * The exact scan is for selective filters only: one that keeps most of the index (a user's few
 * hundred consumed items excluded from a small catalog) is walked through the graph with the
 * filter callback, which costs no more than the unfiltered walk, instead of ~9 µs per item read back.
 */
const EXACT_MAX_SHARE = 0.5;
/** Fixed graph seed, so the same inserts build the same graph. */
const RANDOM_SEED = 100;
const META_FILE = 'index.json';
const META_FORMAT = 'kestrel-hnsw/1';
const GRAPH_PREFIX = 'hnsw-';

/** What the index keeps per item besides its vector (which lives in the graph). */
interface Entry {
  id: string;
  label: number;
  categories?: readonly string[];
  hidden?: boolean;
  publishedAt?: number;
  attributes?: Readonly<Record<string, string | number>>;
}

/** The sidecar saved next to the graph. */
interface Meta {
  format: typeof META_FORMAT;
  dim: number;
  m: number;
  efConstruction: number;
  graphFile: string;
  nextLabel: number;
  /** [label, id, categories, hidden, publishedAt] per live item. */
  /** label, id, categories, hidden, publishedAt and (since attributes) attributes; older sidecars have five entries. */
  items: [number, string, string[] | null, boolean, number | null, Record<string, string | number>?][];
}

/** Which items a search may return: all live ones (the graph alone), or those passing `keep`. */
interface Plan {
  keep?: FilterPredicate;
  /** `keep` by label, without looking the entry up: for filters of hidden items and ids only. */
  allow?: (label: number) => boolean;
  /** Labels passing `keep`, when the filter was scanned up front. */
  labels?: number[];
  /** How many items can be returned at most. */
  count: number;
}

export async function openHnswIndex(options: HnswIndexOptions): Promise<VectorIndex> {
  const { dim, dir } = options;
  checkDim(dim);
  const capacity = options.capacity ?? DEFAULT_CAPACITY;
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  const meta = dir === undefined ? undefined : await readMeta(dir);
  if (meta !== undefined && meta.dim !== dim) {
    throw new RangeError(`the hnsw index in ${dir} holds ${meta.dim}-d vectors, asked to open it for ${dim}-d; use another folder or the same dim`);
  }
  const params = resolveHnswParams(meta === undefined ? options.params : { ...options.params, m: meta.m, efConstruction: meta.efConstruction });
  const graph = new hnswlib.HierarchicalNSW('ip', dim);
  const byId = new Map<string, Entry>();
  const byLabel = new Map<number, Entry>();
  let nextLabel = 0;
  if (meta === undefined || dir === undefined) {
    graph.initIndex({ maxElements: capacity, m: params.m, efConstruction: params.efConstruction, randomSeed: RANDOM_SEED, allowReplaceDeleted: true });
  } else {
    graph.readIndexSync(join(dir, meta.graphFile), true);
    if (graph.getNumDimensions() !== dim) throw new Error(`${join(dir, meta.graphFile)} holds ${graph.getNumDimensions()}-d vectors, its sidecar says ${dim}`);
    for (const [label, id, categories, hidden, publishedAt, attributes] of meta.items) {
      const entry: Entry = { id, label, ...fields({ categories: categories ?? undefined, hidden, publishedAt: publishedAt ?? undefined, ...(attributes ? { attributes } : {}) }) };
      byId.set(id, entry);
      byLabel.set(label, entry);
    }
    nextLabel = meta.nextLabel;
  }
  return new HnswIndex(dim, dir, params, graph, byId, byLabel, nextLabel);
}

/** The filter fields of an item as stored (absent when default, arrays copied). */
function fields(item: Pick<IndexedItem, 'categories' | 'hidden' | 'publishedAt' | 'attributes'>): Omit<Entry, 'id' | 'label'> {
  const out: Omit<Entry, 'id' | 'label'> = {};
  if (item.categories !== undefined && item.categories.length > 0) out.categories = Object.freeze([...item.categories]);
  if (item.hidden === true) out.hidden = true;
  if (item.publishedAt !== undefined) out.publishedAt = item.publishedAt;
  if (item.attributes !== undefined && Object.keys(item.attributes).length > 0) out.attributes = Object.freeze({ ...item.attributes });
  return out;
}

class HnswIndex implements VectorIndex {
  readonly kind = 'hnsw' as const;
  #graph: HierarchicalNSW | undefined;
  /** Labels of the hidden items. */
  #hidden: Set<number>;

  constructor(
    readonly dim: number,
    private readonly dir: string | undefined,
    private readonly params: HnswParams,
    graph: HierarchicalNSW,
    private readonly byId: Map<string, Entry>,
    private readonly byLabel: Map<number, Entry>,
    private nextLabel: number,
  ) {
    this.#graph = graph;
    this.#hidden = new Set([...byId.values()].filter((e) => e.hidden === true).map((e) => e.label));
  }

  async upsert(items: readonly IndexedItem[]): Promise<void> {
    const graph = this.open();
    checkItems(items, this.dim);
    const batch = lastPerId(items);
    this.reserve(batch.filter((item) => !this.byId.has(item.id)).length);
    for (const item of batch) {
      const old = this.byId.get(item.id);
      // An existing label is updated in place (hnswlib re-links the point: updatePoint); a new one
      // takes the slot of a deleted item when there is one (replaceDeleted).
      const label = old?.label ?? this.nextLabel++;
      graph.addPoint(Array.from(item.vector), label, old === undefined);
      const entry: Entry = { id: item.id, label, ...fields(item) };
      if (entry.hidden === true) this.#hidden.add(label);
      else this.#hidden.delete(label);
      this.byId.set(item.id, entry);
      this.byLabel.set(label, entry);
    }
  }

  async delete(ids: readonly string[]): Promise<void> {
    const graph = this.open();
    for (const id of ids) {
      const entry = this.byId.get(id);
      if (entry === undefined) continue;
      graph.markDelete(entry.label);
      this.#hidden.delete(entry.label);
      this.byId.delete(id);
      this.byLabel.delete(entry.label);
    }
  }

  async search(query: Float32Array, k: number, filter?: VectorFilter): Promise<VectorHit[]> {
    const [hits] = await this.searchMany([query], k, filter);
    return hits ?? [];
  }

  async searchMany(queries: readonly Float32Array[], k: number, filter?: VectorFilter): Promise<VectorHit[][]> {
    this.open();
    checkK(k);
    for (const query of queries) checkQuery(query, this.dim);
    const plan = this.plan(filter);
    return queries.map((query) => this.searchOne(query, Math.min(k, plan.count), plan));
  }

  async stats(): Promise<{ count: number; dim: number; kind: 'hnsw' }> {
    this.open();
    return { count: this.byId.size, dim: this.dim, kind: this.kind };
  }

  async close(): Promise<void> {
    const graph = this.#graph;
    if (graph === undefined) return;
    if (this.dir !== undefined) await this.save(graph, this.dir);
    this.#graph = undefined;
  }

  private open(): HierarchicalNSW {
    if (this.#graph === undefined) throw new Error('the hnsw index is closed');
    return this.#graph;
  }

  /** Grows the graph so that `added` new items fit (deleted slots are reused first). */
  private reserve(added: number): void {
    const graph = this.open();
    const slots = Math.max(graph.getCurrentCount(), this.byId.size + added);
    const max = graph.getMaxElements();
    if (slots > max) graph.resizeIndex(Math.max(slots, 2 * max));
  }

  /**
   * Decides how a filter is applied: not at all when it keeps every live item; through the graph
   * search's callback when only the hidden rule applies (the count of hidden items is kept, so
   * no scan is needed); otherwise by an up-front scan of the items, to know how many match and
   * to search them exactly when few do.
   */
  private plan(filter: VectorFilter | undefined): Plan {
    const live = this.byId.size;
    const hidden = this.#hidden;
    const hideHidden = (filter?.excludeHidden ?? true) && hidden.size > 0;
    if (onlyHiddenRule({ ...filter, excludeIds: [] })) {
      // Hidden items and a list of ids out: how many pass is known without visiting every item,
      // and the graph walk checks a label against two sets instead of the item's fields.
      const out = new Set<number>();
      for (const id of filter?.excludeIds ?? []) {
        const entry = this.byId.get(id);
        if (entry !== undefined && !(hideHidden && hidden.has(entry.label))) out.add(entry.label);
      }
      const count = live - (hideHidden ? hidden.size : 0) - out.size;
      if (count === live) return { count };
      const allow = (label: number): boolean => !out.has(label) && !(hideHidden && hidden.has(label));
      if (count > EXACT_MAX_MATCHES) return { keep: compileFilter(filter), allow, count };
    }
    const keep = compileFilter(filter);
    const labels = this.labelsPassing(keep);
    return { keep, labels, count: labels.length };
  }

  private labelsPassing(keep: FilterPredicate | undefined): number[] {
    const labels: number[] = [];
    for (const entry of this.byLabel.values()) if (keep === undefined || keep(entry)) labels.push(entry.label);
    return labels;
  }

  private searchOne(query: Float32Array, want: number, plan: Plan): VectorHit[] {
    if (want === 0) return [];
    const selective = plan.labels !== undefined && plan.labels.length <= EXACT_MAX_MATCHES && plan.labels.length <= EXACT_MAX_SHARE * this.byId.size;
    if (selective && plan.labels !== undefined) return this.exact(query, want, plan.labels);
    const hits = this.approximate(query, want, plan);
    // hnswlib may come back short (a filter that cuts the graph apart): the exact answer over
    // the matching items is the fallback.
    if (hits.length >= want) return hits;
    return this.exact(query, want, plan.labels ?? this.labelsPassing(plan.keep));
  }

  private approximate(query: Float32Array, k: number, plan: Plan): VectorHit[] {
    const graph = this.open();
    graph.setEf(searchEf(this.params.ef, k));
    const { keep } = plan;
    const callback = plan.allow ?? (keep === undefined ? undefined : (label: number): boolean => {
      const entry = this.byLabel.get(label);
      return entry !== undefined && keep(entry);
    });
    const { neighbors, distances } = graph.searchKnn(Array.from(query), k, callback);
    const hits: VectorHit[] = [];
    neighbors.forEach((label, i) => {
      const entry = this.byLabel.get(label);
      // hnswlib's inner-product distance is 1 − ⟨q, x⟩.
      if (entry !== undefined) hits.push({ id: entry.id, score: 1 - (distances[i] ?? 1) });
    });
    return hits.sort(byScore);
  }

  private exact(query: Float32Array, k: number, labels: readonly number[]): VectorHit[] {
    const graph = this.open();
    const hits: VectorHit[] = [];
    for (const label of labels) {
      const entry = this.byLabel.get(label);
      if (entry !== undefined) hits.push({ id: entry.id, score: innerProduct(query, graph.getPoint(label)) });
    }
    return hits.sort(byScore).slice(0, k);
  }

  /**
   * Writes the graph under a fresh name, then the sidecar naming it (temporary file, fsync,
   * rename: the rename is the commit), then removes older graphs. A crash at any point leaves
   * the previous save loadable.
   */
  private async save(graph: HierarchicalNSW, dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const graphFile = `${GRAPH_PREFIX}${Date.now()}-${randomUUID().slice(0, 8)}.bin`;
    graph.writeIndexSync(join(dir, `${graphFile}.tmp`));
    await syncFile(join(dir, `${graphFile}.tmp`));
    await rename(join(dir, `${graphFile}.tmp`), join(dir, graphFile));
    const meta: Meta = {
      format: META_FORMAT,
      dim: this.dim,
      m: this.params.m,
      efConstruction: this.params.efConstruction,
      graphFile,
      nextLabel: this.nextLabel,
      items: [...this.byLabel.values()].map((e): Meta['items'][number] => {
        const categories = e.categories === undefined ? null : [...e.categories];
        return e.attributes
          ? [e.label, e.id, categories, e.hidden === true, e.publishedAt ?? null, { ...e.attributes }]
          : [e.label, e.id, categories, e.hidden === true, e.publishedAt ?? null];
      }),
    };
    await writeFileAtomic(join(dir, META_FILE), JSON.stringify(meta));
    await syncFile(dir);
    for (const name of await readdir(dir)) {
      if (name.startsWith(GRAPH_PREFIX) && name !== graphFile) await rm(join(dir, name), { force: true });
    }
  }
}

async function readMeta(dir: string): Promise<Meta | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, META_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const meta = JSON.parse(text) as Partial<Meta>;
  if (meta.format !== META_FORMAT || typeof meta.dim !== 'number' || typeof meta.graphFile !== 'string' || !Array.isArray(meta.items)) {
    throw new Error(`${join(dir, META_FILE)} is not a Kestrel hnsw index sidecar (format ${META_FORMAT})`);
  }
  return meta as Meta;
}

async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await open(tmp, 'w');
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

async function syncFile(path: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}
