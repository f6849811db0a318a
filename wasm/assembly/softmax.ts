// Row passes of the in-batch softmax (training/nn/in-batch-softmax.ts), which spend most of their
// time in exp. Every step mirrors the TypeScript passes operation for operation, in float64 with
// float32 stores, and exp is fdlibm's __ieee754_exp (Sun Microsystems 1993, e_exp.c), the exp V8's
// Math.exp runs (src/base/ieee754.cc): so this path gives the TypeScript path's results bit for bit.

const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const INV_LN2: f64 = 1.44269504088896338700e+00;
const P1: f64 = 1.66666666666666019037e-01;
const P2: f64 = -2.77777777770155933842e-03;
const P3: f64 = 6.61375632143793436117e-05;
const P4: f64 = -1.65339022054652515390e-06;
const P5: f64 = 4.13813679705723846039e-08;
const O_THRESHOLD: f64 = 7.09782712893383973096e+02;
const U_THRESHOLD: f64 = -7.45133219101941108420e+02;
const TWO_M1000: f64 = 9.33263618503218878990e-302;
const TWO_P1023: f64 = 8.98846567431158e307;

/** fdlibm's exp, with its tests on the high word of |x| written as the equivalent comparisons of |x|. */
function expFdlibm(x: f64): f64 {
  const hx = <u32>(reinterpret<u64>(x) >> 32) & 0x7fffffff;
  if (hx >= 0x40862e42) {
    if (hx >= 0x7ff00000) {
      if (x != x) return x + x;
      return x > 0 ? x : 0.0;
    }
    if (x > O_THRESHOLD) return Infinity;
    if (x < U_THRESHOLD) return 0.0;
  }
  let hi: f64 = 0;
  let lo: f64 = 0;
  let k: i32 = 0;
  if (hx > 0x3fd62e42) {
    if (hx < 0x3ff0a2b2) {
      if (x > 0) {
        hi = x - LN2_HI;
        lo = LN2_LO;
        k = 1;
      } else {
        hi = x + LN2_HI;
        lo = -LN2_LO;
        k = -1;
      }
    } else {
      k = <i32>(INV_LN2 * x + (x < 0 ? -0.5 : 0.5));
      const t = <f64>k;
      hi = x - t * LN2_HI;
      lo = t * LN2_LO;
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    return 1.0 + x;
  }
  const t = x * x;
  const c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * TWO_P1023;
    return y * reinterpret<f64>(<u64>(0x3ff + k) << 52);
  }
  return y * reinterpret<f64>(<u64>(0x3ff + k + 1000) << 52) * TWO_M1000;
}

/** |x| from which fdlibm reduces with k = trunc(x/ln2 ± 1/2): its high word 0x3ff0a2b2, low word 0. */
const GENERAL_MIN: f64 = reinterpret<f64>(0x3ff0a2b200000000);
/** Below this |x| the general path's 2^k is a normal number (k ≥ −1021) and no overflow test applies. */
const GENERAL_MAX: f64 = 700.0;

/**
 * fdlibm's exp on two lanes that both take its general path (GENERAL_MIN ≤ |x| < GENERAL_MAX): the
 * same float64 operations in the same order, so each lane equals expFdlibm bit for bit.
 */
@inline
function expGeneral2(x: v128): v128 {
  const half = v128.or(v128.and(x, i64x2.splat(0x8000000000000000)), f64x2.splat(0.5));
  const k = f64x2.trunc(f64x2.add(f64x2.mul(f64x2.splat(INV_LN2), x), half));
  const hi = f64x2.sub(x, f64x2.mul(k, f64x2.splat(LN2_HI)));
  const lo = f64x2.mul(k, f64x2.splat(LN2_LO));
  const r = f64x2.sub(hi, lo);
  const t = f64x2.mul(r, r);
  let p = f64x2.add(f64x2.splat(P4), f64x2.mul(t, f64x2.splat(P5)));
  p = f64x2.add(f64x2.splat(P3), f64x2.mul(t, p));
  p = f64x2.add(f64x2.splat(P2), f64x2.mul(t, p));
  p = f64x2.add(f64x2.splat(P1), f64x2.mul(t, p));
  const c = f64x2.sub(r, f64x2.mul(t, p));
  const q = f64x2.div(f64x2.mul(r, c), f64x2.sub(f64x2.splat(2.0), c));
  const y = f64x2.sub(f64x2.splat(1.0), f64x2.sub(f64x2.sub(lo, q), hi));
  const ki = i64x2.extend_low_i32x4_s(i32x4.trunc_sat_f64x2_s_zero(k));
  const twopk = i64x2.shl(i64x2.add(ki, i64x2.splat(0x3ff)), 52);
  return f64x2.mul(y, twopk);
}

/** Host-side check of the port against Math.exp: the scalar port, or (`vector` 1) the two-lane one where it applies. */
export function exp64(x: f64, vector: i32): f64 {
  const ax = Math.abs(x);
  if (vector == 0 || !(ax >= GENERAL_MIN && ax < GENERAL_MAX)) return expFdlibm(x);
  return f64x2.extract_lane(expGeneral2(f64x2.splat(x)), 0);
}

// The host's Math.log (wasm/index.ts imports it), called once per row: V8's fdlibm log, so the
// loss matches the TypeScript pass exactly without a second port.
@external("env", "log")
declare function hostLog(x: f64): f64;

/**
 * The row passes of InBatchSoftmax.forward on the logits s [batch × batch] (f32, byte offset), in
 * place: z = s[i, j] − logQ[j], or −∞ where j ≠ i carries row i's item (itemIds, i32); softmax over
 * j; then s[i, j] = w_i/batch · (softmax_ij − [i = j]). Returns Σ_i w_i · (logsumexp_j z − z[i, i]).
 * `logQ` and `weights` (f32) are 0 when absent (no correction, every weight 1).
 */
export function inBatchSoftmaxRows(s: usize, batch: i32, itemIds: usize, logQ: usize, weights: usize): f64 {
  const rowBytes = <usize>batch << 2;
  let total: f64 = 0;
  for (let i = 0; i < batch; i++) {
    const row = s + <usize>i * rowBytes;
    const own = load<i32>(itemIds + (<usize>i << 2));
    let max: f64 = -Infinity;
    for (let j = 0; j < batch; j++) {
      const off = <usize>j << 2;
      let z: f64;
      if (j != i && load<i32>(itemIds + off) == own) z = -Infinity;
      else z = <f64>load<f32>(row + off) - (logQ == 0 ? 0.0 : <f64>load<f32>(logQ + off));
      store<f32>(row + off, <f32>z);
      if (z > max) max = z;
    }
    const diag = row + (<usize>i << 2);
    const ownLogit = <f64>load<f32>(diag);
    let sum: f64 = 0;
    // Two entries at a time through expGeneral2 when both take fdlibm's general path (most do:
    // logits at temperature 0.05 spread over tens of units), else one at a time; sum stays in j order.
    const maxes = f64x2.splat(max);
    let j = 0;
    for (; j + 2 <= batch; j += 2) {
      const off = <usize>j << 2;
      const x = f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(row + off)), maxes);
      const ax = f64x2.abs(x);
      if (v128.all_true<i64>(v128.and(f64x2.ge(ax, f64x2.splat(GENERAL_MIN)), f64x2.lt(ax, f64x2.splat(GENERAL_MAX))))) {
        const e = expGeneral2(x);
        v128.store64_lane(row + off, f32x4.demote_f64x2_zero(e), 0);
        sum += f64x2.extract_lane(e, 0);
        sum += f64x2.extract_lane(e, 1);
      } else {
        const e0 = expFdlibm(f64x2.extract_lane(x, 0));
        const e1 = expFdlibm(f64x2.extract_lane(x, 1));
        store<f32>(row + off, <f32>e0);
        store<f32>(row + off + 4, <f32>e1);
        sum += e0;
        sum += e1;
      }
    }
    for (; j < batch; j++) {
      const off = <usize>j << 2;
      const e = expFdlibm(<f64>load<f32>(row + off) - max);
      store<f32>(row + off, <f32>e);
      sum += e;
    }
    const lse = max + hostLog(sum);
    const w: f64 = weights == 0 ? 1.0 : <f64>load<f32>(weights + (<usize>i << 2));
    total += w * (lse - ownLogit);
    const scale = w / <f64>batch;
    const norm = scale / sum;
    for (let j = 0; j < batch; j++) {
      const off = <usize>j << 2;
      store<f32>(row + off, <f32>(<f64>load<f32>(row + off) * norm));
    }
    store<f32>(diag, <f32>(<f64>load<f32>(diag) - scale));
  }
  return total;
}
