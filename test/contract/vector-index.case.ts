// The VectorIndex contract (core/retrieval/vector-index.ts), run against every adapter like
// event-bus.case.ts: each adapter's test file calls runVectorIndexContract with a factory.
// Every answer is checked against exactSearch over the same items: recall of the ANN top 100 on
// random unit vectors, and exact equality on small sets where every match must come back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactSearch, innerProduct, matchesFilter, recallAt } from '../../core/retrieval/vector-index.ts';
import type { IndexedItem, VectorFilter, VectorHit, VectorIndex } from '../../core/retrieval/vector-index.ts';
import { freshSeed, mulberry32, randomUnitVectors } from '../support/random.ts';
import type { Rng } from '../support/random.ts';

export type VectorIndexCase =
  | 'empty' | 'dimension' | 'upsert-replaces' | 'delete' | 'filters' | 'k-over-matches' | 'search-many' | 'recall';

export interface VectorIndexContract {
  name: string;
  /** A new, empty index of `dim`; `name` is unique per call (a collection, a folder). */
  newIndex: (name: string, dim: number) => Promise<VectorIndex>;
  /** Releases an index a case made (close; drop for a server). */
  dispose: (index: VectorIndex) => Promise<void>;
  /** Items in the recall case (at least 10,000). */
  recallItems?: number;
  /** Cases not to run, each with the reason. */
  skip?: Partial<Record<VectorIndexCase, string>>;
}

const DIM = 64;
const SMALL_DIM = 16;
const RECALL_K = 100;
const RECALL_QUERIES = 50;
const MIN_RECALL = 0.95;
const SCORE_TOLERANCE = 1e-4;
/** Category names that need escaping in a Milvus `like` pattern or string literal. */
const CATEGORIES = ['news', 'sport', 'sci_fi', 'sci-fi', 'a|b', '100%', 'quote"d', 'back\\slash'];

/** Items of `dim` with mixed filter fields: every 7th hidden, every 5th of unknown age. */
const BRANDS = ['acme', 'zeta', 'omni'] as const;

export function makeItems(n: number, dim: number, rng: Rng, prefix = 'item'): IndexedItem[] {
  const vectors = randomUnitVectors(n, dim, rng);
  return Array.from({ length: n }, (_, i) => {
    const categories = CATEGORIES.filter(() => rng() < 0.3);
    const item: IndexedItem = { id: `${prefix}-${i}`, vector: vectors.slice(i * dim, (i + 1) * dim), categories };
    if (i % 7 === 3) item.hidden = true;
    if (i % 5 !== 0) item.publishedAt = 1_700_000_000_000 + Math.floor(rng() * 1_000_000);
    // Attributes of both types, a price stored as text on some items, and a key that needs escaping.
    if (i % 4 !== 0) item.attributes = { brand: BRANDS[i % BRANDS.length] ?? 'acme', price: i % 11 === 0 ? '10' : 10 * (i % 3) };
    if (i % 9 === 0) item.attributes = { ...item.attributes, 'we"ird key': 'x' };
    return item;
  });
}

function queriesOf(n: number, dim: number, rng: Rng): Float32Array[] {
  const flat = randomUnitVectors(n, dim, rng);
  return Array.from({ length: n }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
}

/** Hits sorted by score descending, each score the exact inner product of its item. */
function expectScored(hits: readonly VectorHit[], byId: ReadonlyMap<string, IndexedItem>, query: Float32Array, where: string): void {
  hits.forEach((hit, i) => {
    const item = byId.get(hit.id);
    expect(item, `${where}: unknown id ${hit.id}`).toBeDefined();
    if (item !== undefined) expect(Math.abs(hit.score - innerProduct(query, item.vector)), `${where}: score of ${hit.id}`).toBeLessThanOrEqual(SCORE_TOLERANCE);
    const prev = hits[i - 1];
    if (prev !== undefined) expect(hit.score, `${where}: order at ${i}`).toBeLessThanOrEqual(prev.score);
  });
}

function ids(hits: readonly VectorHit[]): string[] {
  return hits.map((h) => h.id);
}

export function runVectorIndexContract(contract: VectorIndexContract): void {
  const { skip = {} } = contract;
  const run = (c: VectorIndexCase) => (skip[c] === undefined ? it : it.skip);
  let made = 0;
  const fresh = async (dim: number): Promise<VectorIndex> => contract.newIndex(`c${Date.now().toString(36)}_${made++}`, dim);

  describe(`VectorIndex contract: ${contract.name}`, () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const open: VectorIndex[] = [];
    const track = async (dim: number): Promise<VectorIndex> => {
      const index = await fresh(dim);
      open.push(index);
      return index;
    };

    afterAll(async () => {
      for (const index of open) await contract.dispose(index);
    }, 120_000);

    run('empty')('an empty index answers no hits', async () => {
      const index = await track(SMALL_DIM);
      const [q] = queriesOf(1, SMALL_DIM, rng);
      if (q === undefined) throw new Error('no query');
      expect(await index.search(q, 10)).toEqual([]);
      expect(await index.searchMany([q, q], 10, { categoriesAny: ['news'] })).toEqual([[], []]);
      expect(await index.stats()).toEqual({ count: 0, dim: SMALL_DIM, kind: index.kind });
    });

    run('dimension')('rejects a query or an item of the wrong dimension with a RangeError', async () => {
      const index = await track(SMALL_DIM);
      await index.upsert(makeItems(5, SMALL_DIM, rng));
      await expect(index.search(new Float32Array(SMALL_DIM - 1), 3)).rejects.toThrow(RangeError);
      await expect(index.search(new Float32Array(SMALL_DIM + 1), 3)).rejects.toThrow(/dims/);
      await expect(index.searchMany([new Float32Array(SMALL_DIM), new Float32Array(3)], 3)).rejects.toThrow(RangeError);
      await expect(index.upsert([{ id: 'short', vector: new Float32Array(SMALL_DIM - 1) }])).rejects.toThrow(RangeError);
      await expect(index.search(new Float32Array(SMALL_DIM), -1)).rejects.toThrow(RangeError);
      expect((await index.stats()).count).toBe(5);
    });

    run('upsert-replaces')('upsert replaces an item\'s vector and fields', async () => {
      const index = await track(SMALL_DIM);
      const items = makeItems(200, SMALL_DIM, rng);
      await index.upsert(items);
      const [v1, v2] = queriesOf(2, SMALL_DIM, rng);
      if (v1 === undefined || v2 === undefined) throw new Error('no vectors');
      await index.upsert([{ id: 'target', vector: v1, categories: ['old'] }]);
      let top = await index.search(v1, 1);
      expect(top[0]?.id).toBe('target');
      expect(top[0]?.score).toBeCloseTo(1, 4);

      await index.upsert([{ id: 'target', vector: v2, categories: ['new'], publishedAt: 5 }]);
      expect((await index.stats()).count).toBe(201);
      top = await index.search(v2, 1);
      expect(top[0]?.id).toBe('target');
      expect(top[0]?.score).toBeCloseTo(1, 4);
      // Searching the old vector: the target scores as its new vector does, wherever it ranks.
      const all = await index.search(v1, 201, { excludeHidden: false });
      expect(all).toHaveLength(201);
      const target = all.find((h) => h.id === 'target');
      expect(target?.score).toBeCloseTo(innerProduct(v1, v2), 4);
      expect(ids(await index.search(v2, 10, { categoriesAny: ['old'] }))).toEqual([]);
      expect(ids(await index.search(v2, 10, { categoriesAny: ['new'], publishedAfter: 5 }))).toEqual(['target']);
      // The last of several entries for one id in one batch wins.
      await index.upsert([{ id: 'twice', vector: v1 }, { id: 'twice', vector: v2, hidden: true }]);
      expect(ids(await index.search(v2, 2))).not.toContain('twice');
      expect(ids(await index.search(v2, 2, { excludeHidden: false })).sort()).toEqual(['target', 'twice']);
    });

    run('delete')('delete removes items and ignores unknown ids', async () => {
      const index = await track(SMALL_DIM);
      const items = makeItems(300, SMALL_DIM, rng);
      await index.upsert(items);
      const [q] = queriesOf(1, SMALL_DIM, rng);
      if (q === undefined) throw new Error('no query');
      const before = await index.search(q, 20);
      const gone = new Set([...ids(before).slice(0, 5), 'item-0', 'item-1']);
      await index.delete([...gone, 'no-such-item']);
      const visible = items.filter((i) => !gone.has(i.id));
      expect((await index.stats()).count).toBe(300 - gone.size);
      const after = await index.search(q, 300, { excludeHidden: false });
      expect(ids(after).filter((id) => gone.has(id))).toEqual([]);
      expect(ids(after).sort()).toEqual(visible.map((i) => i.id).sort());
      // A deleted id can come back.
      const back = items.find((i) => i.id === 'item-1');
      if (back === undefined) throw new Error('fixture lacks item-1');
      await index.upsert([back]);
      expect(ids(await index.search(back.vector, 1))).toEqual(['item-1']);
    });

    describe('filters on a fixed set', () => {
      let index: VectorIndex | undefined;
      const items = makeItems(600, SMALL_DIM, mulberry32(seed ^ 0x5eed));
      const byId = new Map(items.map((i) => [i.id, i]));
      const queries = queriesOf(5, SMALL_DIM, mulberry32(seed ^ 0xbeef));
      const filters: [string, VectorFilter | undefined][] = [
        ['no filter (hidden dropped)', undefined],
        ['hidden included', { excludeHidden: false }],
        ['categoriesAny', { categoriesAny: ['sci_fi', 'a|b'] }],
        ['categoriesAny with escapes', { categoriesAny: ['100%', 'quote"d', 'back\\slash'] }],
        ['categoriesAny of an unknown category', { categoriesAny: ['sci'] }],
        ['categoriesAny empty', { categoriesAny: [] }],
        ['categoriesNone', { categoriesNone: ['news', 'sci-fi'] }],
        ['publishedAfter', { publishedAfter: 1_700_000_500_000 }],
        ['excludeIds', { excludeIds: ['item-1', 'item-2', 'item-10', 'quote"id', 'no-such'] }],
        ['everything', { categoriesAny: ['sport', 'news'], categoriesNone: ['100%'], publishedAfter: 1_700_000_200_000, excludeIds: ['item-4'], excludeHidden: false }],
        // Over the 1,024 ids that the Milvus adapter drops from its answer itself: the list goes to the server.
        ['excludeIds, 1,500 of them', { excludeIds: [...items.slice(0, 300).map((i) => i.id), ...Array.from({ length: 1_200 }, (_, n) => `gone-${n}`)] }],
        ['attributes: one value', { attributes: { brand: ['acme'] } }],
        ['attributes: two names, values of both types', { attributes: { brand: ['acme', 'zeta'], price: [10, '10'] } }],
        ['attributes: a number does not match its text', { attributes: { price: [20] } }],
        ['attributes: a key that needs escaping', { attributes: { 'we"ird key': ['x'] } }],
        ['attributes: an empty list keeps none', { attributes: { brand: [] } }],
        ['attributes with categories', { attributes: { brand: ['omni'] }, categoriesAny: ['sport'] }],
      ];
      beforeAll(async () => {
        index = await fresh(SMALL_DIM);
        open.push(index);
        await index.upsert(items);
      }, 120_000);
      const ready = (): VectorIndex => {
        if (index === undefined) throw new Error('fixture index not built (beforeAll failed)');
        return index;
      };

      run('filters').each(filters)('%s: the exact top 10 among matching items', async (_, filter) => {
        const hits = await ready().searchMany(queries, 10, filter);
        queries.forEach((q, n) => {
          const want = exactSearch(items, q, 10, filter);
          const got = hits[n] ?? [];
          expect(got.every((h) => matchesFilter(byId.get(h.id) ?? { id: h.id, hidden: true, categories: [] }, filter)), `query ${n}: a hit fails the filter`).toBe(true);
          expect(got).toHaveLength(want.length);
          expect(recallAt(10, [got], [want]), `query ${n}, seed ${seed}`).toBe(1);
          expectScored(got, byId, q, `query ${n}`);
        });
      });

      run('k-over-matches').each(filters)('%s: k over the matching count returns exactly the matches, by score', async (_, filter) => {
        const matching = items.filter((i) => matchesFilter(i, filter));
        const q = queries[0] as Float32Array;
        const got = await ready().search(q, matching.length + 50, filter);
        expect(ids(got).sort()).toEqual(matching.map((i) => i.id).sort());
        expectScored(got, byId, q, 'k over matches');
      });

      run('search-many')('searchMany answers as search does, query by query', async () => {
        for (const filter of [undefined, { categoriesAny: ['sport'] }, { categoriesAny: ['no-such-category'] }]) {
          const many = await ready().searchMany(queries, 7, filter);
          expect(many).toHaveLength(queries.length);
          for (const [n, q] of queries.entries()) expect(many[n]).toEqual(await ready().search(q, 7, filter));
        }
        expect(await ready().searchMany([], 7)).toEqual([]);
        expect(await ready().search(queries[0] as Float32Array, 0)).toEqual([]);
      });

      run('search-many')('searches sent together, each with its own k and filter, answer as one at a time', async () => {
        // Milvus sends searches that wait together, one request for those of the same filter and
        // about the same k: each must get back its own hits, k of them, with its own ids excluded.
        const asks = Array.from({ length: 48 }, (_, n) => {
          const q = queries[n % queries.length] as Float32Array;
          const k = [3, 10, 11, 40][n % 4] ?? 3;
          const filters: (VectorFilter | undefined)[] = [
            undefined,
            { categoriesAny: ['sport'] },
            { excludeIds: exactSearch(items, q, 1 + (n % 5), undefined).map((h) => h.id) },
          ];
          return { q, k, filter: filters[n % 3] };
        });
        const alone: VectorHit[][] = [];
        for (const ask of asks) alone.push(await ready().search(ask.q, ask.k, ask.filter));
        const together = await Promise.all(asks.map((ask) => ready().search(ask.q, ask.k, ask.filter)));
        expect(together).toEqual(alone);
        // A caller may reuse its query array as soon as search() returns, while the query waits.
        const reused = new Float32Array(SMALL_DIM);
        const pending = asks.map((ask) => {
          reused.set(ask.q);
          return ready().search(reused, ask.k, ask.filter);
        });
        reused.fill(0);
        expect(await Promise.all(pending)).toEqual(alone);
        asks.forEach((ask, n) => {
          const want = exactSearch(items, ask.q, ask.k, ask.filter);
          expect(together[n], `search ${n}`).toHaveLength(want.length);
          expect(recallAt(ask.k, [together[n] ?? []], [want]), `search ${n}`).toBe(1);
        });
      });
    });

    run('recall')(`reaches recall@${RECALL_K} >= ${MIN_RECALL} against exact search, scores exact`, async () => {
      const n = contract.recallItems ?? 20_000;
      expect(n).toBeGreaterThanOrEqual(10_000);
      const recallRng = mulberry32(seed ^ 0x12345);
      // One item in 7 hidden, each category on about 30% of items, 1 in 5 of unknown age (see makeItems).
      const items = makeItems(n, DIM, recallRng, 'r');
      const byId = new Map(items.map((i) => [i.id, i]));
      const queries = queriesOf(RECALL_QUERIES, DIM, recallRng);
      const index = await track(DIM);
      const started = performance.now();
      await index.upsert(items);
      console.info(`${contract.name}: upsert of ${n} items ${((performance.now() - started) / 1000).toFixed(1)} s`);
      expect((await index.stats()).count).toBe(n);
      const filters: [string, VectorFilter | undefined][] = [
        ['all items', { excludeHidden: false }],
        ['visible items', undefined],
        // The first query's 50 best visible items out: the walk must step over them.
        ['visible items, 50 ids out', { excludeIds: exactSearch(items, queries[0] as Float32Array, 50, undefined).map((h) => h.id) }],
        ['one category (~26%)', { categoriesAny: ['news'] }],
        ['two categories, recent (~12%)', { categoriesAny: ['sport'], categoriesNone: ['news'], publishedAfter: 1_700_000_300_000 }],
      ];
      for (const [label, filter] of filters) {
        const t = performance.now();
        const approx = await index.searchMany(queries, RECALL_K, filter);
        const ms = performance.now() - t;
        const exact = queries.map((q) => exactSearch(items, q, RECALL_K, filter));
        const recall = recallAt(RECALL_K, approx, exact);
        console.info(`${contract.name}: ${label}: recall@${RECALL_K} = ${recall.toFixed(4)} over ${n} random unit ${DIM}-d vectors, ${RECALL_QUERIES} queries in ${ms.toFixed(0)} ms (seed ${seed})`);
        expect(recall, `${label}, seed ${seed}`).toBeGreaterThanOrEqual(MIN_RECALL);
        approx.forEach((hits, q) => {
          expect(hits, `${label}, query ${q}`).toHaveLength(RECALL_K);
          expect(hits.every((h) => matchesFilter(byId.get(h.id) ?? { id: h.id, hidden: true }, filter)), `${label}, query ${q}: a hit fails the filter`).toBe(true);
          expectScored(hits, byId, queries[q] as Float32Array, `${label}, query ${q}`);
        });
      }
    }, 300_000);
  });
}
