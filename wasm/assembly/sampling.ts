// Beta sampling for Thompson-sampling exploration (Chapelle & Li 2011): one Beta(alpha[i], beta[i])
// draw per arm, on memory the caller hands in.
//
// This mirrors core/domain/random.ts operation for operation, so a seeded run writes the same
// bits as the TypeScript reference: xoshiro128** (Blackman & Vigna 2018), Marsaglia's polar
// normal, Marsaglia & Tsang (2000) Gamma with the shape < 1 boost, Beta = X / (X + Y) (in log
// space when a shape is below 1) or the inverse CDF when a shape is exactly 1, and log/exp written out in plain f64 arithmetic rather than NativeMath (musl's log may
// differ from V8's fdlibm one in the last bit). Change one file, change the other.

// PRNG state, loaded from and stored back to the caller's 4 x u32 at `state` on every call.
let s0: u32 = 0;
let s1: u32 = 0;
let s2: u32 = 0;
let s3: u32 = 0;

const INV_2_32: f64 = 1.0 / 4294967296.0;
const LN2: f64 = 0.6931471805599453;
const LN2_HI: f64 = 6.93147180369123816490e-1;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const INV_LN2: f64 = 1.4426950408889634;
const SQRT2: f64 = 1.4142135623730951;
const EXP_MAX: f64 = 709.782712893384;
const EXP_MIN: f64 = -745.1332191019412;
const TWO_54: f64 = 18014398509481984.0;
const MIN_NORMAL: f64 = 2.2250738585072014e-308;
const THIRD: f64 = 1.0 / 3.0;

@inline
function nextU32(): u32 {
  const m = s1 * 5;
  const result = rotl<u32>(m, 7) * 9;
  const t = s1 << 9;
  const n2 = s2 ^ s0;
  const n3 = s3 ^ s1;
  s0 = s0 ^ n3;
  s1 = s1 ^ n2;
  s2 = n2 ^ t;
  s3 = rotl<u32>(n3, 11);
  return result;
}

/** Uniform in (0, 1). */
@inline
function nextOpen(): f64 {
  return (<f64>nextU32() + 0.5) * INV_2_32;
}

function pow2(k: i32): f64 {
  return reinterpret<f64>(<u64>(k + 1023) << 52);
}

function logF64(x: f64): f64 {
  if (!(x > 0)) return x == 0 ? -Infinity : NaN;
  if (x == Infinity) return x;
  let e: i32 = 0;
  if (x < MIN_NORMAL) {
    x *= TWO_54;
    e = -54;
  }
  const bits = reinterpret<u64>(x);
  const hi = <u32>(bits >> 32);
  e += <i32>((hi >> 20) & 0x7ff) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > SQRT2) {
    m *= 0.5;
    e += 1;
  }
  const f = m - 1;
  const s = f / (2 + f);
  const z = s * s;
  const series = 2 + z * (2.0 / 3 + z * (2.0 / 5 + z * (2.0 / 7 + z * (2.0 / 9 + z * (2.0 / 11 + z * (2.0 / 13 +
    z * (2.0 / 15 + z * (2.0 / 17 + z * (2.0 / 19 + z * (2.0 / 21 + z * (2.0 / 23)))))))))));
  return <f64>e * LN2 + s * series;
}

function expF64(x: f64): f64 {
  if (x != x) return x;
  if (x > EXP_MAX) return Infinity;
  if (x < EXP_MIN) return 0;
  const kf = Math.floor(x * INV_LN2 + 0.5);
  const r = (x - kf * LN2_HI) - kf * LN2_LO;
  let k = <i32>kf;
  let p = 1 + r * (1 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040 +
    r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600 +
    r * (1.0 / 6227020800.0)))))))))))));
  if (k > 1023) {
    p *= pow2(1023);
    k -= 1023;
  } else if (k < -1022) {
    p *= pow2(-1022);
    k += 1022;
  }
  return p * pow2(k);
}

function normalVariate(): f64 {
  for (;;) {
    const a = 2 * nextOpen() - 1;
    const b = 2 * nextOpen() - 1;
    const s = a * a + b * b;
    if (s < 1 && s > 0) return a * Math.sqrt((-2 * logF64(s)) / s);
  }
  return 0; // unreachable; keeps the compiler's flow analysis happy
}

/** Marsaglia & Tsang (2000) for shape >= 1: d·v. */
function gammaAtLeastOne(shape: f64): f64 {
  const d = shape - THIRD;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: f64;
    let v: f64;
    do {
      x = normalVariate();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = nextOpen();
    const x2 = x * x;
    if (u < 1 - 0.0331 * x2 * x2) return d * v;
    if (logF64(u) < 0.5 * x2 + d * (1 - v + logF64(v))) return d * v;
  }
  return 0; // unreachable; keeps the compiler's flow analysis happy
}

/** log of a Gamma(shape) variate; shape < 1 via the boost Gamma(a) = Gamma(a + 1) · U^(1/a). */
function logGammaVariate(shape: f64): f64 {
  if (shape < 1) {
    const boosted = gammaAtLeastOne(shape + 1);
    return logF64(boosted) + logF64(nextOpen()) / shape;
  }
  return logF64(gammaAtLeastOne(shape));
}

/**
 * Beta(1, b) = 1 − U^(1/b) and Beta(a, 1) = U^(1/a) (inverse CDFs, one uniform); otherwise
 * X / (X + Y), in log space only when a shape is below 1 (underflow).
 */
function betaVariate(a: f64, b: f64): f64 {
  if (a == 1) return 1 - expF64(logF64(nextOpen()) / b);
  if (b == 1) return expF64(logF64(nextOpen()) / a);
  if (a >= 1 && b >= 1) {
    const x = gammaAtLeastOne(a);
    const y = gammaAtLeastOne(b);
    return x / (x + y);
  }
  const lx = logGammaVariate(a);
  const ly = logGammaVariate(b);
  const diff = ly - lx;
  return diff != diff ? 0.5 : 1 / (1 + expF64(diff));
}

/**
 * out[i] = one Beta(alpha[i], beta[i]) draw for i in [0, n), in arm order. `alpha`, `beta` and
 * `out` are byte offsets of f32 arrays; `state` is the byte offset of the xoshiro128** state
 * (4 x u32), read at entry and written back at exit so the caller can continue the stream.
 * Shapes must be positive and finite (the host wrapper checks).
 */
export function sampleBeta(alpha: usize, beta: usize, n: i32, state: usize, out: usize): void {
  s0 = load<u32>(state);
  s1 = load<u32>(state, 4);
  s2 = load<u32>(state, 8);
  s3 = load<u32>(state, 12);
  for (let i = 0; i < n; i++) {
    const off = <usize>i << 2;
    const sample = betaVariate(<f64>load<f32>(alpha + off), <f64>load<f32>(beta + off));
    store<f32>(out + off, <f32>sample);
  }
  store<u32>(state, s0);
  store<u32>(state, s1, 4);
  store<u32>(state, s2, 8);
  store<u32>(state, s3, 12);
}
