// Batched dot-product scoring on WebGPU: the GPU twin of wasm/index.ts's WasmScorer.
import {
  SCORE_PARAMS_BYTES,
  SCORE_SCALAR,
  SCORE_VEC4,
  SCORE_WORKGROUP_SIZE,
  scoreProgram,
} from '../../shaders/index.ts';
import { computePipeline } from './dawn.ts';

const F32 = 4;

export interface WgslScorerOptions {
  /**
   * Most item rows bound in one dispatch. By default as many as fit the device's storage-binding
   * limit; set it lower to exercise the multi-chunk path in tests.
   */
  chunkRows?: number;
}

/** Rows bound and dispatched together; a matrix over the binding limit is split into several. */
interface Chunk {
  start: number;
  rows: number;
  items: GPUBuffer;
  params: GPUBuffer;
  bindGroup: GPUBindGroup;
}

/**
 * Scores one query against a resident set of item vectors with shaders/score.wgsl.
 * Items are uploaded once (`setItems`) and stay on the GPU; each `score` uploads only the query
 * and reads back the n scores through one reused MAP_READ buffer. Calls are serialised, since
 * they share that buffer.
 */
export class WgslScorer {
  private n = 0;
  private dims = 0;
  private pipeline: GPUComputePipeline;
  private chunks: Chunk[] = [];
  private query: GPUBuffer | undefined;
  private scores: GPUBuffer | undefined;
  private readback: GPUBuffer | undefined;
  /** Out-of-memory or validation failure of the last setItems, reported by the next score. */
  private uploaded: Promise<GPUError | null> = Promise.resolve(null);
  private tail: Promise<unknown> = Promise.resolve();
  private busy = 0;
  private destroyed = false;

  private constructor(
    private readonly device: GPUDevice,
    private readonly pipelines: { vec4: GPUComputePipeline; scalar: GPUComputePipeline },
    private readonly maxChunkRows: number,
  ) {
    this.pipeline = pipelines.vec4;
  }

  static async create(device: GPUDevice, options: WgslScorerOptions = {}): Promise<WgslScorer> {
    const chunkRows = options.chunkRows ?? Number.POSITIVE_INFINITY;
    if (!(chunkRows >= 1)) throw new RangeError(`chunkRows must be at least 1, got ${chunkRows}`);
    const [vec4, scalar] = await Promise.all([
      computePipeline(device, SCORE_VEC4),
      computePipeline(device, SCORE_SCALAR),
    ]);
    return new WgslScorer(device, { vec4, scalar }, chunkRows);
  }

  get size(): number {
    return this.n;
  }

  get dim(): number {
    return this.dims;
  }

  /** Uploads `items` (row-major, n x dim) to GPU memory, replacing the previous set. */
  setItems(items: Float32Array, dim: number): void {
    this.assertLive();
    const program = scoreProgram(dim);
    if (items.length % dim !== 0) {
      throw new RangeError(`items has ${items.length} floats, not a multiple of dim ${dim}`);
    }
    const n = items.length / dim;
    const { device } = this;
    const limits = device.limits;
    if (n * F32 > Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize)) {
      throw new RangeError(`${n} items need a ${n * F32}-byte score buffer, over this device's limits`);
    }

    if (this.busy > 0) {
      throw new Error(`setItems called while ${this.busy} score calls are pending; await them first`);
    }
    this.releaseItems();
    this.n = n;
    this.dims = dim;
    this.pipeline = program === SCORE_VEC4 ? this.pipelines.vec4 : this.pipelines.scalar;
    this.uploaded = Promise.resolve(null);
    if (n === 0) return;

    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const query = device.createBuffer({
      label: 'kestrel.score.query',
      size: dim * F32,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    const scores = device.createBuffer({
      label: 'kestrel.score.scores',
      size: n * F32,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    this.readback = device.createBuffer({
      label: 'kestrel.score.readback',
      size: n * F32,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const rowsPerChunk = this.rowsPerChunk(dim);
    for (let start = 0; start < n; start += rowsPerChunk) {
      this.chunks.push(this.uploadChunk(items, start, Math.min(rowsPerChunk, n - start), query, scores));
    }
    this.query = query;
    this.scores = scores;
    const validation = device.popErrorScope();
    const memory = device.popErrorScope();
    this.uploaded = Promise.all([validation, memory]).then(([v, m]) => v ?? m);
  }

  /**
   * Scores every item against `query` (length dim) into `out` (length n) when given, else into
   * a fresh array.
   */
  async score(query: Float32Array, out?: Float32Array): Promise<Float32Array> {
    this.assertLive();
    if (query.length !== this.dims) {
      throw new RangeError(`query has ${query.length} dims, the items have ${this.dims}`);
    }
    const target = out ?? new Float32Array(this.n);
    if (target.length !== this.n) throw new RangeError(`out has length ${target.length}, want ${this.n}`);
    // The upload happens a few ticks later (after earlier calls); copy the query (dim floats) so
    // the caller may reuse its array at once.
    const q = query.slice();
    this.busy++;
    const run = this.tail.then(() => this.run(q, target)).finally(() => this.busy--);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Frees the GPU buffers. The pipelines stay in the device's cache for the next scorer. */
  destroy(): void {
    this.releaseItems();
    this.n = 0;
    this.destroyed = true;
  }

  private async run(query: Float32Array, out: Float32Array): Promise<Float32Array> {
    const failed = await this.uploaded;
    if (failed !== null) {
      throw new Error(`uploading ${this.n} x ${this.dims} items to the GPU failed: ${failed.message}`);
    }
    const { device, query: queryBuffer, scores, readback } = this;
    if (this.n === 0) return out;
    if (queryBuffer === undefined || scores === undefined || readback === undefined) {
      throw new Error('WgslScorer was destroyed while a score call was queued');
    }
    const bytes = this.n * F32;
    device.queue.writeBuffer(queryBuffer, 0, query.buffer, query.byteOffset, query.byteLength);
    const encoder = device.createCommandEncoder({ label: 'kestrel.score' });
    const pass = encoder.beginComputePass({ label: 'kestrel.score.pass' });
    pass.setPipeline(this.pipeline);
    for (const chunk of this.chunks) {
      const [x, y] = this.grid(chunk.rows);
      pass.setBindGroup(0, chunk.bindGroup);
      pass.dispatchWorkgroups(x, y);
    }
    pass.end();
    encoder.copyBufferToBuffer(scores, 0, readback, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ, 0, bytes);
    try {
      out.set(new Float32Array(readback.getMappedRange(0, bytes)));
    } finally {
      readback.unmap();
    }
    return out;
  }

  private uploadChunk(
    items: Float32Array,
    start: number,
    rows: number,
    query: GPUBuffer,
    scores: GPUBuffer,
  ): Chunk {
    const { device, dims } = this;
    const label = `kestrel.score.items[${start}..${start + rows})`;
    const buffer = device.createBuffer({
      label,
      size: rows * dims * F32,
      usage: GPUBufferUsage.STORAGE,
      mappedAtCreation: true,
    });
    new Float32Array(buffer.getMappedRange()).set(items.subarray(start * dims, (start + rows) * dims));
    buffer.unmap();
    const params = device.createBuffer({
      label: `${label}.params`,
      size: SCORE_PARAMS_BYTES,
      usage: GPUBufferUsage.UNIFORM,
      mappedAtCreation: true,
    });
    new Uint32Array(params.getMappedRange()).set([rows, dims, dims >>> 2, 0]);
    params.unmap();
    const bindGroup = device.createBindGroup({
      label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: query } },
        { binding: 2, resource: { buffer } },
        { binding: 3, resource: { buffer: scores, offset: start * F32, size: rows * F32 } },
      ],
    });
    return { start, rows, items: buffer, params, bindGroup };
  }

  /** Rows per chunk: what one storage binding holds, a multiple of the offset alignment. */
  private rowsPerChunk(dim: number): number {
    const limits = this.device.limits;
    const maxBytes = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
    // Each chunk binds the score buffer at offset start * 4, which must be aligned.
    const alignRows = Math.max(1, limits.minStorageBufferOffsetAlignment / F32);
    const rows = Math.min(this.maxChunkRows, Math.floor(maxBytes / (dim * F32)));
    return Math.max(alignRows, Math.floor(rows / alignRows) * alignRows);
  }

  /** Workgroup grid for `rows` rows; past 65535 groups the grid wraps into y (see score.wgsl). */
  private grid(rows: number): [number, number] {
    const groups = Math.ceil(rows / SCORE_WORKGROUP_SIZE);
    const x = Math.min(groups, this.device.limits.maxComputeWorkgroupsPerDimension);
    return [x, Math.ceil(groups / x)];
  }

  private releaseItems(): void {
    for (const chunk of this.chunks) {
      chunk.items.destroy();
      chunk.params.destroy();
    }
    this.chunks = [];
    this.query?.destroy();
    this.scores?.destroy();
    this.readback?.destroy();
    this.query = this.scores = this.readback = undefined;
  }

  private assertLive(): void {
    if (this.destroyed) throw new Error('WgslScorer was destroyed');
  }
}
