// Batched dot-product scoring: scores[i] = dot(query, items[i]) for the rows of one chunk of a
// row-major items[n * dim] matrix, one invocation per item row.
//
// Two entry points share the bindings: `score_vec4` (dim % 4 == 0, 16-byte loads) and
// `score_scalar` (any dim). Each declares its own view of bindings 1 and 2; WGSL allows this
// because no entry point uses both views. The host picks one (see shaders/score.ts).
//
// The query is read straight from its storage buffer: every invocation of a workgroup reads the
// same element at the same step, which GPUs serve as one broadcast load from cache. Staging it in
// workgroup memory first needs a workgroupBarrier, and on SwiftShader (the CPU Vulkan driver used
// without a GPU) that made 100k x 64 scoring about 8x slower (measured, 340 ms against 45 ms).
//
// Grids over 65535 workgroups wrap into a second dimension, so the flat row index is
// (workgroup_id.y * num_workgroups.x + workgroup_id.x) * WORKGROUP_SIZE + local_index.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  rows: u32,   // rows in this chunk
  dim: u32,    // floats per row
  dim4: u32,   // vec4s per row (dim / 4), used by score_vec4 only
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> query4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> items4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> query1: array<f32>;
@group(0) @binding(2) var<storage, read> items1: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

fn row_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
  return (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn score_vec4(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) local: u32,
) {
  let row = row_index(wg, groups, local);
  if (row >= params.rows) {
    return;
  }
  let dim4 = params.dim4;
  let base = row * dim4;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < dim4; k++) {
    acc += query4[k] * items4[base + k];
  }
  scores[row] = (acc.x + acc.y) + (acc.z + acc.w);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn score_scalar(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) local: u32,
) {
  let row = row_index(wg, groups, local);
  if (row >= params.rows) {
    return;
  }
  let dim = params.dim;
  let base = row * dim;
  var acc = 0.0;
  for (var k = 0u; k < dim; k++) {
    acc += query1[k] * items1[base + k];
  }
  scores[row] = acc;
}
