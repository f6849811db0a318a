// The `Ranker` port (./ranker.ts) on WebGPU: the forward pass of a NetworkSpec in WGSL
// (shaders/wide-deep.wgsl) on the process's Dawn device. It runs any spec `checkNetworkSpec`
// accepts: the Wide&Deep ranker, and the two towers ('l2' output).
//
// Weights (read back from the ONNX bytes with `readNetwork`) are uploaded once, one storage buffer
// per table and per layer weight and bias. A call uploads the batch (every bag's ids, masks and the
// dense input, packed into one i32 and one f32 buffer) and records one compute pass:
//   pool_bag per bag + copy_dense → activation A (the concatenated layer-0 input)
//   dense_layer per layer, ping-ponging A → B → A …
//   pool_bag of the wide bag, accumulating into the last layer's output; l2_rows when the spec says
// then copies the logits to a MAP_READ buffer and reads them back. Per-batch buffers only grow, so
// calls of a batch size seen before allocate nothing on the GPU; their bind groups are rebuilt only
// when a buffer grows. Calls share those buffers, so they run one after another.
import { checkNetworkSpec, networkInputWidth, networkOutputWidth } from '../../training/models/forward.ts';
import type { BagSpec, NetworkInputs, NetworkSpec } from '../../training/models/spec.ts';
import { readNetwork } from '../../training/onnx/network.ts';
import {
  COPY_DENSE,
  DENSE_LAYER,
  L2_ROWS,
  packWideDeepParams,
  POOL_BAG,
  WIDE_DEEP_BLOCK,
  WIDE_DEEP_FLAGS,
  WIDE_DEEP_PARAMS_BYTES,
  WIDE_DEEP_TILE,
  WIDE_DEEP_WORKGROUP_SIZE,
} from '../../shaders/index.ts';
import type { WideDeepParams } from '../../shaders/index.ts';
import { computePipeline, requestDawnDevice } from '../gpu/dawn.ts';
import type { Ranker } from './ranker.ts';

const F32 = 4;
/** Per-batch buffers are rounded up to this many bytes, so a slowly growing batch rarely reallocates. */
const GROW_GRANULE = 4096;

type Kernel = 'pool' | 'dense' | 'layer' | 'l2';
type Activation = 'a' | 'b';

/** One dispatch of the pass, fixed by the spec; its Params depend on the batch. */
interface Step {
  kernel: Kernel;
  /** pool: the bag (index into `bags`, the wide bag last). layer: the layer index. */
  index: number;
  /** pool, dense, l2: the buffer written. layer: the buffer read (the other one is written). */
  target: Activation;
  outStride: number;
  outOffset: number;
}

interface Growing {
  buffer: GPUBuffer | undefined;
  bytes: number;
}

/** One call's batch, copied out of the caller's arrays (which it may reuse at once). */
interface PackedBatch {
  batch: number;
  /** Per bag (the wide bag last): ids per row; the bag's ids and mask start at Σ batch·length of the bags before it. */
  lengths: number[];
  ids: Int32Array;
  /** Every bag's mask, then the dense input. */
  values: Float32Array;
}

export async function openWebGpuRanker(bytes: Uint8Array): Promise<Ranker> {
  const spec = readNetwork(bytes);
  const { device } = await requestDawnDevice();
  return WebGpuRanker.create(device, spec);
}

/** The WGSL forward pass of one NetworkSpec on one device. */
export class WebGpuRanker implements Ranker {
  readonly kind = 'webgpu' as const;
  readonly outputs: number;
  private readonly bags: BagSpec[];
  private readonly steps: Step[];
  /** Widest activation: the layer-0 input or any layer's output. */
  private readonly maxWidth: number;
  private readonly final: Activation;
  private readonly paramsSlot: number;
  private readonly params: GPUBuffer;
  private readonly ids: Growing = { buffer: undefined, bytes: 0 };
  private readonly values: Growing = { buffer: undefined, bytes: 0 };
  private readonly a: Growing = { buffer: undefined, bytes: 0 };
  private readonly b: Growing = { buffer: undefined, bytes: 0 };
  private readonly readback: Growing = { buffer: undefined, bytes: 0 };
  /** Bind groups per step, valid while no per-batch buffer has been reallocated. */
  private bindGroups: GPUBindGroup[] | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly device: GPUDevice,
    private readonly spec: NetworkSpec,
    private readonly pipelines: Readonly<Record<Kernel, GPUComputePipeline>>,
    private readonly tables: GPUBuffer[],
    private readonly layers: { weight: GPUBuffer; bias: GPUBuffer }[],
  ) {
    this.bags = spec.wide === undefined ? [...spec.bags] : [...spec.bags, spec.wide];
    this.outputs = networkOutputWidth(spec);
    const width = networkInputWidth(spec);
    this.maxWidth = Math.max(width, ...spec.layers.map((l) => l.outputs));
    this.final = spec.layers.length % 2 === 0 ? 'a' : 'b';
    this.steps = planSteps(spec, width, this.final);
    this.paramsSlot = Math.ceil(WIDE_DEEP_PARAMS_BYTES / device.limits.minUniformBufferOffsetAlignment) * device.limits.minUniformBufferOffsetAlignment;
    this.params = device.createBuffer({
      label: 'kestrel.wide-deep.params',
      size: this.paramsSlot * this.steps.length,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  /** Uploads the spec's weights to `device` and compiles (or takes from the cache) the four kernels. */
  static async create(device: GPUDevice, spec: NetworkSpec): Promise<WebGpuRanker> {
    checkNetworkSpec(spec);
    const [pool, dense, layer, l2] = await Promise.all([POOL_BAG, COPY_DENSE, DENSE_LAYER, L2_ROWS].map((p) => computePipeline(device, p)));
    if (pool === undefined || dense === undefined || layer === undefined || l2 === undefined) throw new Error('missing wide-deep pipeline');
    const limit = maxBindingBytes(device);
    const bags = spec.wide === undefined ? spec.bags : [...spec.bags, spec.wide];
    const weights: [string, Float32Array][] = [
      ...bags.map((bag): [string, Float32Array] => [`kestrel.wide-deep.${bag.name}.table`, bag.table]),
      ...spec.layers.flatMap((l, i): [string, Float32Array][] => [[`kestrel.wide-deep.layer${i}.weight`, l.weight], [`kestrel.wide-deep.layer${i}.bias`, l.bias]]),
    ];
    for (const [label, data] of weights) {
      if (data.byteLength > limit) {
        throw new RangeError(`${label} holds ${data.byteLength} bytes, over this device's ${limit}-byte storage binding limit`);
      }
    }
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const buffers = weights.map(([label, data]) => {
      const buffer = device.createBuffer({ label, size: Math.max(data.byteLength, F32), usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      new Float32Array(buffer.getMappedRange()).set(data);
      buffer.unmap();
      return buffer;
    });
    const invalid = await device.popErrorScope();
    const memory = await device.popErrorScope();
    const failed = invalid ?? memory;
    if (failed !== null) {
      for (const buffer of buffers) buffer.destroy();
      throw new Error(`uploading the network's weights to the GPU failed: ${failed.message}`);
    }
    const tables = buffers.slice(0, bags.length);
    const layers = spec.layers.map((_, i) => {
      const weight = buffers[bags.length + 2 * i];
      const bias = buffers[bags.length + 2 * i + 1];
      if (weight === undefined || bias === undefined) throw new Error(`layer ${i} has no buffers`);
      return { weight, bias };
    });
    return new WebGpuRanker(device, spec, { pool, dense, layer, l2 }, tables, layers);
  }

  score(inputs: NetworkInputs): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new Error('the webgpu ranker is closed'));
    let packed: PackedBatch;
    try {
      packed = this.pack(inputs);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.tail.then(() => this.run(packed));
    this.tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    for (const buffer of [...this.tables, ...this.layers.flatMap((l) => [l.weight, l.bias]), this.params]) buffer.destroy();
    for (const g of [this.ids, this.values, this.a, this.b, this.readback]) {
      g.buffer?.destroy();
      g.buffer = undefined;
    }
    this.bindGroups = undefined;
  }

  /** Checks the inputs as forward.ts does (shapes, ids in range) and copies them into one i32 and one f32 array. */
  private pack(inputs: NetworkInputs): PackedBatch {
    const { batch } = inputs;
    if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`batch must be a non-negative integer, got ${batch}`);
    const denseSize = this.spec.dense?.size ?? 0;
    const lengths: number[] = [];
    let total = 0;
    for (const bag of this.bags) {
      const input = inputs.bags[bag.name];
      if (input === undefined) throw new RangeError(`no input for bag '${bag.name}'`);
      const { ids, mask, length } = input;
      if (!Number.isInteger(length) || length < 1) throw new RangeError(`bag '${bag.name}': length must be a positive integer, got ${length}`);
      if (ids.length < batch * length || mask.length < batch * length) {
        throw new RangeError(`bag '${bag.name}': ids and mask must hold batch × length = ${batch * length} values, got ${ids.length} and ${mask.length}`);
      }
      lengths.push(length);
      total += batch * length;
    }
    const ids = new Int32Array(total);
    const values = new Float32Array(total + batch * denseSize);
    let at = 0;
    this.bags.forEach((bag, b) => {
      const input = inputs.bags[bag.name];
      const n = batch * (lengths[b] ?? 0);
      if (input === undefined) return;
      const bagIds = input.ids.subarray(0, n);
      for (let k = 0; k < n; k++) {
        const id = bagIds[k] ?? 0;
        if (id < 0 || id >= bag.rows) {
          const length = lengths[b] ?? 1;
          throw new RangeError(`bag '${bag.name}': id ${id} at row ${Math.floor(k / length)}, position ${k % length} is outside 0..${bag.rows - 1}`);
        }
      }
      ids.set(bagIds, at);
      values.set(input.mask.subarray(0, n), at);
      at += n;
    });
    if (this.spec.dense !== undefined) {
      const { name } = this.spec.dense;
      const d = inputs.dense;
      if (d === undefined) throw new RangeError(`no values for the dense input '${name}'`);
      if (d.length < batch * denseSize) throw new RangeError(`dense input '${name}' must hold batch × size = ${batch * denseSize} values, got ${d.length}`);
      values.set(d.subarray(0, batch * denseSize), at);
    }
    return { batch, lengths, ids, values };
  }

  private async run(packed: PackedBatch): Promise<Float32Array> {
    const { batch } = packed;
    const outBytes = batch * this.outputs * F32;
    if (batch === 0) return new Float32Array(0);
    if (this.closed) throw new Error('the webgpu ranker was closed while a score call was queued');
    const { device } = this;
    const limits = device.limits;
    const groupsY = Math.ceil(batch / (WIDE_DEEP_TILE * WIDE_DEEP_BLOCK));
    if (groupsY > limits.maxComputeWorkgroupsPerDimension) {
      throw new RangeError(`a batch of ${batch} rows needs ${groupsY} workgroups per layer, over this device's ${limits.maxComputeWorkgroupsPerDimension}`);
    }

    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const grew = [
      this.grow(this.ids, 'ids', packed.ids.byteLength, storage),
      this.grow(this.values, 'values', packed.values.byteLength, storage),
      this.grow(this.a, 'activations.a', batch * this.maxWidth * F32, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC),
      this.grow(this.b, 'activations.b', batch * this.maxWidth * F32, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC),
    ].some(Boolean);
    this.grow(this.readback, 'readback', outBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    if (grew || this.bindGroups === undefined) this.bindGroups = this.steps.map((step) => this.bindGroup(step));
    const { ids, values, readback } = this;
    const finalBuffer = (this.final === 'a' ? this.a : this.b).buffer;
    if (ids.buffer === undefined || values.buffer === undefined || readback.buffer === undefined || finalBuffer === undefined) {
      throw new Error('the webgpu ranker lost its buffers');
    }

    device.queue.writeBuffer(this.params, 0, this.paramsFor(packed));
    if (packed.ids.byteLength > 0) device.queue.writeBuffer(ids.buffer, 0, packed.ids.buffer, 0, packed.ids.byteLength);
    if (packed.values.byteLength > 0) device.queue.writeBuffer(values.buffer, 0, packed.values.buffer, 0, packed.values.byteLength);

    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label: 'kestrel.wide-deep' });
    const pass = encoder.beginComputePass({ label: 'kestrel.wide-deep.pass' });
    this.steps.forEach((step, i) => {
      const bindGroup = this.bindGroups?.[i];
      if (bindGroup === undefined) throw new Error('missing bind group');
      pass.setPipeline(this.pipelines[step.kernel]);
      pass.setBindGroup(0, bindGroup);
      const [x, y] = this.grid(step, batch);
      pass.dispatchWorkgroups(x, y);
    });
    pass.end();
    encoder.copyBufferToBuffer(finalBuffer, 0, readback.buffer, 0, outBytes);
    device.queue.submit([encoder.finish()]);
    const invalid = device.popErrorScope();
    const mapped = readback.buffer.mapAsync(GPUMapMode.READ, 0, outBytes);
    const error = await invalid;
    if (error !== null) {
      await mapped.catch(() => undefined);
      if (readback.buffer.mapState === 'mapped') readback.buffer.unmap();
      throw new Error(`the wide-deep pass failed on the GPU: ${error.message}`);
    }
    await mapped;
    try {
      return new Float32Array(readback.buffer.getMappedRange(0, outBytes).slice(0));
    } finally {
      readback.buffer.unmap();
    }
  }

  /** Every step's Params, each in its own uniform slot (offsets aligned for the bind groups). */
  private paramsFor(packed: PackedBatch): ArrayBuffer {
    const { batch, lengths } = packed;
    const data = new ArrayBuffer(this.paramsSlot * this.steps.length);
    const words = new Uint32Array(data);
    const starts: number[] = [];
    let at = 0;
    for (const length of lengths) {
      starts.push(at);
      at += batch * length;
    }
    this.steps.forEach((step, i) => {
      const p: WideDeepParams = {
        batch, length: 0, dim: 0, outputs: 0, idsOffset: 0, valuesOffset: 0,
        outStride: step.outStride, outOffset: step.outOffset, flags: 0,
      };
      if (step.kernel === 'pool') {
        const bag = this.bags[step.index];
        if (bag === undefined) throw new Error(`no bag ${step.index}`);
        p.length = lengths[step.index] ?? 1;
        p.dim = bag.dim;
        p.idsOffset = p.valuesOffset = starts[step.index] ?? 0;
        p.flags = (bag.mode === 'mean' ? WIDE_DEEP_FLAGS.mean : 0) | (bag === this.spec.wide ? WIDE_DEEP_FLAGS.accumulate : 0);
      } else if (step.kernel === 'dense') {
        p.dim = this.spec.dense?.size ?? 0;
        p.valuesOffset = at;
      } else if (step.kernel === 'layer') {
        const layer = this.spec.layers[step.index];
        if (layer === undefined) throw new Error(`no layer ${step.index}`);
        p.dim = layer.inputs;
        p.outputs = layer.outputs;
        p.flags = layer.activation === 'relu' ? WIDE_DEEP_FLAGS.relu : 0;
      } else {
        p.dim = this.outputs;
      }
      packWideDeepParams(words, (i * this.paramsSlot) / 4, p);
    });
    return data;
  }

  private bindGroup(step: Step): GPUBindGroup {
    const buffer = (g: Growing): GPUBuffer => {
      if (g.buffer === undefined) throw new Error('per-batch buffer missing');
      return g.buffer;
    };
    const target = step.target === 'a' ? this.a : this.b;
    const other = step.target === 'a' ? this.b : this.a;
    const params = { buffer: this.params, offset: this.steps.indexOf(step) * this.paramsSlot, size: WIDE_DEEP_PARAMS_BYTES };
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: params }];
    if (step.kernel === 'pool') {
      const table = this.tables[step.index];
      if (table === undefined) throw new Error(`no table ${step.index}`);
      entries.push(
        { binding: 1, resource: { buffer: buffer(this.ids) } },
        { binding: 2, resource: { buffer: buffer(this.values) } },
        { binding: 3, resource: { buffer: table } },
        { binding: 4, resource: { buffer: buffer(target) } },
      );
    } else if (step.kernel === 'dense') {
      entries.push({ binding: 2, resource: { buffer: buffer(this.values) } }, { binding: 4, resource: { buffer: buffer(target) } });
    } else if (step.kernel === 'layer') {
      const layer = this.layers[step.index];
      if (layer === undefined) throw new Error(`no layer ${step.index}`);
      entries.push(
        { binding: 5, resource: { buffer: buffer(target) } },
        { binding: 6, resource: { buffer: layer.weight } },
        { binding: 7, resource: { buffer: layer.bias } },
        { binding: 8, resource: { buffer: buffer(other) } },
      );
    } else {
      entries.push({ binding: 4, resource: { buffer: buffer(target) } });
    }
    return this.device.createBindGroup({
      label: `kestrel.wide-deep.${step.kernel}${step.index}`,
      layout: this.pipelines[step.kernel].getBindGroupLayout(0),
      entries,
    });
  }

  /** Workgroups of one step: 1-D kernels wrap past the per-dimension limit into y; layers tile 32×32. */
  private grid(step: Step, batch: number): [number, number] {
    if (step.kernel === 'layer') {
      const outputs = this.spec.layers[step.index]?.outputs ?? 1;
      const span = WIDE_DEEP_TILE * WIDE_DEEP_BLOCK;
      return [Math.ceil(outputs / span), Math.ceil(batch / span)];
    }
    const dim = step.kernel === 'pool' ? (this.bags[step.index]?.dim ?? 1) : step.kernel === 'dense' ? (this.spec.dense?.size ?? 1) : 1;
    const groups = Math.ceil((batch * dim) / WIDE_DEEP_WORKGROUP_SIZE);
    const x = Math.min(groups, this.device.limits.maxComputeWorkgroupsPerDimension);
    return [x, Math.ceil(groups / x)];
  }

  /** Makes `g` hold at least `bytes`; true when it was (re)allocated. */
  private grow(g: Growing, name: string, bytes: number, usage: number): boolean {
    if (g.buffer !== undefined && g.bytes >= bytes) return false;
    const limit = maxBindingBytes(this.device);
    if (bytes > limit) {
      throw new RangeError(`the batch needs a ${bytes}-byte '${name}' buffer, over this device's ${limit}-byte storage binding limit; score it in smaller batches`);
    }
    g.buffer?.destroy();
    const size = Math.min(Math.max(GROW_GRANULE, Math.ceil(bytes / GROW_GRANULE) * GROW_GRANULE), Math.max(limit - (limit % F32), bytes));
    g.buffer = this.device.createBuffer({ label: `kestrel.wide-deep.${name}`, size, usage });
    g.bytes = size;
    return true;
  }
}

/** Largest buffer one storage binding may cover on `device`. */
function maxBindingBytes(device: GPUDevice): number {
  return Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
}

/** The dispatches of one forward pass, in order (see the header). */
function planSteps(spec: NetworkSpec, width: number, final: Activation): Step[] {
  const steps: Step[] = [];
  let offset = 0;
  spec.bags.forEach((bag, index) => {
    steps.push({ kernel: 'pool', index, target: 'a', outStride: width, outOffset: offset });
    offset += bag.dim;
  });
  if (spec.dense !== undefined) steps.push({ kernel: 'dense', index: 0, target: 'a', outStride: width, outOffset: offset });
  spec.layers.forEach((_, index) => steps.push({ kernel: 'layer', index, target: index % 2 === 0 ? 'a' : 'b', outStride: 0, outOffset: 0 }));
  const outputs = networkOutputWidth(spec);
  if (spec.wide !== undefined) steps.push({ kernel: 'pool', index: spec.bags.length, target: final, outStride: outputs, outOffset: 0 });
  if (spec.output === 'l2') steps.push({ kernel: 'l2', index: 0, target: final, outStride: outputs, outOffset: 0 });
  return steps;
}
