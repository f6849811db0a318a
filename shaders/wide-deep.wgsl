// The forward pass of a NetworkSpec (training/models/spec.ts) — the Wide&Deep ranker and the two
// towers — as four kernels that core/ranking/webgpu-ranker.ts dispatches in order in one pass:
//
//   pool_bag    per bag: out[r, offset + d] (+)= Σ_j mask[r, j] · table[ids[r, j], d]
//               (÷ max(Σ_j mask[r, j], 1) for a mean bag); also adds the wide bag to the logits
//   copy_dense  the dense input [batch × dim] into its columns of the concatenated layer-0 input
//   dense_layer y = act(x · W + b), W row-major [inputs × outputs]
//   l2_rows     y[r] /= max(‖y[r]‖₂, L2_EPSILON)
//
// The reference is training/models/forward.ts; it accumulates in float64, these kernels in float32
// (the ranker's sums are over ≤ ~100 terms, so the two agree to ~1e-6 relative).
//
// Dispatches in one compute pass are ordered and see each other's writes (WebGPU synchronises
// storage between dispatches), so one submit runs the whole network. One invocation per output
// element (or 4×4 block of them, for dense_layer); the 1-D kernels wrap their workgroup grid into
// y past maxComputeWorkgroupsPerDimension, as score.wgsl does. As in matmul.wgsl, operands are read
// straight from storage, without workgroup memory: on SwiftShader barriers cost more than they save.

override WORKGROUP_SIZE: u32 = 64u;
override TILE: u32 = 8u;
/** Equal to training/models/forward.ts's L2_OUTPUT_EPSILON. */
const L2_EPSILON: f32 = 1e-12;

const FLAG_MEAN: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;
const FLAG_RELU: u32 = 4u;

/** One dispatch's parameters; each kernel reads the fields its comment names. */
struct Params {
  /** Rows of the batch. */
  batch: u32,
  /** pool_bag: ids per row. */
  length: u32,
  /** pool_bag, copy_dense: floats per pooled row; dense_layer: inputs; l2_rows: floats per row. */
  dim: u32,
  /** dense_layer: outputs. */
  outputs: u32,
  /** pool_bag: index of the bag's first id in `ids`. */
  ids_offset: u32,
  /** pool_bag: index of the bag's first mask value in `values`; copy_dense: of the dense input. */
  values_offset: u32,
  /** pool_bag, copy_dense: floats per row of `out`, and the first column written. */
  out_stride: u32,
  out_offset: u32,
  /** FLAG_MEAN, FLAG_ACCUMULATE (pool_bag), FLAG_RELU (dense_layer). */
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// pool_bag, copy_dense, l2_rows
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// dense_layer
@group(0) @binding(5) var<storage, read> x: array<f32>;
@group(0) @binding(6) var<storage, read> weight: array<f32>;
@group(0) @binding(7) var<storage, read> bias: array<f32>;
@group(0) @binding(8) var<storage, read_write> y: array<f32>;

/** The invocation's index in a 1-D grid that may wrap into y. */
fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.y * groups.x * WORKGROUP_SIZE + gid.x;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pool_bag(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = linear_index(gid, groups);
  let dim = params.dim;
  if (index >= params.batch * dim) {
    return;
  }
  let r = index / dim;
  let d = index - r * dim;
  let first = r * params.length;
  var acc = 0.0;
  var total = 0.0;
  for (var j = 0u; j < params.length; j++) {
    let m = values[params.values_offset + first + j];
    total += m;
    // The host checked every id against the table's rows; mask 0 is padding, skipped as forward.ts does.
    if (m != 0.0) {
      acc += m * table[u32(ids[params.ids_offset + first + j]) * dim + d];
    }
  }
  if ((params.flags & FLAG_MEAN) != 0u) {
    acc /= max(total, 1.0);
  }
  let at = r * params.out_stride + params.out_offset + d;
  if ((params.flags & FLAG_ACCUMULATE) != 0u) {
    acc += out[at];
  }
  out[at] = acc;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_dense(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = linear_index(gid, groups);
  let dim = params.dim;
  if (index >= params.batch * dim) {
    return;
  }
  let r = index / dim;
  let d = index - r * dim;
  out[r * params.out_stride + params.out_offset + d] = values[params.values_offset + index];
}

/**
 * Each invocation computes a 4×4 block of y (4 rows × 4 outputs), the register blocking of
 * matmul.wgsl: every x value read is used 4 times, every weight 4 times. Reads past the edge are
 * clamped to the last row/column and their results never written.
 */
@compute @workgroup_size(TILE, TILE)
fn dense_layer(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  let n = params.outputs;
  let k = params.dim;
  if (row0 >= params.batch || col0 >= n) {
    return;
  }
  let last_row = params.batch - 1u;
  let last_col = n - 1u;
  let rows = vec4<u32>(row0, min(row0 + 1u, last_row), min(row0 + 2u, last_row), min(row0 + 3u, last_row)) * k;
  let cols = vec4<u32>(col0, min(col0 + 1u, last_col), min(col0 + 2u, last_col), min(col0 + 3u, last_col));
  let b = vec4<f32>(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);
  var acc0 = b;
  var acc1 = b;
  var acc2 = b;
  var acc3 = b;
  for (var p = 0u; p < k; p++) {
    let w = p * n;
    let wv = vec4<f32>(weight[w + cols.x], weight[w + cols.y], weight[w + cols.z], weight[w + cols.w]);
    acc0 += x[rows.x + p] * wv;
    acc1 += x[rows.y + p] * wv;
    acc2 += x[rows.z + p] * wv;
    acc3 += x[rows.w + p] * wv;
  }
  var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  let relu = (params.flags & FLAG_RELU) != 0u;
  for (var r = 0u; r < 4u; r++) {
    let i = row0 + r;
    if (i >= params.batch) {
      break;
    }
    var v = acc[r];
    if (relu) {
      v = max(v, vec4<f32>(0.0));
    }
    for (var q = 0u; q < 4u; q++) {
      let j = col0 + q;
      if (j >= n) {
        break;
      }
      y[i * n + j] = v[q];
    }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn l2_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let r = linear_index(gid, groups);
  if (r >= params.batch) {
    return;
  }
  let base = r * params.dim;
  var norm2 = 0.0;
  for (var d = 0u; d < params.dim; d++) {
    let v = out[base + d];
    norm2 += v * v;
  }
  let norm = max(sqrt(norm2), L2_EPSILON);
  for (var d = 0u; d < params.dim; d++) {
    out[base + d] = out[base + d] / norm;
  }
}
