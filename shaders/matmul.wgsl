// Row-major SGEMM for training: C[m×n] = alpha·op(A)·op(B) + beta·C, op(X) = Xᵀ when its flag is
// set; the WebGPU twin of wasm/assembly/matmul.ts.
//
// Each invocation computes a 4×4 block of C, keeping it in four vec4 accumulators, so each element
// of A it reads is used four times and each vec4 of B four times (register blocking). A workgroup
// of 8×8 invocations covers a 32×32 tile. Operands are read straight from storage, not staged in
// workgroup memory: on SwiftShader, the only adapter without a GPU, workgroupBarrier made the
// score kernel ~8× slower (see score.wgsl), and this kernel's reuse comes from the registers.
//
// Reads past the edge of C are clamped to the last row/column and their results never written,
// which keeps the inner loop free of bounds branches.

override TILE: u32 = 8u;
// Pipeline constants rather than uniforms, so each of the four variants compiles without the
// branch in its inner loop (SwiftShader does not hoist it).
override TRANS_A: bool = false;
override TRANS_B: bool = false;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

/** op(A)[i, p]: A is m×k, or k×m when transposed. */
fn a_at(i: u32, p: u32) -> f32 {
  if (TRANS_A) {
    return a[p * params.m + i];
  }
  return a[i * params.k + p];
}

/** op(B)[p, j]: B is k×n, or n×k when transposed. */
fn b_at(p: u32, j: u32) -> f32 {
  if (TRANS_B) {
    return b[j * params.k + p];
  }
  return b[p * params.n + j];
}

@compute @workgroup_size(TILE, TILE)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= params.m || col0 >= params.n) {
    return;
  }
  let last_row = params.m - 1u;
  let last_col = params.n - 1u;
  let rows = vec4<u32>(row0, min(row0 + 1u, last_row), min(row0 + 2u, last_row), min(row0 + 3u, last_row));
  let cols = vec4<u32>(col0, min(col0 + 1u, last_col), min(col0 + 2u, last_col), min(col0 + 3u, last_col));
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var p = 0u; p < params.k; p++) {
    let bv = vec4<f32>(b_at(p, cols.x), b_at(p, cols.y), b_at(p, cols.z), b_at(p, cols.w));
    acc0 += a_at(rows.x, p) * bv;
    acc1 += a_at(rows.y, p) * bv;
    acc2 += a_at(rows.z, p) * bv;
    acc3 += a_at(rows.w, p) * bv;
  }
  let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var r = 0u; r < 4u; r++) {
    let i = row0 + r;
    if (i >= params.m) {
      break;
    }
    for (var q = 0u; q < 4u; q++) {
      let j = col0 + q;
      if (j >= params.n) {
        break;
      }
      let at = i * params.n + j;
      var value = params.alpha * acc[r][q];
      // beta = 0 writes C without reading it, as BLAS does.
      if (params.beta != 0.0) {
        value += params.beta * c[at];
      }
      c[at] = value;
    }
  }
}
