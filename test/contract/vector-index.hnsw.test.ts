// The VectorIndex contract against the embedded hnswlib-node adapter, plus what only it has:
// saving to a folder on close and loading it back; and the reference helpers the contract uses.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openHnswIndex } from '../../core/retrieval/hnsw-index.ts';
import { exactSearch, matchesFilter, recallAt } from '../../core/retrieval/vector-index.ts';
import { freshSeed, mulberry32, randomUnitVectors } from '../support/random.ts';
import { makeItems, runVectorIndexContract } from './vector-index.case.ts';

const root = await mkdtemp(join(tmpdir(), 'kestrel-hnsw-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

runVectorIndexContract({
  name: 'embedded HNSW (hnswlib-node)',
  // A small starting capacity, so the cases also cross resizes.
  newIndex: (_name, dim) => openHnswIndex({ dim, capacity: 64 }),
  dispose: (index) => index.close(),
});

describe('embedded HNSW: persistence', () => {
  const seed = freshSeed();
  const rng = mulberry32(seed);
  const dim = 24;

  it('close saves to the folder and open loads the same index back', async () => {
    const dir = join(root, 'round-trip');
    const items = makeItems(3_000, dim, rng);
    const queries = Array.from({ length: 10 }, () => randomUnitVectors(1, dim, rng));
    const filters = [undefined, { categoriesAny: ['sport'] }, { publishedAfter: 1_700_000_300_000, excludeIds: ['item-7'] }];

    const index = await openHnswIndex({ dim, dir, capacity: 100 });
    await index.upsert(items);
    await index.delete(['item-3', 'item-4', 'item-5']);
    await index.upsert([{ id: 'item-6', vector: items[8]?.vector ?? new Float32Array(dim), categories: ['moved'] }]);
    const before = await Promise.all(filters.map((f) => index.searchMany(queries, 25, f)));
    await index.close();
    await index.close();
    await expect(index.search(queries[0] ?? new Float32Array(dim), 1)).rejects.toThrow(/closed/);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const reopened = await openHnswIndex({ dim, dir });
    expect(await reopened.stats()).toEqual({ count: 2_997, dim, kind: 'hnsw' });
    const after = await Promise.all(filters.map((f) => reopened.searchMany(queries, 25, f)));
    expect(after, `seed ${seed}`).toEqual(before);
    expect((await reopened.search(queries[0] ?? new Float32Array(dim), 5, { categoriesAny: ['moved'] })).map((h) => h.id)).toEqual(['item-6']);
    // Still writable after the load: new ids take fresh labels, and a second save replaces the first.
    await reopened.upsert([{ id: 'late', vector: queries[1] ?? new Float32Array(dim) }]);
    await reopened.close();
    const third = await openHnswIndex({ dim, dir });
    expect((await third.search(queries[1] ?? new Float32Array(dim), 1))[0]?.id).toBe('late');
    expect((await third.stats()).count).toBe(2_998);
    await third.close();
    expect((await readdir(dir)).filter((f) => f.startsWith('hnsw-'))).toHaveLength(1);
  });

  it('refuses to open a saved index with another dim', async () => {
    const dir = join(root, 'other-dim');
    const index = await openHnswIndex({ dim, dir });
    await index.upsert(makeItems(10, dim, rng));
    await index.close();
    await expect(openHnswIndex({ dim: dim + 1, dir })).rejects.toThrow(/holds 24-d vectors.*25-d/);
  });
});

describe('the reference helpers', () => {
  const v = (...xs: number[]): Float32Array => new Float32Array(xs);
  const items = [
    { id: 'a', vector: v(1, 0), categories: ['x'], publishedAt: 10 },
    { id: 'b', vector: v(0.8, 0.6), categories: ['y'], hidden: true },
    { id: 'c', vector: v(0, 1), categories: ['x', 'y'], publishedAt: 30 },
  ];

  it('exactSearch ranks by inner product among the items passing the filter', () => {
    expect(exactSearch(items, v(1, 0), 5)).toEqual([{ id: 'a', score: 1 }, { id: 'c', score: 0 }]);
    expect(exactSearch(items, v(1, 0), 1, { excludeHidden: false }).map((h) => h.id)).toEqual(['a']);
    expect(exactSearch(items, v(0, 1), 5, { excludeHidden: false }).map((h) => h.id)).toEqual(['c', 'b', 'a']);
    expect(exactSearch(items, v(0, 1), 5, { categoriesAny: ['y'] }).map((h) => h.id)).toEqual(['c']);
    expect(exactSearch(items, v(0, 1), 5, { categoriesNone: ['y'] }).map((h) => h.id)).toEqual(['a']);
    expect(exactSearch(items, v(0, 1), 5, { publishedAfter: 20, excludeHidden: false }).map((h) => h.id)).toEqual(['c']);
    expect(exactSearch(items, v(0, 1), 5, { excludeIds: ['c'] }).map((h) => h.id)).toEqual(['a']);
    expect(exactSearch(items, v(0, 1), 5, { categoriesAny: [] })).toEqual([]);
  });

  it('matchesFilter applies each rule, unknown publishedAt failing publishedAfter', () => {
    expect(matchesFilter({ id: 'q' })).toBe(true);
    expect(matchesFilter({ id: 'q', hidden: true })).toBe(false);
    expect(matchesFilter({ id: 'q', hidden: true }, { excludeHidden: false })).toBe(true);
    expect(matchesFilter({ id: 'q' }, { publishedAfter: 0 })).toBe(false);
    expect(matchesFilter({ id: 'q', publishedAt: 0 }, { publishedAfter: 0 })).toBe(true);
    expect(matchesFilter({ id: 'q', categories: ['x'] }, { categoriesAny: ['x', 'z'], categoriesNone: ['z'] })).toBe(true);
  });

  it('recallAt counts the share of each exact top k found, over all queries', () => {
    const h = (id: string): { id: string; score: number } => ({ id, score: 0 });
    expect(recallAt(2, [[h('a'), h('c')], [h('x')]], [[h('a'), h('b')], [h('x')]])).toBeCloseTo(2 / 3);
    expect(recallAt(1, [[h('b'), h('a')]], [[h('a'), h('b')]])).toBe(0);
    expect(recallAt(2, [[h('a'), h('a')]], [[h('a'), h('b')]])).toBe(0.5);
    expect(recallAt(5, [[]], [[]])).toBe(1);
  });
});
