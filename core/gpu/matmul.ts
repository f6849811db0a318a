// Row-major SGEMM on WebGPU with shaders/matmul.wgsl: the GPU twin of wasm/index.ts's WasmMatmul.
// WebGPU reads results back asynchronously, so `gemm` returns a promise and this class is not a
// (synchronous) training/nn MatmulBackend; it suits large products a caller can await, such as
// scoring a whole catalogue, and sizes past MATMUL_GPU_MIN_MACS.
import { MATMUL_BLOCK, MATMUL_PARAMS_BYTES, MATMUL_TILE, matmulProgram } from '../../shaders/index.ts';
import { computePipeline } from './dawn.ts';

const F32 = 4;

/** A storage buffer that only grows, so repeated calls of one shape allocate nothing on the GPU. */
interface GrowingBuffer {
  buffer: GPUBuffer | undefined;
  bytes: number;
}

export class WgslMatmul {
  readonly name = 'wgsl';
  private readonly a: GrowingBuffer = { buffer: undefined, bytes: 0 };
  private readonly b: GrowingBuffer = { buffer: undefined, bytes: 0 };
  private readonly c: GrowingBuffer = { buffer: undefined, bytes: 0 };
  private readonly readback: GrowingBuffer = { buffer: undefined, bytes: 0 };
  private readonly params: GPUBuffer;
  /** Calls share the buffers, so each waits for the one before. */
  private tail: Promise<unknown> = Promise.resolve();

  /** Pipelines indexed by transA·2 + transB. */
  private constructor(private readonly device: GPUDevice, private readonly pipelines: readonly GPUComputePipeline[]) {
    this.params = device.createBuffer({
      label: 'kestrel.matmul.params',
      size: MATMUL_PARAMS_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  static async create(device: GPUDevice): Promise<WgslMatmul> {
    const variants = [[false, false], [false, true], [true, false], [true, true]] as const;
    return new WgslMatmul(device, await Promise.all(variants.map(([ta, tb]) => computePipeline(device, matmulProgram(ta, tb)))));
  }

  /** C[m×n] = alpha·op(A)·op(B) + beta·C, as MatmulBackend.gemm; resolves once C holds the result. */
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array,
  ): Promise<void> {
    if (a.length < m * k || b.length < k * n || c.length < m * n) {
      throw new RangeError(
        `gemm ${m}×${k} · ${k}×${n} needs A ≥ ${m * k}, B ≥ ${k * n}, C ≥ ${m * n} floats; ` +
        `got ${a.length}, ${b.length}, ${c.length}`,
      );
    }
    const groupsX = Math.ceil(n / (MATMUL_TILE * MATMUL_BLOCK));
    const groupsY = Math.ceil(m / (MATMUL_TILE * MATMUL_BLOCK));
    const limit = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groupsX > limit || groupsY > limit) {
      throw new RangeError(`gemm of ${m}×${n} needs ${groupsY}×${groupsX} workgroups, over this device's ${limit} per dimension`);
    }
    const run = this.tail.then(() => this.run(transA, transB, m, n, k, alpha, a, b, beta, c, groupsX, groupsY));
    this.tail = run.catch(() => undefined);
    return run;
  }

  destroy(): void {
    for (const g of [this.a, this.b, this.c, this.readback]) g.buffer?.destroy();
    this.params.destroy();
  }

  private async run(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array,
    groupsX: number, groupsY: number,
  ): Promise<void> {
    if (m === 0 || n === 0) return;
    const { device } = this;
    const cBytes = m * n * F32;
    // Zero-length bindings are invalid: keep at least one float in A and B (k = 0 reads neither).
    const aBuffer = this.upload(this.a, 'a', a.subarray(0, Math.max(m * k, 1)));
    const bBuffer = this.upload(this.b, 'b', b.subarray(0, Math.max(k * n, 1)));
    const cBuffer = this.upload(this.c, 'c', c.subarray(0, m * n), GPUBufferUsage.COPY_SRC);
    const readback = this.grow(this.readback, 'readback', cBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const params = new ArrayBuffer(MATMUL_PARAMS_BYTES);
    new Uint32Array(params, 0, 3).set([m, n, k]);
    new Float32Array(params, 12, 2).set([alpha, beta]);
    device.queue.writeBuffer(this.params, 0, params);

    const pipeline = this.pipelines[(transA ? 2 : 0) + (transB ? 1 : 0)];
    if (pipeline === undefined) throw new Error('WgslMatmul has no pipeline for this transpose combination');
    const bindGroup = device.createBindGroup({
      label: 'kestrel.matmul',
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.params } },
        { binding: 1, resource: { buffer: aBuffer, size: Math.max(m * k, 1) * F32 } },
        { binding: 2, resource: { buffer: bBuffer, size: Math.max(k * n, 1) * F32 } },
        { binding: 3, resource: { buffer: cBuffer, size: cBytes } },
      ],
    });
    const encoder = device.createCommandEncoder({ label: 'kestrel.matmul' });
    const pass = encoder.beginComputePass({ label: 'kestrel.matmul.pass' });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groupsX, groupsY);
    pass.end();
    encoder.copyBufferToBuffer(cBuffer, 0, readback, 0, cBytes);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ, 0, cBytes);
    try {
      c.set(new Float32Array(readback.getMappedRange(0, cBytes)));
    } finally {
      readback.unmap();
    }
  }

  private upload(target: GrowingBuffer, name: string, data: Float32Array, extraUsage = 0): GPUBuffer {
    const buffer = this.grow(target, name, data.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | extraUsage);
    this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buffer;
  }

  private grow(target: GrowingBuffer, name: string, bytes: number, usage: number): GPUBuffer {
    if (target.buffer !== undefined && target.bytes >= bytes) return target.buffer;
    target.buffer?.destroy();
    // Rounded up to 4 KiB so a slowly growing batch does not reallocate every call.
    const size = Math.ceil(bytes / 4096) * 4096;
    target.buffer = this.device.createBuffer({ label: `kestrel.matmul.${name}`, size, usage });
    target.bytes = size;
    return target.buffer;
  }
}
