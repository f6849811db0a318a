// Dot-product scoring of one query against N row-major item vectors: the retrieval inner loop.
//
// Four items are scored per pass so that each 4-lane slice of the query is loaded once and used
// four times (register blocking, as in the GEMV micro-kernels of BLIS, Van Zee & van de Geijn
// 2015). Lanes are reduced only once per item, at the end.

/** Items scored together per pass; 4 keeps all accumulators in registers. */
const ITEM_BLOCK: i32 = 4;
/** f32 lanes in one v128. */
const LANES: i32 = 4;

@inline
function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) +
    f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** Scalar dot product of `dim` floats at byte offsets `a` and `b`. */
@inline
function dotScalar(a: usize, b: usize, dim: i32): f32 {
  let acc: f32 = 0;
  for (let k = 0; k < dim; k++) {
    const off = <usize>k << 2;
    acc += load<f32>(a + off) * load<f32>(b + off);
  }
  return acc;
}

/**
 * out[i] = dot(query, items[i*dim .. (i+1)*dim]) for i in [0, n).
 * `query`, `items` and `out` are byte offsets of f32 arrays. Any `dim` works; multiples of 4 take
 * the SIMD path for the whole vector, other dims finish their tail in scalar code.
 */
export function scoreDot(query: usize, items: usize, n: i32, dim: i32, out: usize): void {
  const vecDim = dim & ~(LANES - 1);
  const rowBytes = <usize>dim << 2;
  let i = 0;
  for (; i + ITEM_BLOCK <= n; i += ITEM_BLOCK) {
    const r0 = items + <usize>i * rowBytes;
    const r1 = r0 + rowBytes;
    const r2 = r1 + rowBytes;
    const r3 = r2 + rowBytes;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let k = 0; k < vecDim; k += LANES) {
      const off = <usize>k << 2;
      const q = v128.load(query + off);
      a0 = f32x4.add(a0, f32x4.mul(q, v128.load(r0 + off)));
      a1 = f32x4.add(a1, f32x4.mul(q, v128.load(r1 + off)));
      a2 = f32x4.add(a2, f32x4.mul(q, v128.load(r2 + off)));
      a3 = f32x4.add(a3, f32x4.mul(q, v128.load(r3 + off)));
    }
    let s0 = hsum(a0);
    let s1 = hsum(a1);
    let s2 = hsum(a2);
    let s3 = hsum(a3);
    if (vecDim < dim) {
      const tail = <usize>vecDim << 2;
      const rest = dim - vecDim;
      s0 += dotScalar(query + tail, r0 + tail, rest);
      s1 += dotScalar(query + tail, r1 + tail, rest);
      s2 += dotScalar(query + tail, r2 + tail, rest);
      s3 += dotScalar(query + tail, r3 + tail, rest);
    }
    const o = out + (<usize>i << 2);
    store<f32>(o, s0);
    store<f32>(o, s1, 4);
    store<f32>(o, s2, 8);
    store<f32>(o, s3, 12);
  }
  for (; i < n; i++) {
    const row = items + <usize>i * rowBytes;
    let acc = f32x4.splat(0);
    for (let k = 0; k < vecDim; k += LANES) {
      const off = <usize>k << 2;
      acc = f32x4.add(acc, f32x4.mul(v128.load(query + off), v128.load(row + off)));
    }
    const tail = <usize>vecDim << 2;
    store<f32>(out + (<usize>i << 2), hsum(acc) + dotScalar(query + tail, row + tail, dim - vecDim));
  }
}
