import { randomInt } from 'node:crypto';

/** A seeded source of uniform floats in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a tiny, fast 32-bit seeded PRNG. Deterministic for a given seed,
 * good enough for test data (not for anything security-related).
 */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seed for one test: `KESTREL_SEED` when set (to replay a failure), otherwise a fresh random
 * 32-bit value. Put it in the assertion message so a failing run can be reproduced.
 */
export function freshSeed(): number {
  const fixed = process.env.KESTREL_SEED;
  if (fixed !== undefined && fixed !== '') {
    const seed = Number(fixed);
    if (!Number.isInteger(seed)) throw new RangeError(`KESTREL_SEED must be an integer, got '${fixed}'`);
    return seed >>> 0;
  }
  return randomInt(0, 2 ** 32 - 1);
}

/** One standard-normal sample (Box–Muller). */
export function gaussian(rng: Rng): number {
  // 1 - u keeps the argument of log in (0, 1].
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * `n` vectors of dimension `dim`, uniformly distributed on the unit sphere
 * (Gaussian components, then L2-normalised), packed row-major: vector i is
 * `out.subarray(i * dim, (i + 1) * dim)`.
 */
export function randomUnitVectors(n: number, dim: number, rng: Rng): Float32Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`);
  const out = new Float32Array(n * dim);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    let norm2 = 0;
    do {
      norm2 = 0;
      for (let j = 0; j < dim; j++) {
        const x = gaussian(rng);
        row[j] = x;
        norm2 += x * x;
      }
    } while (norm2 === 0);
    const inv = 1 / Math.sqrt(norm2);
    const base = i * dim;
    for (let j = 0; j < dim; j++) out[base + j] = (row[j] ?? 0) * inv;
  }
  return out;
}

/**
 * Exact inner products of `query` (length `dim`) with every row of the row-major `items`,
 * accumulated in float64: the reference that float32 kernels and ANN indexes are checked against.
 */
export function referenceScores(query: ArrayLike<number>, items: ArrayLike<number>, dim: number): Float64Array {
  if (query.length !== dim) throw new RangeError(`query has length ${query.length}, expected dim ${dim}`);
  if (items.length % dim !== 0) throw new RangeError(`items length ${items.length} is not a multiple of dim ${dim}`);
  const n = items.length / dim;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const base = i * dim;
    for (let j = 0; j < dim; j++) s += (query[j] ?? 0) * (items[base + j] ?? 0);
    out[i] = s;
  }
  return out;
}

/**
 * Worst error of float32 dot-product scores against the float64 ones, each item's error divided
 * by Σ|query_j·item_j|. A float32 dot of d terms is off by at most about d·2⁻²⁴ of that sum
 * (the standard forward bound), however much the terms cancel, so a tolerance on this measure
 * holds for every seed; ‖got − want‖/‖want‖ does not when a handful of scores sit near zero.
 */
export function scoreError(got: ArrayLike<number>, query: ArrayLike<number>, items: ArrayLike<number>, dim: number): number {
  const want = referenceScores(query, items, dim);
  if (got.length !== want.length) throw new RangeError(`length mismatch: got ${got.length}, want ${want.length}`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    let magnitude = 0;
    for (let j = 0; j < dim; j++) magnitude += Math.abs((query[j] ?? 0) * (items[i * dim + j] ?? 0));
    const d = Math.abs((got[i] ?? 0) - (want[i] ?? 0));
    const e = magnitude === 0 ? (d === 0 ? 0 : Number.POSITIVE_INFINITY) : d / magnitude;
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

/**
 * Relative L2 error ‖got − want‖₂ / ‖want‖₂ (0 when both are all zeros; Infinity when only
 * `want` is). Throws when the lengths differ.
 */
export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new RangeError(`length mismatch: got ${got.length}, want ${want.length}`);
  let diff2 = 0;
  let norm2 = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] ?? 0;
    const d = (got[i] ?? 0) - w;
    diff2 += d * d;
    norm2 += w * w;
  }
  if (norm2 === 0) return diff2 === 0 ? 0 : Number.POSITIVE_INFINITY;
  return Math.sqrt(diff2 / norm2);
}
