// Sums of rows of a square float32 matrix: the item-item source's scores, x·W for a binary x (the
// user's history). It mirrors itemItemSums in training/eval/baselines/cooccurrence.ts operation
// for operation, so both give the same bits: four rows per pass, their values added in float64 in
// row order, the pass's sum added to the float64 value of acc and rounded to float32 once; a last
// one to three rows one per pass. Two columns per f64x2 lane pair.

const F32: usize = 4;

/** Two float32 at `at`, widened to float64. */
@inline
function pair(at: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(at));
}

/**
 * acc[j] (+)= Σ over the `count` rows listed at `rows` (i32 row indexes) of weights[row·n + j],
 * j ∈ [0, n). acc is zeroed first. `acc`, `weights` and `rows` are byte offsets.
 */
export function sumRows(acc: usize, weights: usize, n: i32, rows: usize, count: i32): void {
  memory.fill(acc, 0, <usize>n * F32);
  const rowBytes = <usize>n * F32;
  const even = n & ~1;
  let r = 0;
  for (; r + 3 < count; r += 4) {
    const a = weights + <usize>load<i32>(rows + (<usize>r << 2)) * rowBytes;
    const b = weights + <usize>load<i32>(rows + (<usize>(r + 1) << 2)) * rowBytes;
    const c = weights + <usize>load<i32>(rows + (<usize>(r + 2) << 2)) * rowBytes;
    const d = weights + <usize>load<i32>(rows + (<usize>(r + 3) << 2)) * rowBytes;
    let j = 0;
    for (; j < even; j += 2) {
      const off = <usize>j * F32;
      const s = f64x2.add(f64x2.add(f64x2.add(pair(a + off), pair(b + off)), pair(c + off)), pair(d + off));
      v128.store64_lane(acc + off, f32x4.demote_f64x2_zero(f64x2.add(pair(acc + off), s)), 0);
    }
    if (j < n) {
      const off = <usize>j * F32;
      const s = <f64>load<f32>(a + off) + <f64>load<f32>(b + off) + <f64>load<f32>(c + off) + <f64>load<f32>(d + off);
      store<f32>(acc + off, <f32>(<f64>load<f32>(acc + off) + s));
    }
  }
  for (; r < count; r++) {
    const a = weights + <usize>load<i32>(rows + (<usize>r << 2)) * rowBytes;
    let j = 0;
    for (; j < even; j += 2) {
      const off = <usize>j * F32;
      v128.store64_lane(acc + off, f32x4.demote_f64x2_zero(f64x2.add(pair(acc + off), pair(a + off))), 0);
    }
    if (j < n) {
      const off = <usize>j * F32;
      store<f32>(acc + off, <f32>(<f64>load<f32>(acc + off) + <f64>load<f32>(a + off)));
    }
  }
}
