// The two-tower source: with the embedded index and the request's scores of every item, it answers
// the exact top n by inner product (filters and exclusions kept) without walking the graph; without
// those scores it asks the index. topScored, under every source: the n best, best first, ties to
// the lower item, by each of its ways (a sort of packed keys, of all or of those above a threshold
// guessed from a sample, or a heap).
import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from '../../core/domain/random.ts';
import { openHnswIndex } from '../../core/retrieval/hnsw-index.ts';
import type { VectorIndex } from '../../core/retrieval/vector-index.ts';
import type { ServingSnapshot } from '../../core/serving/snapshot.ts';
import { descendingOrder, descendingTop, scoredOf, sortKeys, topScored, twoTowerSource } from '../../core/serving/sources.ts';
import type { RetrievalContext } from '../../core/serving/sources.ts';
import { freshSeed, mulberry32 } from '../support/random.ts';

const ITEMS = 300;
const DIM = 16;

/** Random unit vectors, a fresh seed per run. */
function unitVectors(count: number, rng: Xoshiro128): Float32Array {
  const out = new Float32Array(count * DIM);
  for (let i = 0; i < count; i++) {
    let norm = 0;
    for (let d = 0; d < DIM; d++) norm += (out[i * DIM + d] = rng.next() - 0.5) ** 2;
    for (let d = 0; d < DIM; d++) out[i * DIM + d] = (out[i * DIM + d] ?? 0) / Math.sqrt(norm);
  }
  return out;
}

function innerProducts(embeddings: Float32Array, query: Float32Array): Float64Array {
  return Float64Array.from({ length: ITEMS }, (_, i) => {
    let s = 0;
    for (let d = 0; d < DIM; d++) s += (query[d] ?? 0) * (embeddings[i * DIM + d] ?? 0);
    return s;
  });
}

async function setup(seed: number): Promise<{ index: VectorIndex; context: RetrievalContext; dots: Float64Array }> {
  const rng = new Xoshiro128();
  rng.seed(seed);
  const embeddings = unitVectors(ITEMS, rng);
  const vector = unitVectors(1, rng);
  const ids = Array.from({ length: ITEMS }, (_, i) => `i${i}`);
  const index = await openHnswIndex({ dim: DIM });
  await index.upsert(ids.map((id, i) => ({ id, vector: embeddings.slice(i * DIM, (i + 1) * DIM) })));
  const excluded = new Uint8Array(ITEMS);
  for (let i = 0; i < ITEMS; i += 7) excluded[i] = 1;
  // The part of a snapshot the source reads.
  const snapshot = { dim: DIM, embeddings, dataset: { itemIndex: new Map(ids.map((id, i) => [id, i])) } } as unknown as ServingSnapshot;
  const context: RetrievalContext = {
    snapshot, user: 0, history: new Int32Array(0), vector, excluded,
    filter: { excludeIds: ids.filter((_, i) => excluded[i] === 1) },
  };
  return { index, context, dots: innerProducts(embeddings, vector) };
}

describe('two-tower source', () => {
  it('takes the exact top n of the request\'s scores with the embedded index, as inner products, skipping excluded items', async () => {
    const seed = (Date.now() >>> 0) || 1;
    const { index, context, dots } = await setup(seed);
    try {
      // z-scored like the engine's: the same order as the inner products.
      const mean = dots.reduce((s, v) => s + v, 0) / ITEMS;
      context.twoTowerScores = Float32Array.from(dots, (v) => (v - mean) * 3);
      const n = 50;
      const found = scoredOf(await twoTowerSource(index).retrieve(context, n));
      const expected = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => context.excluded[i] !== 1)
        .sort((a, b) => (dots[b] ?? 0) - (dots[a] ?? 0)).slice(0, n);
      expect(found.map((s) => s.item), `seed ${seed}`).toEqual(expected);
      for (const s of found) expect(s.score).toBeCloseTo(dots[s.item] ?? NaN, 5);
      // Given the inner products behind the scores, it reports those (not recomputed).
      context.twoTowerInnerProducts = Float32Array.from(dots, (v, i) => v + 100 * i);
      const reported = scoredOf(await twoTowerSource(index).retrieve(context, n));
      expect(reported.map((s) => s.item)).toEqual(expected);
      for (const s of reported) expect(s.score).toBe(context.twoTowerInnerProducts[s.item]);
    } finally {
      await index.close();
    }
  });

  it('asks the index when the request has no scores of every item', async () => {
    const { index, context, dots } = await setup(7);
    try {
      const found = scoredOf(await twoTowerSource(index).retrieve(context, 20));
      const hits = await index.search(context.vector ?? new Float32Array(DIM), 20, context.filter);
      expect(found.map((s) => `i${s.item}`)).toEqual(hits.map((h) => h.id));
      expect(found.every((s) => context.excluded[s.item] !== 1)).toBe(true);
      for (const s of found) expect(s.score).toBeCloseTo(dots[s.item] ?? NaN, 5);
    } finally {
      await index.close();
    }
  });
});

/** The n best by sorting every eligible (score, item): score descending, then item ascending. */
function referenceTop(score: Float32Array, n: number, excluded: Uint8Array, among?: Int32Array): { item: number; score: number }[] {
  const items = among === undefined ? Array.from(score.keys()) : Array.from(among);
  return items
    .filter((i) => excluded[i] !== 1 && (score[i] ?? -Infinity) > -Infinity)
    .sort((a, b) => (score[b] ?? 0) - (score[a] ?? 0) || a - b)
    .slice(0, n)
    .map((item) => ({ item, score: score[item] ?? 0 }));
}

describe('topScored', () => {
  // Scores drawn from a few values (many ties), with −0, −∞, NaN, +∞ and negatives among them.
  const VALUES = [-0, 0, 1.5, -1.5, 3e-39, -3e-39, Infinity, -Infinity, Number.NaN, 1e30, -1e30, 0.25, 0.25000003];
  const cases = [
    { label: 'a small catalog (native sort of packed keys)', items: 2000, n: 1000, among: false },
    { label: 'a subset of a small catalog', items: 2000, n: 300, among: true },
    { label: 'a large catalog and a small n (threshold from a sample)', items: 40_000, n: 50, among: false },
    { label: 'a large catalog and n = 1,000 (threshold from a sample)', items: 100_000, n: 1000, among: false },
    // Every 48th item (the sample's stride at 100,000 items) scores 10: the sample's threshold
    // leaves fewer than n, and the heap answers.
    { label: 'a large catalog whose sample misleads (heap)', items: 100_000, n: 3000, among: false, misleading: true },
    { label: 'a subset of a large catalog (heap)', items: 40_000, n: 20, among: true },
  ];
  it.each(cases)('$label: the n best, best first, ties to the lower item, nothing excluded', ({ items, n, among, misleading }) => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const score = Float32Array.from({ length: items }, (_, i) => (misleading === true ? (i % 48 === 0 ? 10 : rng() * 4 - 2) : rng() < 0.5 ? (VALUES[Math.floor(rng() * VALUES.length)] ?? 0) : rng() * 4 - 2));
    const excluded = Uint8Array.from({ length: items }, () => (rng() < 0.2 ? 1 : 0));
    const subset = among ? Int32Array.from({ length: items }, (_, i) => i).filter(() => rng() < 0.5) : undefined;
    for (const k of [1, n, items]) {
      const got = scoredOf(topScored(score, k, excluded, subset));
      const want = referenceTop(score, k, excluded, subset);
      expect(got.map((s) => s.item), `seed ${seed}, n ${k}`).toEqual(want.map((s) => s.item));
      expect(got.map((s) => s.score), `seed ${seed}, n ${k}`).toEqual(want.map((s) => s.score));
    }
  });

  it('returns nothing for n ≤ 0 and when every item is excluded', () => {
    const score = Float32Array.of(1, 2, 3);
    expect(scoredOf(topScored(score, 0, new Uint8Array(3)))).toEqual([]);
    expect(scoredOf(topScored(score, 2, Uint8Array.of(1, 1, 1)))).toEqual([]);
  });
});

describe('topScored over a subset in no particular order', () => {
  it('still breaks ties to the lower item', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const items = 3000;
    const score = Float32Array.from({ length: items }, () => Math.floor(rng() * 6) - 2);
    const excluded = Uint8Array.from({ length: items }, () => (rng() < 0.1 ? 1 : 0));
    const subset = Int32Array.from({ length: items }, (_, i) => i).filter(() => rng() < 0.6);
    for (let i = subset.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [subset[i], subset[j]] = [subset[j] ?? 0, subset[i] ?? 0];
    }
    const got = scoredOf(topScored(score, 500, excluded, subset));
    expect(got.map((s) => s.item), `seed ${seed}`).toEqual(referenceTop(score, 500, excluded, subset).map((s) => s.item));
  });
});

describe('sortKeys', () => {
  it('sorts the first `first` positions to the smallest keys in order, and keeps every key', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    for (const size of [0, 1, 16, 17, 40, 1682, 5000]) {
      // Few distinct values in some runs (long runs of equal keys), spread in others.
      const distinct = rng() < 0.5 ? 7 : 2 ** 40;
      const keys = Float64Array.from({ length: size }, () => Math.floor(rng() * distinct));
      const want = Float64Array.from(keys).sort();
      for (const first of new Set([0, 1, 5, 16, 17, 100, 300, 1000, size - 1, size].filter((f) => f >= 0 && f <= size))) {
        const got = sortKeys(Float64Array.from(keys), first);
        expect(got.subarray(0, first), `seed ${seed}, size ${size}, first ${first}`).toEqual(want.subarray(0, first));
        expect(Float64Array.from(got).sort(), `seed ${seed}, size ${size}, first ${first}`).toEqual(want);
      }
    }
  });
});

describe('descendingOrder', () => {
  it('orders every index by score, best first, ties by index, NaNs last', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const VALUES = [-0, 0, 2, -2, Infinity, -Infinity, Number.NaN, 1e-40];
    const scores = Float32Array.from({ length: 3000 }, () => (rng() < 0.4 ? (VALUES[Math.floor(rng() * VALUES.length)] ?? 0) : rng() * 10 - 5));
    const finite = Array.from(scores.keys()).filter((k) => !Number.isNaN(scores[k]));
    const nans = Array.from(scores.keys()).filter((k) => Number.isNaN(scores[k]));
    const want = [...finite.sort((a, b) => {
      const d = (scores[b] ?? 0) - (scores[a] ?? 0);
      return d === d && d !== 0 ? d : a - b;
    }), ...nans];
    expect(Array.from(descendingOrder(scores)), `seed ${seed}`).toEqual(want);
    expect(Array.from(descendingOrder(new Float32Array(0)))).toEqual([]);
  });

  it('descendingTop gives its first k, by the heap for small k and by the sort for large', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const VALUES = [-0, 0, 2, -2, Infinity, -Infinity, Number.NaN, 1e-40];
    for (const [n, nanShare] of [[1000, 0.05], [300, 0.9], [50, 0]] as const) {
      const scores = Float32Array.from({ length: n }, () => {
        if (rng() < nanShare) return Number.NaN;
        return rng() < 0.4 ? (VALUES[Math.floor(rng() * (VALUES.length - 1))] ?? 0) : rng() * 10 - 5;
      });
      const all = Array.from(descendingOrder(scores));
      for (const k of [0, 1, 7, 80, Math.floor(n / 4) + 1, n, n + 5]) {
        expect(Array.from(descendingTop(scores, k)), `seed ${seed}, n ${n}, k ${k}`).toEqual(all.slice(0, k));
      }
    }
  });
});
