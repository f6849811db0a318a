// Host side of the AssemblyScript kernels in wasm/assembly/. Runtime-free: the edge Worker hands
// in the module its bundler compiled, Node hands in one compiled from wasm/build/*.wasm.

interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  scoreDot(query: number, items: number, n: number, dim: number, out: number): void;
}

const PAGE_BYTES = 65536;
const F32 = 4;

function isKernelExports(e: WebAssembly.Exports): e is WebAssembly.Exports & KernelExports {
  return e.memory instanceof WebAssembly.Memory && typeof e.heapBase === 'function' &&
    typeof e.scoreDot === 'function';
}

export async function instantiateKernels(module: WebAssembly.Module): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(module, { env: { abort: onAbort } });
  if (!isKernelExports(instance.exports)) {
    throw new Error('wasm module does not export the Kestrel kernels; rebuild it with `npm run build:wasm`');
  }
  return instance.exports;
}

function onAbort(_msg: number, _file: number, line: number, column: number): never {
  throw new Error(`wasm kernel aborted at ${line}:${column}`);
}

/**
 * Scores one query against a resident set of item vectors with the SIMD `scoreDot` kernel.
 * Items are copied into wasm memory once (`setItems`); each `score` copies only the query.
 * Layout in linear memory, from heapBase: query[dim] | items[n*dim] | out[n].
 */
export class WasmScorer {
  private n = 0;
  private dim = 0;
  private queryAt = 0;
  private itemsAt = 0;
  private outAt = 0;

  constructor(private readonly kernels: KernelExports) {}

  get size(): number {
    return this.n;
  }

  setItems(items: Float32Array, dim: number): void {
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`);
    if (items.length % dim !== 0) {
      throw new RangeError(`items has ${items.length} floats, not a multiple of dim ${dim}`);
    }
    const n = items.length / dim;
    // 16-byte alignment keeps every v128 load aligned when dim % 4 == 0.
    const base = align16(this.kernels.heapBase());
    const queryAt = base;
    const itemsAt = align16(queryAt + dim * F32);
    const outAt = align16(itemsAt + items.length * F32);
    this.ensureBytes(outAt + n * F32);
    new Float32Array(this.kernels.memory.buffer, itemsAt, items.length).set(items);
    this.n = n;
    this.dim = dim;
    this.queryAt = queryAt;
    this.itemsAt = itemsAt;
    this.outAt = outAt;
  }

  /** Scores into `out` (length n) when given, else into a fresh array. */
  score(query: Float32Array, out = new Float32Array(this.n)): Float32Array {
    if (query.length !== this.dim) {
      throw new RangeError(`query has ${query.length} dims, the items have ${this.dim}`);
    }
    new Float32Array(this.kernels.memory.buffer, this.queryAt, this.dim).set(query);
    this.kernels.scoreDot(this.queryAt, this.itemsAt, this.n, this.dim, this.outAt);
    out.set(new Float32Array(this.kernels.memory.buffer, this.outAt, this.n));
    return out;
  }

  private ensureBytes(bytes: number): void {
    const have = this.kernels.memory.buffer.byteLength;
    if (bytes > have) this.kernels.memory.grow(Math.ceil((bytes - have) / PAGE_BYTES));
  }
}

function align16(offset: number): number {
  return (offset + 15) & ~15;
}
