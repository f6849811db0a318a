// The radix sort under the serving path's rankings: stable, every pass (and the skipped ones), and
// keys that order like the float32 scores they stand for.
import { describe, expect, it } from 'vitest';
import { descendingKey32, radixSort } from '../../core/domain/radix.ts';
import { freshSeed, mulberry32 } from '../support/random.ts';

/** Indexes 0..n−1 by key ascending, equal keys in index order. */
function referenceOrder(keys: Uint32Array): number[] {
  return Array.from(keys.keys()).sort((a, b) => (keys[a] ?? 0) - (keys[b] ?? 0) || a - b);
}

describe('radixSort', () => {
  it('sorts keys and carries the values, equal keys in their order: every small size, wide, narrow and few keys', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const cases: Uint32Array[] = [];
    for (let n = 0; n <= 40; n++) cases.push(Uint32Array.from({ length: n }, () => Math.floor(rng() * 2 ** 32)));
    // All keys in one bucket of the low digit (that pass is skipped), of the top one, of none.
    cases.push(Uint32Array.from({ length: 3000 }, () => Math.floor(rng() * 2 ** 21) * 2 ** 11));
    cases.push(Uint32Array.from({ length: 3000 }, () => Math.floor(rng() * 2 ** 22)));
    cases.push(Uint32Array.from({ length: 5000 }, () => Math.floor(rng() * 4)));
    cases.push(Uint32Array.from({ length: 20_000 }, () => Math.floor(rng() * 2 ** 32)), new Uint32Array(100).fill(0xffffffff));
    for (const keys of cases) {
      const want = referenceOrder(keys);
      const sorted = keys.slice();
      const values = Int32Array.from(keys.keys());
      radixSort(sorted, values, keys.length);
      expect(Array.from(values), `seed ${seed}, ${keys.length} keys`).toEqual(want);
      expect(Array.from(sorted), `seed ${seed}, ${keys.length} keys`).toEqual(want.map((i) => keys[i]));
    }
  });

  it('sorts only the first `size` entries and leaves the rest', () => {
    const keys = Uint32Array.of(5, 3, 9, 1, 0);
    const values = Int32Array.of(0, 1, 2, 3, 4);
    radixSort(keys, values, 3);
    expect(Array.from(keys)).toEqual([3, 5, 9, 1, 0]);
    expect(Array.from(values)).toEqual([1, 0, 2, 3, 4]);
    expect(() => radixSort(keys, values, 6)).toThrow(/exceeds/);
  });
});

describe('descending keys', () => {
  const VALUES = [0, -0, 1, -1, 1.5, -1.5, 3e-39, -3e-39, 1e-45, -1e-45, 3.4e38, -3.4e38, Infinity, -Infinity, 0.25, 0.25000003, 1e-300, -1e-300, 2 ** 60];

  it('descendingKey32 orders float32 scores from highest to lowest, −0 equal to +0', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const scores = Float32Array.from({ length: 4000 }, () => (rng() < 0.5 ? (VALUES[Math.floor(rng() * VALUES.length)] ?? 0) : (rng() - 0.5) * 10 ** Math.floor(rng() * 20 - 10)));
    const bits = new Uint32Array(scores.buffer);
    const keys = Uint32Array.from(bits, descendingKey32);
    const order = Int32Array.from(scores.keys());
    radixSort(keys, order, scores.length);
    const want = Array.from(scores.keys()).sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b);
    expect(Array.from(order), `seed ${seed}`).toEqual(want);
  });
});
