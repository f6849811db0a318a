// Pooled rows for embedding bags (training/nn/embedding-bag.ts): the forward pooling of table rows
// into examples and the backward pooling of examples' gradients into touched rows are one kernel,
// dst row o (+)= Σ_k weights[k]·src row k over o's list of k. It mirrors the TypeScript loop
// `s = Math.fround(s + w * x)` operation for operation: float64 multiply and add, then rounding to
// float32 (f32x4.demote_f64x2_zero rounds to nearest, as fround does), so both give the same bits.

const F32: usize = 4;
const F64: usize = 8;
/** Floats of dst pooled per pass over a row's list: eight f64x2 running sums. */
const BLOCK: i32 = 16;

/** Two floats at `at`, widened to float64. */
@inline
function loadPair(at: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(at));
}

/** sum + w·x rounded to float32 and widened back: one step of the TypeScript loop on two lanes. */
@inline
function step(sum: v128, w: v128, x: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(f64x2.add(sum, f64x2.mul(w, x))));
}

/** Stores the two float32 lanes of a float64 pair that holds float32 values. */
@inline
function storePair(at: usize, sum: v128): void {
  v128.store64_lane(at, f32x4.demote_f64x2_zero(sum), 0);
}

/**
 * For each of `rows` dst rows o: dst[o·dim + d] = start + Σ_k weights[k] · src[offsets[k] + d]
 * over k ∈ [starts[o], starts[o + 1]), in k order, rounded to float32 after every add; start is
 * dst[o·dim + d] when `accumulate` is 1, else 0. `dst`, `src`, `offsets` (i32, in floats),
 * `weights` (f64) and `starts` (i32, rows + 1 entries) are byte offsets.
 */
export function poolRows(
  dst: usize, rows: i32, src: usize, offsets: usize, weights: usize, starts: usize, dim: i32, accumulate: i32,
): void {
  for (let o = 0; o < rows; o++) {
    const first = load<i32>(starts + <usize>o * 4);
    const end = load<i32>(starts + <usize>(o + 1) * 4);
    const row = dst + <usize>o * <usize>dim * F32;
    let d = 0;
    for (; d + BLOCK <= dim; d += BLOCK) {
      const at = row + <usize>d * F32;
      let s0 = f64x2.splat(0);
      let s1 = f64x2.splat(0);
      let s2 = f64x2.splat(0);
      let s3 = f64x2.splat(0);
      let s4 = f64x2.splat(0);
      let s5 = f64x2.splat(0);
      let s6 = f64x2.splat(0);
      let s7 = f64x2.splat(0);
      if (accumulate) {
        s0 = loadPair(at);
        s1 = loadPair(at + 8);
        s2 = loadPair(at + 16);
        s3 = loadPair(at + 24);
        s4 = loadPair(at + 32);
        s5 = loadPair(at + 40);
        s6 = loadPair(at + 48);
        s7 = loadPair(at + 56);
      }
      for (let k = first; k < end; k++) {
        const x = src + (<usize>load<i32>(offsets + <usize>k * 4) + <usize>d) * F32;
        const w = v128.load64_splat(weights + <usize>k * F64);
        s0 = step(s0, w, loadPair(x));
        s1 = step(s1, w, loadPair(x + 8));
        s2 = step(s2, w, loadPair(x + 16));
        s3 = step(s3, w, loadPair(x + 24));
        s4 = step(s4, w, loadPair(x + 32));
        s5 = step(s5, w, loadPair(x + 40));
        s6 = step(s6, w, loadPair(x + 48));
        s7 = step(s7, w, loadPair(x + 56));
      }
      storePair(at, s0);
      storePair(at + 8, s1);
      storePair(at + 16, s2);
      storePair(at + 24, s3);
      storePair(at + 32, s4);
      storePair(at + 40, s5);
      storePair(at + 48, s6);
      storePair(at + 56, s7);
    }
    for (; d < dim; d++) {
      const at = row + <usize>d * F32;
      let sum: f64 = accumulate ? <f64>load<f32>(at) : 0;
      for (let k = first; k < end; k++) {
        const x = <f64>load<f32>(src + (<usize>load<i32>(offsets + <usize>k * 4) + <usize>d) * F32);
        sum = <f64><f32>(sum + load<f64>(weights + <usize>k * F64) * x);
      }
      store<f32>(at, <f32>sum);
    }
  }
}
