// The factored ranker's first layer per candidate (core/ranking/factored.ts): one user's share of
// it, plus a resident table row (the candidate item's share), plus the candidate's dense features
// times their rows of the weight, then ReLU. Every step is a float32 add or multiply, in the order
// `firstLayerRowsReference` (core/ranking/factored.ts) takes them, so both give the same bits.

const F32: usize = 4;

/**
 * out row r = act(user + table row rows[r] + Σ_k dense[r·denseWidth + k] · weight row k), each
 * `width` floats, for r ∈ [0, n): the sum taken left to right (user + table row first, then the
 * dense terms in k order), act = ReLU (`0 < x ? x : 0`) when `relu` is 1, else none. `weight` is
 * [denseWidth × width] row-major. Every argument but the counts, widths and flag is a byte offset;
 * `rows` holds i32 row indexes, which the host has checked.
 */
export function firstLayerRows(
  out: usize, n: i32, user: usize, table: usize, width: i32, rows: usize, dense: usize, denseWidth: i32, weight: usize, relu: i32,
): void {
  const rowBytes = <usize>width * F32;
  const denseBytes = <usize>denseWidth * F32;
  const vectors = width & ~3;
  const zero = f32x4.splat(0);
  for (let r = 0; r < n; r++) {
    const o = out + <usize>r * rowBytes;
    const t = table + <usize>load<i32>(rows + (<usize>r << 2)) * rowBytes;
    const d = dense + <usize>r * denseBytes;
    let j = 0;
    // Sixteen columns at a time: four accumulators, each dense value splatted once per block.
    for (; j + 16 <= vectors; j += 16) {
      const off = <usize>j * F32;
      let a0 = f32x4.add(v128.load(user + off), v128.load(t + off));
      let a1 = f32x4.add(v128.load(user + off, 16), v128.load(t + off, 16));
      let a2 = f32x4.add(v128.load(user + off, 32), v128.load(t + off, 32));
      let a3 = f32x4.add(v128.load(user + off, 48), v128.load(t + off, 48));
      let w = weight + off;
      for (let k = 0; k < denseWidth; k++) {
        const x = f32x4.splat(load<f32>(d + <usize>k * F32));
        a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w)));
        a1 = f32x4.add(a1, f32x4.mul(x, v128.load(w, 16)));
        a2 = f32x4.add(a2, f32x4.mul(x, v128.load(w, 32)));
        a3 = f32x4.add(a3, f32x4.mul(x, v128.load(w, 48)));
        w += rowBytes;
      }
      v128.store(o + off, relu ? f32x4.pmax(zero, a0) : a0);
      v128.store(o + off, relu ? f32x4.pmax(zero, a1) : a1, 16);
      v128.store(o + off, relu ? f32x4.pmax(zero, a2) : a2, 32);
      v128.store(o + off, relu ? f32x4.pmax(zero, a3) : a3, 48);
    }
    for (; j < vectors; j += 4) {
      const off = <usize>j * F32;
      let acc = f32x4.add(v128.load(user + off), v128.load(t + off));
      for (let k = 0; k < denseWidth; k++) {
        acc = f32x4.add(acc, f32x4.mul(f32x4.splat(load<f32>(d + <usize>k * F32)), v128.load(weight + <usize>k * rowBytes + off)));
      }
      // pmax(0, acc) = 0 < acc ? acc : 0 (−0 and NaN give +0, as the reference's comparison does).
      v128.store(o + off, relu ? f32x4.pmax(zero, acc) : acc);
    }
    for (; j < width; j++) {
      const off = <usize>j * F32;
      let acc: f32 = load<f32>(user + off) + load<f32>(t + off);
      for (let k = 0; k < denseWidth; k++) acc = acc + load<f32>(d + <usize>k * F32) * load<f32>(weight + <usize>k * rowBytes + off);
      store<f32>(o + off, relu && !(<f32>0 < acc) ? <f32>0 : acc);
    }
  }
}
