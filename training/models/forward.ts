// The reference forward pass of a NetworkSpec (./spec.ts) in plain TypeScript: the semantics the
// ONNX export (training/onnx/network.ts) and the WASM/WGSL serving paths are checked against.
// Float32 storage for every intermediate, as the runtimes use; dot products accumulate in float64
// and round once, so the reference is at least as accurate as any float32 runtime.
import type { MatmulBackend } from '../nn/backend.ts';
import type { BagSpec, DenseLayerSpec, NetworkInputs, NetworkSpec } from './spec.ts';

/** Epsilon under the norm of the 'l2' output: x / max(‖x‖₂, ε). Equal to graph.ts's L2_NORM_EPSILON. */
export const L2_OUTPUT_EPSILON = 1e-12;

/** Width of the concatenated input of the first layer: Σ bag dims + dense size. */
export function networkInputWidth(spec: NetworkSpec): number {
  return spec.bags.reduce((w, b) => w + b.dim, 0) + (spec.dense?.size ?? 0);
}

/** Width of the output: the last layer's outputs, or the input width when there are no layers. */
export function networkOutputWidth(spec: NetworkSpec): number {
  const last = spec.layers[spec.layers.length - 1];
  return last === undefined ? networkInputWidth(spec) : last.outputs;
}

/** Every input name the network reads: per bag `<name>` and `<name>_mask`, then the dense input. */
export function networkInputNames(spec: NetworkSpec): string[] {
  const bags = spec.wide === undefined ? spec.bags : [...spec.bags, spec.wide];
  const names = bags.flatMap((b) => [b.name, `${b.name}_mask`]);
  if (spec.dense !== undefined) names.push(spec.dense.name);
  return names;
}

function positiveInteger(n: number): boolean {
  return Number.isInteger(n) && n > 0;
}

function checkBag(bag: BagSpec, what: string): void {
  if (!positiveInteger(bag.rows)) throw new RangeError(`${what} '${bag.name}': rows must be a positive integer, got ${bag.rows}`);
  if (!positiveInteger(bag.dim)) throw new RangeError(`${what} '${bag.name}': dim must be a positive integer, got ${bag.dim}`);
  if (bag.mode !== 'mean' && bag.mode !== 'sum') throw new RangeError(`${what} '${bag.name}': mode must be 'mean' or 'sum', got '${String(bag.mode)}'`);
  if (bag.table.length !== bag.rows * bag.dim) {
    throw new RangeError(`${what} '${bag.name}': table has ${bag.table.length} values, rows × dim = ${bag.rows} × ${bag.dim} needs ${bag.rows * bag.dim}`);
  }
}

function checkLayer(layer: DenseLayerSpec, index: number, inputs: number): void {
  const what = `layer ${index}`;
  if (layer.inputs !== inputs) throw new RangeError(`${what} takes ${layer.inputs} inputs but receives ${inputs}`);
  if (!positiveInteger(layer.outputs)) throw new RangeError(`${what}: outputs must be a positive integer, got ${layer.outputs}`);
  if (layer.weight.length !== layer.inputs * layer.outputs) {
    throw new RangeError(`${what}: weight has ${layer.weight.length} values, inputs × outputs = ${layer.inputs} × ${layer.outputs} needs ${layer.inputs * layer.outputs}`);
  }
  if (layer.bias.length !== layer.outputs) throw new RangeError(`${what}: bias has ${layer.bias.length} values, expected ${layer.outputs}`);
  if (layer.activation !== 'relu' && layer.activation !== 'none') {
    throw new RangeError(`${what}: activation must be 'relu' or 'none', got '${String(layer.activation)}'`);
  }
}

/** Throws a RangeError naming the first inconsistency (shapes, sizes, duplicate names). */
export function checkNetworkSpec(spec: NetworkSpec): void {
  spec.bags.forEach((b) => checkBag(b, 'bag'));
  if (spec.wide !== undefined) {
    checkBag(spec.wide, 'wide bag');
    if (spec.wide.mode !== 'sum') throw new RangeError(`wide bag '${spec.wide.name}' must use mode 'sum' (Cheng 2016), got '${spec.wide.mode}'`);
  }
  if (spec.dense !== undefined && !positiveInteger(spec.dense.size)) {
    throw new RangeError(`dense input '${spec.dense.name}': size must be a positive integer, got ${spec.dense.size}`);
  }
  const width = networkInputWidth(spec);
  if (width === 0) throw new RangeError('the network has no input: give it at least one bag or a dense input');
  let inputs = width;
  spec.layers.forEach((layer, i) => {
    checkLayer(layer, i, inputs);
    inputs = layer.outputs;
  });
  if (spec.wide !== undefined && spec.wide.dim !== inputs) {
    throw new RangeError(`wide bag '${spec.wide.name}' has dim ${spec.wide.dim} but the network outputs ${inputs}`);
  }
  if (spec.output !== 'l2' && spec.output !== 'none') throw new RangeError(`output must be 'l2' or 'none', got '${String(spec.output)}'`);
  const seen = new Set<string>();
  for (const name of [...networkInputNames(spec), spec.outputName]) {
    if (name === '') throw new RangeError('input and output names must not be empty');
    if (seen.has(name)) throw new RangeError(`the name '${name}' is used twice among the network's inputs and output`);
    seen.add(name);
  }
}

/**
 * Pools one bag into out[row * stride + offset + k]: per row Σ mask·E[id] (float32 products summed
 * in float64, rounded once), divided by max(Σ mask, 1) for a mean bag. Every id is range-checked.
 * A weight of 1 (a padding mask) multiplies nothing: the float32 entry is the product.
 */
function poolBag(
  bag: BagSpec, input: NetworkInputs['bags'][string] | undefined, batch: number,
  out: Float32Array, stride: number, offset: number,
): void {
  if (input === undefined) throw new RangeError(`no input for bag '${bag.name}'`);
  const { ids, mask, length } = input;
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`bag '${bag.name}': length must be a positive integer, got ${length}`);
  if (ids.length !== batch * length || mask.length !== batch * length) {
    throw new RangeError(`bag '${bag.name}': ids and mask must hold batch × length = ${batch * length} values, got ${ids.length} and ${mask.length}`);
  }
  // Two loops, each simple enough for V8 to keep tight: one id per row (user, item) is a row copy,
  // 3× faster than the general loop on it.
  if (length === 1) poolOneId(bag, ids, mask, batch, out, stride, offset);
  else poolIds(bag, ids, mask, length, batch, out, stride, offset);
}

function outsideTable(bag: BagSpec, id: number, row: number, position: number): RangeError {
  return new RangeError(`bag '${bag.name}': id ${id} at row ${row}, position ${position} is outside 0..${bag.rows - 1}`);
}

function poolOneId(bag: BagSpec, ids: Int32Array, mask: Float32Array, batch: number, out: Float32Array, stride: number, offset: number): void {
  const { dim, table, rows } = bag;
  const mean = bag.mode === 'mean';
  for (let r = 0; r < batch; r++) {
    const id = ids[r] ?? 0;
    if (id < 0 || id >= rows) throw outsideTable(bag, id, r, 0);
    const m = mask[r] ?? 0;
    const at = r * stride + offset;
    const base = id * dim;
    if (m === 1) {
      for (let k = 0; k < dim; k++) out[at + k] = table[base + k] ?? 0;
    } else if (m === 0) {
      for (let k = 0; k < dim; k++) out[at + k] = 0;
    } else {
      const divisor = mean ? Math.max(Math.fround(m), 1) : 1;
      for (let k = 0; k < dim; k++) out[at + k] = Math.fround(m * (table[base + k] ?? 0)) / divisor;
    }
  }
}

function poolIds(bag: BagSpec, ids: Int32Array, mask: Float32Array, length: number, batch: number, out: Float32Array, stride: number, offset: number): void {
  const { dim, table, rows } = bag;
  const mean = bag.mode === 'mean';
  const acc = new Float64Array(dim);
  for (let r = 0; r < batch; r++) {
    acc.fill(0);
    let weight = 0;
    const first = r * length;
    for (let j = first; j < first + length; j++) {
      const id = ids[j] ?? 0;
      if (id < 0 || id >= rows) throw outsideTable(bag, id, r, j - first);
      const m = mask[j] ?? 0;
      if (m === 0) continue;
      weight += m;
      const base = id * dim;
      if (m === 1) for (let k = 0; k < dim; k++) acc[k] = (acc[k] ?? 0) + (table[base + k] ?? 0);
      else for (let k = 0; k < dim; k++) acc[k] = (acc[k] ?? 0) + Math.fround(m * (table[base + k] ?? 0));
    }
    const divisor = mean ? Math.max(Math.fround(weight), 1) : 1;
    const at = r * stride + offset;
    for (let k = 0; k < dim; k++) out[at + k] = Math.fround(acc[k] ?? 0) / divisor;
  }
}

/**
 * y = act(x · W + b) for a batch, W row-major [inputs × outputs]. Without a backend each sum is
 * taken in float64 and rounded once.
 */
export function dense(layer: DenseLayerSpec, x: Float32Array, batch: number, backend?: MatmulBackend): Float32Array {
  const { inputs, outputs, weight, bias } = layer;
  const y = new Float32Array(batch * outputs);
  if (backend !== undefined) {
    // The backend's float32 GEMM onto the broadcast bias (β = 1), then the activation.
    for (let r = 0; r < batch; r++) y.set(bias.subarray(0, outputs), r * outputs);
    if (batch > 0) backend.gemm(false, false, batch, outputs, inputs, 1, x, weight, 1, y);
    if (layer.activation === 'relu') for (let k = 0; k < y.length; k++) if ((y[k] ?? 0) < 0) y[k] = 0;
    return y;
  }
  const acc = new Float64Array(outputs);
  for (let r = 0; r < batch; r++) {
    for (let o = 0; o < outputs; o++) acc[o] = bias[o] ?? 0;
    for (let i = 0; i < inputs; i++) {
      const xi = x[r * inputs + i] ?? 0;
      if (xi === 0) continue;
      const base = i * outputs;
      for (let o = 0; o < outputs; o++) acc[o] = (acc[o] ?? 0) + xi * (weight[base + o] ?? 0);
    }
    for (let o = 0; o < outputs; o++) {
      const v = acc[o] ?? 0;
      y[r * outputs + o] = layer.activation === 'relu' && v < 0 ? 0 : v;
    }
  }
  return y;
}

/**
 * The first layer's input [batch × networkInputWidth] row-major: the pooled bags and the dense
 * input, concatenated in that order. Throws naming the first input that does not fit the spec.
 */
export function networkInput(spec: NetworkSpec, inputs: NetworkInputs): Float32Array {
  checkNetworkSpec(spec);
  const { batch } = inputs;
  if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`batch must be a non-negative integer, got ${batch}`);
  const width = networkInputWidth(spec);
  const x = new Float32Array(batch * width);
  let offset = 0;
  for (const bag of spec.bags) {
    poolBag(bag, inputs.bags[bag.name], batch, x, width, offset);
    offset += bag.dim;
  }
  if (spec.dense !== undefined) {
    const { name, size } = spec.dense;
    const d = inputs.dense;
    if (d === undefined) throw new RangeError(`no values for the dense input '${name}'`);
    if (d.length !== batch * size) throw new RangeError(`dense input '${name}' must hold batch × size = ${batch * size} values, got ${d.length}`);
    // A loop, not a subarray per row: 1,000 views cost more than the copying.
    for (let r = 0; r < batch; r++) {
      const from = r * size;
      const to = r * width + offset;
      for (let k = 0; k < size; k++) x[to + k] = d[from + k] ?? 0;
    }
  }
  return x;
}

/**
 * The last steps after the dense layers, in place on their output `x` [batch × outputs]: + the
 * wide bag, then the l2 normalisation of an 'l2' output. Returns `x`.
 */
export function networkOutput(spec: NetworkSpec, inputs: NetworkInputs, x: Float32Array): Float32Array {
  const { batch } = inputs;
  const outputs = networkOutputWidth(spec);
  if (x.length !== batch * outputs) throw new RangeError(`the dense layers gave ${x.length} values, expected batch × outputs = ${batch * outputs}`);
  if (spec.wide !== undefined) {
    const wide = new Float32Array(batch * outputs);
    poolBag(spec.wide, inputs.bags[spec.wide.name], batch, wide, outputs, 0);
    for (let i = 0; i < x.length; i++) x[i] = (x[i] ?? 0) + (wide[i] ?? 0);
  }
  if (spec.output === 'l2') {
    for (let r = 0; r < batch; r++) {
      let norm2 = 0;
      for (let k = 0; k < outputs; k++) norm2 += (x[r * outputs + k] ?? 0) ** 2;
      const norm = Math.max(Math.fround(Math.sqrt(norm2)), L2_OUTPUT_EPSILON);
      for (let k = 0; k < outputs; k++) x[r * outputs + k] = (x[r * outputs + k] ?? 0) / norm;
    }
  }
  return x;
}

/**
 * The network's output [batch × outputs] row-major, with the semantics of spec.ts: the pooled
 * bags and the dense input concatenated in that order (`networkInput`) → layers → + wide bag →
 * optional l2 normalisation (`networkOutput`). With `backend`, the dense layers run on its GEMM
 * (the WASM SIMD kernel: the core's `wasm` ranker) in float32; without, in float64-accumulating
 * TypeScript (the reference).
 */
export function forwardNetwork(spec: NetworkSpec, inputs: NetworkInputs, backend?: MatmulBackend): Float32Array {
  let x = networkInput(spec, inputs);
  for (const layer of spec.layers) x = dense(layer, x, inputs.batch, backend);
  return networkOutput(spec, inputs, x);
}
