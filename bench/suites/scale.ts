// The retrieval scale run (issue 5): the VectorIndex adapters (hnsw in process, Milvus when one
// answers) on a synthetic catalog of N = 100k and 1M 64-d items. Per N and adapter it measures
// the build (time to upsert every item, plus flush() for Milvus, which returns once searches go
// through the HNSW index), memory (Node RSS/heap delta after a GC for hnsw; the Milvus server's
// VmRSS before and after), the latency of one search at a time (p50/p99 over 200 user-like
// queries, k = 100 and 1,000, default filter and a category filter), and recall@100 against an
// exact brute force computed in a streaming pass over the same catalog.
//
// The catalog is generated from a seed in fixed batches, so no pass holds it all: 256 Gaussian
// clusters (unit centres, per-dimension noise σ = CLUSTER_NOISE, so an item's cosine to its
// centre is about 0.7, as trained embeddings cluster by topic), L2-normalised; 1–3 of 50
// categories per item (the first one tied to the cluster, as topics and categories go together);
// 1% hidden. Env: KESTREL_SCALE_SIZES (default "100000,1000000"), KESTREL_SCALE_ADAPTERS (default
// "hnsw,milvus"), KESTREL_SCALE_MILVUS_SIZES (sizes Milvus runs at; default: all), MILVUS_ADDRESS.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openHnswIndex } from '../../core/retrieval/hnsw-index.ts';
import { openMilvusIndex } from '../../core/retrieval/milvus-index.ts';
import type { MilvusVectorIndex } from '../../core/retrieval/milvus-index.ts';
import { DEFAULT_HNSW_PARAMS, EF_PER_K, exactSearch, recallAt } from '../../core/retrieval/vector-index.ts';
import type { IndexedItem, VectorFilter, VectorHit, VectorIndex } from '../../core/retrieval/vector-index.ts';
import { quantile } from '../harness.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';
import { gaussian, mulberry32 } from '../../test/support/random.ts';

const DIM = 64;
const SEED = 5;
const CLUSTERS = 256;
const CLUSTER_NOISE = 0.125;
const CATEGORIES = 50;
/** The first category of an item is its cluster's with this probability, else a random one. */
const CATEGORY_FOLLOWS_CLUSTER = 0.7;
const HIDDEN_SHARE = 0.01;
/** Items generated (and upserted) per batch: every pass uses the same batches. */
const BATCH = 10_000;
const QUERIES = 200;
const WARMUP_QUERIES = 10;
const KS = [100, 1_000] as const;
const RECALL_K = 100;
/** Recall queries × items in the exact pass stay under this (200 queries at 100k, 20 at 1M). */
const EXACT_PAIRS = 20_000_000;
/** Up to this N the streaming brute force is also checked against exactSearch. */
const CROSS_CHECK_MAX_N = 20_000;
const MILVUS = process.env.MILVUS_ADDRESS ?? '127.0.0.1:19530';
const MILVUS_PID_FILE = new URL('../../.infra/milvus/milvus.pid', import.meta.url);
const MIB = 1024 * 1024;

type Adapter = 'hnsw' | 'milvus';
type FilterName = 'default' | 'category';

function normalise(v: Float32Array): Float32Array {
  let n2 = 0;
  for (const x of v) n2 += x * x;
  const inv = 1 / Math.sqrt(n2);
  for (let j = 0; j < v.length; j++) v[j] = (v[j] as number) * inv;
  return v;
}

const category = (c: number): string => `c${c}`;

class Catalog {
  readonly centres: Float32Array[];

  constructor(readonly n: number, readonly seed: number) {
    const rng = mulberry32(seed);
    this.centres = Array.from({ length: CLUSTERS }, () => normalise(Float32Array.from({ length: DIM }, () => gaussian(rng))));
  }

  /** Items [start, start + BATCH) ∩ [0, n); the same items on every call. */
  batch(start: number): IndexedItem[] {
    const rng = mulberry32(this.seed * 7919 + start + 1);
    const count = Math.min(BATCH, this.n - start);
    const vectors = new Float32Array(count * DIM);
    const items: IndexedItem[] = [];
    for (let i = 0; i < count; i++) {
      const cluster = Math.floor(rng() * CLUSTERS);
      const centre = this.centres[cluster] as Float32Array;
      const v = vectors.subarray(i * DIM, (i + 1) * DIM);
      for (let j = 0; j < DIM; j++) v[j] = (centre[j] as number) + CLUSTER_NOISE * gaussian(rng);
      normalise(v);
      const cats = new Set<string>([category(rng() < CATEGORY_FOLLOWS_CLUSTER ? cluster % CATEGORIES : Math.floor(rng() * CATEGORIES))]);
      const extra = Math.floor(rng() * 3);
      for (let e = 0; e < extra; e++) cats.add(category(Math.floor(rng() * CATEGORIES)));
      const item: IndexedItem = { id: `item-${start + i}`, vector: v, categories: [...cats] };
      if (rng() < HIDDEN_SHARE) item.hidden = true;
      items.push(item);
    }
    return items;
  }

  *batches(): Generator<IndexedItem[]> {
    for (let start = 0; start < this.n; start += BATCH) yield this.batch(start);
  }
}

interface Query {
  vector: Float32Array;
  /** The category filter of this query: the categories of two of its clusters. */
  categories: string[];
}

/** A user-like query: 2–5 cluster centres with random weights, plus noise, normalised. */
function makeQueries(catalog: Catalog, count: number, seed: number): Query[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, () => {
    const mix = 2 + Math.floor(rng() * 4);
    const v = new Float32Array(DIM);
    const clusters: number[] = [];
    for (let m = 0; m < mix; m++) {
      const c = Math.floor(rng() * CLUSTERS);
      clusters.push(c);
      const w = 0.2 + rng();
      const centre = catalog.centres[c] as Float32Array;
      for (let j = 0; j < DIM; j++) v[j] = (v[j] as number) + w * (centre[j] as number);
    }
    for (let j = 0; j < DIM; j++) v[j] = (v[j] as number) + CLUSTER_NOISE * gaussian(rng);
    return { vector: normalise(v), categories: [...new Set(clusters.slice(0, 2).map((c) => category(c % CATEGORIES)))] };
  });
}

function filterOf(query: Query, name: FilterName): VectorFilter {
  return name === 'default' ? {} : { categoriesAny: query.categories };
}

/** Exact top k by inner product (float64 sums), kept in a buffer pruned when it fills. */
class TopK {
  #scores: number[] = [];
  #ids: number[] = [];
  #floor = -Infinity;

  constructor(private readonly k: number) {}

  push(score: number, id: number): void {
    if (score < this.#floor) return;
    this.#scores.push(score);
    this.#ids.push(id);
    if (this.#scores.length >= 4 * this.k) this.prune();
  }

  hits(): VectorHit[] {
    this.prune();
    return this.#ids.map((id, i) => ({ id: `item-${id}`, score: this.#scores[i] as number }));
  }

  private prune(): void {
    const order = this.#scores.map((_, i) => i).sort((a, b) => (this.#scores[b] as number) - (this.#scores[a] as number)).slice(0, this.k);
    this.#scores = order.map((i) => this.#scores[i] as number);
    this.#ids = order.map((i) => this.#ids[i] as number);
    if (this.#scores.length >= this.k) this.#floor = this.#scores[this.k - 1] as number;
  }
}

/** Exact top RECALL_K per query and filter, in one streaming pass over the catalog. */
function groundTruth(catalog: Catalog, queries: readonly Query[]): Record<FilterName, VectorHit[][]> {
  const tops = { default: queries.map(() => new TopK(RECALL_K)), category: queries.map(() => new TopK(RECALL_K)) };
  const wanted = queries.map((q) => new Set(q.categories));
  let index = 0;
  for (const items of catalog.batches()) {
    for (const item of items) {
      if (item.hidden !== true) {
        const cats = item.categories ?? [];
        queries.forEach((q, qi) => {
          let s = 0;
          for (let j = 0; j < DIM; j++) s += (q.vector[j] as number) * (item.vector[j] as number);
          tops.default[qi]?.push(s, index);
          const want = wanted[qi] as Set<string>;
          if (cats.some((c) => want.has(c))) tops.category[qi]?.push(s, index);
        });
      }
      index++;
    }
  }
  return { default: tops.default.map((t) => t.hits()), category: tops.category.map((t) => t.hits()) };
}

/** The streaming brute force must agree with exactSearch (small N only: it needs every item). */
function crossCheck(catalog: Catalog, queries: readonly Query[], truth: Record<FilterName, VectorHit[][]>): number {
  const items = [...catalog.batches()].flat();
  let mismatches = 0;
  queries.slice(0, 5).forEach((q, qi) => {
    for (const name of ['default', 'category'] as const) {
      const ref = exactSearch(items, q.vector, RECALL_K, filterOf(q, name)).map((h) => h.id).join(',');
      if (ref !== (truth[name][qi] ?? []).map((h) => h.id).join(',')) mismatches++;
    }
  });
  return mismatches;
}

/** A GC before reading memory: global.gc under --expose-gc, else V8's flag set at run time. */
function collector(): { gc: () => void; how: string } {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return { gc: exposed, how: 'node --expose-gc' };
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return { gc: () => { (gc as () => void)(); }, how: 'v8.setFlagsFromString("--expose-gc") at run time (the bench runner has no flag)' };
  } catch {
    // fall through: no GC available
  }
  return { gc: () => undefined, how: 'none (no GC before reading memory: the deltas include garbage)' };
}

function milvusRssMib(): number | undefined {
  try {
    const pid = readFileSync(MILVUS_PID_FILE, 'utf8').trim();
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]) / 1024;
  } catch {
    return undefined;
  }
}

function label(n: number): string {
  return n >= 1_000_000 && n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n >= 1_000 && n % 1_000 === 0 ? `${n / 1_000}k` : String(n);
}

function listEnv(name: string, fallback: string): string[] {
  return (process.env[name] ?? fallback).split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function sizesEnv(name: string, fallback: string): number[] {
  return listEnv(name, fallback).map((s) => {
    const n = Number(s.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must list positive integers, got '${s}'`);
    return n;
  });
}

/** One search at a time over every query for each k and filter; p50/p99 and recall@100 rows. */
async function measureSearch(index: VectorIndex, name: string, queries: readonly Query[], warmup: readonly Query[], truth: Record<FilterName, VectorHit[][]>): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const k of KS) {
    for (const filter of ['default', 'category'] as const) {
      for (const q of warmup) await index.search(q.vector, k, filterOf(q, filter));
      const samples: number[] = [];
      const answers: VectorHit[][] = [];
      for (const q of queries) {
        const t0 = performance.now();
        const hits = await index.search(q.vector, k, filterOf(q, filter));
        samples.push(performance.now() - t0);
        if (k === RECALL_K && answers.length < truth[filter].length) answers.push(hits);
      }
      samples.sort((a, b) => a - b);
      rows.push({ name, metric: `p50 k=${k} ${filter}`, value: quantile(samples, 0.5), unit: 'ms' });
      rows.push({ name, metric: `p99 k=${k} ${filter}`, value: quantile(samples, 0.99), unit: 'ms' });
      if (k === RECALL_K) rows.push({ name, metric: `recall@${RECALL_K} ${filter}`, value: recallAt(RECALL_K, answers, truth[filter]), unit: 'ratio' });
    }
  }
  return rows;
}

async function runHnsw(catalog: Catalog, name: string, gc: () => void, measure: (index: VectorIndex) => Promise<BenchRow[]>): Promise<BenchRow[]> {
  gc();
  const before = process.memoryUsage();
  // Capacity N up front: a catalog's size is known when its index is built, and growing by
  // doubling would copy the graph log2(N / 1024) times.
  const index = await openHnswIndex({ dim: DIM, capacity: catalog.n });
  try {
    const t0 = performance.now();
    for (const items of catalog.batches()) await index.upsert(items);
    const buildS = (performance.now() - t0) / 1000;
    gc();
    const after = process.memoryUsage();
    return [
      { name, metric: 'build', value: buildS, unit: 's' },
      { name, metric: 'build rate', value: catalog.n / buildS, unit: 'items/s' },
      { name, metric: 'node rss delta', value: (after.rss - before.rss) / MIB, unit: 'MiB' },
      { name, metric: 'node heap delta', value: (after.heapUsed - before.heapUsed) / MIB, unit: 'MiB' },
      ...(await measure(index)),
    ];
  } finally {
    await index.close();
  }
}

const liveMilvus = new Set<MilvusVectorIndex>();

async function runMilvus(catalog: Catalog, name: string, index: MilvusVectorIndex, measure: (index: VectorIndex) => Promise<BenchRow[]>): Promise<BenchRow[]> {
  const before = milvusRssMib();
  const t0 = performance.now();
  for (const items of catalog.batches()) await index.upsert(items);
  const insertS = (performance.now() - t0) / 1000;
  await index.flush();
  const buildS = (performance.now() - t0) / 1000;
  const after = milvusRssMib();
  const rows: BenchRow[] = [
    { name, metric: 'build', value: buildS, unit: 's' },
    { name, metric: 'build rate', value: catalog.n / buildS, unit: 'items/s' },
    { name, metric: 'upsert calls (incl. adapter flushes)', value: insertS, unit: 's' },
  ];
  if (before !== undefined && after !== undefined) {
    rows.push({ name, metric: 'server rss before', value: before, unit: 'MiB' });
    rows.push({ name, metric: 'server rss after', value: after, unit: 'MiB' });
    rows.push({ name, metric: 'server rss delta', value: after - before, unit: 'MiB' });
  }
  return [...rows, ...(await measure(index))];
}

async function dropAll(): Promise<void> {
  for (const index of liveMilvus) {
    liveMilvus.delete(index);
    await index.drop().catch((error: unknown) => { console.error(`scale: could not drop a Milvus collection: ${String(error)}`); });
  }
}

/** Prints an adapter's rows as soon as they are in (a long run that is stopped keeps them). */
function report(rows: BenchRow[]): BenchRow[] {
  for (const r of rows) console.log(`  ${r.name}  ${r.metric}  ${r.value.toPrecision(4)} ${r.unit}`);
  return rows;
}

/** Growth from the smallest to the largest N, per adapter and metric. */
function growth(rows: readonly BenchRow[], sizes: readonly number[], adapters: readonly Adapter[]): Record<string, string> {
  const out: Record<string, string> = {};
  const lo = Math.min(...sizes);
  const hi = Math.max(...sizes);
  if (lo === hi) return out;
  for (const adapter of adapters) {
    const at = (n: number) => new Map(rows.filter((r) => r.name === `${adapter} ${label(n)}`).map((r) => [r.metric, r.value]));
    const a = at(lo);
    const b = at(hi);
    const ratios = [...a].filter(([m]) => b.has(m) && !m.startsWith('server rss before')).map(([m, v]) => `${m} ×${((b.get(m) ?? Number.NaN) / v).toFixed(2)}`);
    if (ratios.length > 0) out[`growth ${adapter} ${label(lo)}→${label(hi)} (N ×${hi / lo})`] = ratios.join('; ');
  }
  return out;
}

export const suite: BenchSuite = {
  description: 'VectorIndex at scale: build time, memory, search p50/p99 and recall@100 over a synthetic 64-d catalog (issue 5)',
  async run(notes) {
    const sizes = sizesEnv('KESTREL_SCALE_SIZES', '100000,1000000');
    const milvusSizes = new Set(sizesEnv('KESTREL_SCALE_MILVUS_SIZES', sizes.join(',')));
    const adapters = listEnv('KESTREL_SCALE_ADAPTERS', 'hnsw,milvus').map((a) => {
      if (a !== 'hnsw' && a !== 'milvus') throw new RangeError(`KESTREL_SCALE_ADAPTERS lists hnsw and/or milvus, got '${a}'`);
      return a;
    });
    const { gc, how } = collector();
    Object.assign(notes, {
      sizes: sizes.join(', '),
      adapters: adapters.join(', '),
      catalog: `${DIM}-d, L2-normalised; ${CLUSTERS} Gaussian clusters around random unit centres, per-dim noise σ=${CLUSTER_NOISE} (cosine to centre ≈ 0.7), cluster drawn uniformly; 1–3 of ${CATEGORIES} categories per item (first = cluster's with p=${CATEGORY_FOLLOWS_CLUSTER}); ${HIDDEN_SHARE * 100}% hidden; seed ${SEED}, generated in batches of ${BATCH.toLocaleString('en')}`,
      queries: `${QUERIES} per (k, filter), one search at a time after ${WARMUP_QUERIES} warm-up searches; each a weighted mix of 2–5 cluster centres + noise, normalised`,
      filters: "default = hidden excluded; category = hidden excluded + categoriesAny of the categories of two of the query's clusters (1–2 of 50)",
      recall: `recall@${RECALL_K} of the k=${RECALL_K} searches against an exact float64 brute force streamed over the catalog, on the first min(${QUERIES}, ${EXACT_PAIRS.toExponential(0)}/N) queries`,
      hnsw: `hnswlib-node, M ${DEFAULT_HNSW_PARAMS.m}, efConstruction ${DEFAULT_HNSW_PARAMS.efConstruction}, ef = max(${DEFAULT_HNSW_PARAMS.ef}, ${EF_PER_K}·k); capacity N up front; memory = Node process delta after a GC`,
      gc: how,
      milvus: `Milvus 2.3 standalone at ${MILVUS}, HNSW/IP same M/efConstruction, ef = max(${DEFAULT_HNSW_PARAMS.ef}, ${EF_PER_K}·k) (×4 with a category filter); searches with consistency Session (as core/serving/host.ts); build = upserts (the adapter flushes every 10,000 rows) + flush() until the query node serves every row from HNSW segments; memory = server VmRSS`,
      machine: '2 cores shared with other work (runs are noisy); one search at a time',
    });
    const rows: BenchRow[] = [];
    process.once('SIGINT', () => { void dropAll().finally(() => process.exit(130)); });
    process.once('SIGTERM', () => { void dropAll().finally(() => process.exit(143)); });
    try {
      for (const n of sizes) {
        const catalog = new Catalog(n, SEED);
        const queries = makeQueries(catalog, QUERIES, SEED + 1);
        const warmup = makeQueries(catalog, WARMUP_QUERIES, SEED + 2);
        const recallQueries = Math.max(1, Math.min(QUERIES, Math.floor(EXACT_PAIRS / n)));
        const t0 = performance.now();
        const truth = groundTruth(catalog, queries.slice(0, recallQueries));
        notes[`exact pass ${label(n)}`] = `${recallQueries} queries, ${((performance.now() - t0) / 1000).toFixed(1)} s`;
        if (n <= CROSS_CHECK_MAX_N) notes[`exact cross-check ${label(n)}`] = `${crossCheck(catalog, queries, truth)} of 10 top-${RECALL_K} lists differ from exactSearch`;
        const measure = (index: VectorIndex, name: string) => measureSearch(index, name, queries, warmup, truth);
        for (const adapter of adapters) {
          const name = `${adapter} ${label(n)}`;
          console.log(`scale: ${name}…`);
          if (adapter === 'hnsw') {
            rows.push(...report(await runHnsw(catalog, name, gc, (index) => measure(index, name))));
            continue;
          }
          if (!milvusSizes.has(n)) {
            notes[`skipped ${name}`] = 'not in KESTREL_SCALE_MILVUS_SIZES';
            continue;
          }
          let index: MilvusVectorIndex;
          try {
            index = await openMilvusIndex({ address: MILVUS, collection: `kestrel_scale_${n}_${Date.now().toString(36)}`, dim: DIM, consistency: 'Session', timeoutMs: 120_000 });
          } catch (error) {
            notes[`skipped ${name}`] = `Milvus did not answer at ${MILVUS}: ${error instanceof Error ? error.message : String(error)}`;
            continue;
          }
          liveMilvus.add(index);
          try {
            rows.push(...report(await runMilvus(catalog, name, index, (i) => measure(i, name))));
          } finally {
            await dropAll();
          }
        }
      }
    } finally {
      await dropAll();
    }
    Object.assign(notes, growth(rows, sizes, adapters));
    return rows;
  },
};
