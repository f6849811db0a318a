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

/** One standard-normal sample (Box–Muller). */
function gaussian(rng: Rng): number {
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
