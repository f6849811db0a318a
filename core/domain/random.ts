// Seedable random variates for exploration: the TypeScript reference of wasm/assembly/sampling.ts.
//
// Parity with the WASM kernel is bit-exact by construction: both sides use the same PRNG, the same
// rejection loops in the same order, f64 arithmetic with only +, -, *, / and sqrt (all correctly
// rounded in IEEE 754, and neither V8 nor WebAssembly fuses them), and their own `log`/`exp`
// below instead of the platform's Math.log/Math.exp (V8 ports fdlibm, AssemblyScript ports musl;
// they may differ in the last bit, which could flip a rejection test and desync the stream).
// Keep this file and sampling.ts in step: change one, change the other, run the parity test.
import { fmix32 } from './hash.ts';

/** 2^-32: maps a u32 to [0, 1). */
const INV_2_32 = 1 / 4294967296;
/** Weyl increment (2^32 / golden ratio), spreads consecutive seed words apart before mixing. */
const GOLDEN32 = 0x9e3779b9;

/**
 * xoshiro128** 1.1 (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2018):
 * 128-bit state, period 2^128 - 1, passes BigCrush. Chosen over PCG32 because it needs only 32-bit
 * integer ops, which JS does exactly (Math.imul) and fast; PCG32 needs a 64-bit multiply (BigInt).
 * The state is a Uint32Array(4) so the WASM kernel can run on a copy and hand it back.
 */
export class Xoshiro128 {
  readonly state = new Uint32Array(4);

  constructor(seed = 0) {
    this.seed(seed);
  }

  /**
   * Seeds from one 32-bit integer. Each state word is fmix32 of a distinct input; fmix32 is a
   * bijection with fmix32(0) = 0, so at most one word is zero and the state is never all-zero.
   */
  seed(seed: number): void {
    for (let i = 0; i < 4; i++) this.state[i] = fmix32((seed + Math.imul(GOLDEN32, i + 1)) >>> 0);
  }

  /** Next uniform u32. */
  nextU32(): number {
    const s = this.state;
    const s0 = s[0] as number;
    const s1 = s[1] as number;
    const s2 = s[2] as number;
    const s3 = s[3] as number;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[0] = s0 ^ n3;
    s[1] = s1 ^ n2;
    s[2] = n2 ^ t;
    s[3] = (n3 << 11) | (n3 >>> 21);
    return result;
  }

  /** Uniform in the open interval (0, 1): (u32 + 0.5) / 2^32, never 0, so log() is finite. */
  nextOpen(): number {
    return (this.nextU32() + 0.5) * INV_2_32;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() * INV_2_32;
  }

  /** Uniform integer in [0, n), n ≤ 2^32 (multiply-shift; bias below 2^-32 · n, immaterial here). */
  nextInt(n: number): number {
    return Math.floor(this.nextU32() * INV_2_32 * n);
  }
}

/** Fisher–Yates shuffle in place (Knuth, TAOCP vol. 2, Algorithm P), drawing from `rng`. */
export function shuffleInPlace(a: { length: number; [i: number]: number }, rng: Xoshiro128): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = a[i] ?? 0;
    a[i] = a[j] ?? 0;
    a[j] = t;
  }
}

// ---- log and exp in plain f64 arithmetic (mirrored in wasm/assembly/sampling.ts) ----------------

const F64 = new Float64Array(1);
/** Little-endian view: word 1 is the high word (sign, exponent, top of mantissa). */
const U32 = new Uint32Array(F64.buffer);

const LN2 = 0.6931471805599453;
/** ln 2 split so that k * LN2_HI is exact for |k| < 2^11 (Cody & Waite 1980 range reduction). */
const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;
const INV_LN2 = 1.4426950408889634;
const SQRT2 = 1.4142135623730951;
/** exp(x) overflows above this and underflows to 0 below EXP_MIN. */
const EXP_MAX = 709.782712893384;
const EXP_MIN = -745.1332191019412;
const TWO_54 = 18014398509481984;

/**
 * Natural log, |relative error| ≲ 2e-16. x = 2^e · m with m in [√½, √2); then
 * log m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.1716, summed as the odd series to s^23.
 */
export function logF64(x: number): number {
  if (!(x > 0)) return x === 0 ? -Infinity : Number.NaN;
  if (x === Infinity) return x;
  let e = 0;
  if (x < 2.2250738585072014e-308) {
    x *= TWO_54; // subnormal: normalise first
    e = -54;
  }
  F64[0] = x;
  const hi = U32[1] as number;
  e += ((hi >>> 20) & 0x7ff) - 1023;
  U32[1] = (hi & 0x000fffff) | 0x3ff00000;
  let m = F64[0] as number;
  if (m > SQRT2) {
    m *= 0.5;
    e += 1;
  }
  const f = m - 1;
  const s = f / (2 + f);
  const z = s * s;
  const series = 2 + z * (2 / 3 + z * (2 / 5 + z * (2 / 7 + z * (2 / 9 + z * (2 / 11 + z * (2 / 13 +
    z * (2 / 15 + z * (2 / 17 + z * (2 / 19 + z * (2 / 21 + z * (2 / 23)))))))))));
  return e * LN2 + s * series;
}

/** 2^k for integer k in [-1022, 1023], built from its bits. */
function pow2(k: number): number {
  U32[0] = 0;
  U32[1] = (k + 1023) << 20;
  return F64[0] as number;
}

/**
 * e^x, |relative error| ≲ 3e-16. x = k·ln2 + r with |r| ≤ ln2/2 (Cody–Waite), e^r by its Taylor
 * series to r^13 (truncation < 4e-18), then scaled by 2^k in at most two exact steps.
 */
export function expF64(x: number): number {
  if (x !== x) return x;
  if (x > EXP_MAX) return Infinity;
  if (x < EXP_MIN) return 0;
  let k = Math.floor(x * INV_LN2 + 0.5);
  const r = (x - k * LN2_HI) - k * LN2_LO;
  let p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040 +
    r * (1 / 40320 + r * (1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (1 / 479001600 +
    r * (1 / 6227020800)))))))))))));
  if (k > 1023) {
    p *= pow2(1023);
    k -= 1023;
  } else if (k < -1022) {
    p *= pow2(-1022);
    k += 1022;
  }
  return p * pow2(k);
}

// ---- Gamma and Beta variates -------------------------------------------------------------------

/** Standard normal by Marsaglia's polar method (no trigonometry, so parity needs only log/sqrt). */
export function normalVariate(rng: Xoshiro128): number {
  for (;;) {
    const a = 2 * rng.nextOpen() - 1;
    const b = 2 * rng.nextOpen() - 1;
    const s = a * a + b * b;
    if (s < 1 && s > 0) return a * Math.sqrt((-2 * logF64(s)) / s);
  }
}

/**
 * One Gamma(shape, 1) variate for shape >= 1, by Marsaglia & Tsang, "A simple method for
 * generating gamma variables" (ACM TOMS 2000): d·v with d = shape − ⅓, v = (1 + c·x)³, x normal.
 */
function gammaAtLeastOne(shape: number, rng: Xoshiro128): number {
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normalVariate(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.nextOpen();
    const x2 = x * x;
    // Squeeze first: accepts ~98% of draws without a log.
    if (u < 1 - 0.0331 * x2 * x2) return d * v;
    if (logF64(u) < 0.5 * x2 + d * (1 - v + logF64(v))) return d * v;
  }
}

/**
 * log of a Gamma(shape, 1) variate, any shape > 0. Below 1, Marsaglia & Tsang's boost:
 * Gamma(a) = Gamma(a + 1) · U^(1/a), kept in log space because U^(1/a) underflows for tiny a.
 */
export function logGammaVariate(shape: number, rng: Xoshiro128): number {
  if (shape < 1) {
    const boosted = gammaAtLeastOne(shape + 1, rng);
    return logF64(boosted) + logF64(rng.nextOpen()) / shape;
  }
  return logF64(gammaAtLeastOne(shape, rng));
}

/** One Gamma(shape, 1) variate (may underflow to 0 for shapes far below 1). */
export function gammaVariate(shape: number, rng: Xoshiro128): number {
  return shape < 1 ? expF64(logGammaVariate(shape, rng)) : gammaAtLeastOne(shape, rng);
}

/**
 * One Beta(a, b) variate. A shape of exactly 1 has a closed-form inverse CDF and takes one uniform
 * U: Beta(1, b) = 1 − U^(1/b) (its CDF is 1 − (1 − x)^b) and Beta(a, 1) = U^(1/a); that is every
 * item no click has reached under the edge's Beta(1, β₀) prior, most of a slate, at about a third
 * of the cost of two Gamma variates. Otherwise X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b), drawn
 * in that order. When both shapes are >= 1 (every posterior under a prior of at least Beta(1, 1)) neither can
 * underflow and the ratio is taken directly; otherwise it is 1 / (1 + e^(log Y − log X)), which
 * stays in [0, 1] even when both variates underflow.
 */
export function betaVariate(a: number, b: number, rng: Xoshiro128): number {
  if (a === 1) return 1 - expF64(logF64(rng.nextOpen()) / b);
  if (b === 1) return expF64(logF64(rng.nextOpen()) / a);
  if (a >= 1 && b >= 1) {
    const x = gammaAtLeastOne(a, rng);
    const y = gammaAtLeastOne(b, rng);
    return x / (x + y);
  }
  const lx = logGammaVariate(a, rng);
  const ly = logGammaVariate(b, rng);
  const diff = ly - lx;
  // Both -Infinity (shapes near the f64 minimum): no information, call it even.
  if (diff !== diff) return 0.5;
  return 1 / (1 + expF64(diff));
}

/**
 * out[i] ~ Beta(alpha[i], beta[i]) for every arm, in arm order, rounded to out's precision. This
 * is what the WASM `sampleBeta` kernel computes; same seed and arrays, same bits.
 */
export function sampleBetaInto(
  alpha: Float32Array | Float64Array,
  beta: Float32Array | Float64Array,
  rng: Xoshiro128,
  out: Float32Array | Float64Array,
): Float32Array | Float64Array {
  const n = alpha.length;
  if (beta.length !== n || out.length !== n) {
    throw new RangeError(`alpha, beta and out must have one entry per arm: got ${n}, ${beta.length}, ${out.length}`);
  }
  for (let i = 0; i < n; i++) out[i] = betaVariate(alpha[i] as number, beta[i] as number, rng);
  return out;
}
