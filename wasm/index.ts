// Host side of the AssemblyScript kernels in wasm/assembly/. Runtime-free: the edge Worker hands
// in the module its bundler compiled, Node hands in one compiled from wasm/build/*.wasm.
import { Xoshiro128 } from '../core/domain/random.ts';
import { checkPosteriors, checkRerank, checkRerankShape, explorationPool, nonFiniteRelevance, placeFromPool } from '../core/domain/rerank.ts';
import type { ExplorationPool, RerankInput, RerankOptions, RerankResult } from '../core/domain/rerank.ts';

interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  scoreDot(query: number, items: number, n: number, dim: number, out: number): void;
  sampleBeta(alpha: number, beta: number, n: number, state: number, out: number): void;
  gemm(
    transA: number, transB: number, m: number, n: number, k: number,
    alpha: number, a: number, b: number, beta: number, c: number, scratch: number,
  ): void;
  matmulScratchBytes(m: number, n: number, k: number): number;
  inBatchSoftmaxRows(s: number, batch: number, itemIds: number, logQ: number, weights: number): number;
  exp64(x: number, vector: number): number;
  poolRows(dst: number, rows: number, src: number, offsets: number, weights: number, starts: number, dim: number, accumulate: number): void;
  rerank(
    n: number, dim: number, coreScore: number, emb: number, shown: number, interest: number,
    affinityWeight: number, shownPenalty: number, lambda: number, count: number, scratch: number, picks: number,
  ): number;
  rerankScratchBytes(n: number, dim: number): number;
  sumRows(acc: number, weights: number, n: number, rows: number, count: number): void;
  firstLayerRows(out: number, n: number, user: number, table: number, width: number, rows: number, dense: number, denseWidth: number, weight: number, relu: number): void;
}

const PAGE_BYTES = 65536;
const F32 = 4;
const F64 = 8;

/** Grows `memory` to hold at least `bytes` (views on its old buffer are detached then). */
function growTo(memory: WebAssembly.Memory, bytes: number): void {
  const have = memory.buffer.byteLength;
  if (bytes > have) memory.grow(Math.ceil((bytes - have) / PAGE_BYTES));
}

function isKernelExports(e: WebAssembly.Exports): e is WebAssembly.Exports & KernelExports {
  return e.memory instanceof WebAssembly.Memory && typeof e.heapBase === 'function' &&
    typeof e.scoreDot === 'function' && typeof e.sampleBeta === 'function' &&
    typeof e.gemm === 'function' && typeof e.matmulScratchBytes === 'function' &&
    typeof e.inBatchSoftmaxRows === 'function' && typeof e.exp64 === 'function' && typeof e.poolRows === 'function' &&
    typeof e.rerank === 'function' && typeof e.rerankScratchBytes === 'function' && typeof e.sumRows === 'function' &&
    typeof e.firstLayerRows === 'function';
}

/** instantiateKernels without awaiting: for a module already compiled (Node instantiates any size synchronously). */
export function instantiateKernelsSync(module: WebAssembly.Module): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { abort: onAbort, log: Math.log } });
  if (!isKernelExports(instance.exports)) {
    throw new Error('wasm module does not export the Kestrel kernels; rebuild it with `npm run build:wasm`');
  }
  return instance.exports;
}

export async function instantiateKernels(module: WebAssembly.Module): Promise<KernelExports> {
  // `log`: the softmax kernel takes the host's Math.log so that its loss matches the TypeScript pass bit for bit.
  const instance = await WebAssembly.instantiate(module, { env: { abort: onAbort, log: Math.log } });
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
  score(query: Float32Array, out: Float32Array = new Float32Array(this.n)): Float32Array {
    if (query.length !== this.dim) {
      throw new RangeError(`query has ${query.length} dims, the items have ${this.dim}`);
    }
    new Float32Array(this.kernels.memory.buffer, this.queryAt, this.dim).set(query);
    this.kernels.scoreDot(this.queryAt, this.itemsAt, this.n, this.dim, this.outAt);
    out.set(new Float32Array(this.kernels.memory.buffer, this.outAt, this.n));
    return out;
  }

  private ensureBytes(bytes: number): void {
    growTo(this.kernels.memory, bytes);
  }
}

/**
 * Sums of rows of a resident n × n float32 matrix with the `sumRows` kernel: the item-item
 * source's x·W for a history x, the same bits as itemItemSums in TypeScript
 * (training/eval/baselines/cooccurrence.ts). The matrix is copied in once (`setMatrix`); each call
 * copies the row list in and the n sums out. Layout from heapBase: matrix[n·n] | acc[n] | rows.
 * It owns the instance's memory above heapBase, like WasmScorer: give each its own instance.
 */
export class WasmRowSums {
  private n = 0;
  private matrixAt = 0;
  private accAt = 0;
  private rowsAt = 0;

  constructor(private readonly kernels: KernelExports) {}

  setMatrix(weights: Float32Array, n: number): void {
    if (!Number.isInteger(n) || n < 0 || weights.length !== n * n) throw new RangeError(`the matrix holds ${weights.length} floats, not n × n for n = ${n}`);
    const matrixAt = align16(this.kernels.heapBase());
    const accAt = align16(matrixAt + weights.length * F32);
    this.rowsAt = align16(accAt + n * F32);
    this.ensureBytes(this.rowsAt + n * F32);
    new Float32Array(this.kernels.memory.buffer, matrixAt, weights.length).set(weights);
    this.n = n;
    this.matrixAt = matrixAt;
    this.accAt = accAt;
  }

  /** acc[j] = Σ over `rows` (row indexes, each < n) of matrix[row][j]; acc has n values. */
  sums(rows: Int32Array, acc: Float32Array): void {
    const { n } = this;
    if (acc.length !== n) throw new RangeError(`acc holds ${acc.length} values, the matrix has ${n} columns`);
    for (const r of rows) if (!(r >= 0 && r < n)) throw new RangeError(`row ${r} is outside 0..${n - 1}`);
    this.ensureBytes(this.rowsAt + rows.length * 4);
    new Int32Array(this.kernels.memory.buffer, this.rowsAt, rows.length).set(rows);
    this.kernels.sumRows(this.accAt, this.matrixAt, n, this.rowsAt, rows.length);
    acc.set(new Float32Array(this.kernels.memory.buffer, this.accAt, n));
  }

  private ensureBytes(bytes: number): void {
    growTo(this.kernels.memory, bytes);
  }
}

/**
 * The factored ranker's first layer per candidate with the `firstLayerRows` kernel
 * (core/ranking/factored.ts): act(user + table row + dense · weight). The table (each item's share
 * of the layer) lives in wasm memory (`setTable`, then written through `table()`); each call
 * copies the user's share, row indexes, dense features and their weight rows in and the rows out.
 * Layout from heapBase: table | user | weight | rows | dense | out. It owns the instance's memory
 * above heapBase: give each its own instance.
 */
export class WasmFirstLayer {
  private rows = 0;
  private width = 0;
  private tableAt = 0;
  private view: Float32Array | undefined;

  constructor(private readonly kernels: KernelExports) {}

  /** Lays out a zeroed table of `rows` × `width` floats (a fresh instance's memory is zero). */
  setTable(rows: number, width: number): void {
    if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(width) || width < 1) throw new RangeError(`a table needs whole rows ≥ 0 and width ≥ 1, got ${rows} × ${width}`);
    if (this.view !== undefined) throw new Error('the table is laid out once per instance');
    this.tableAt = align16(this.kernels.heapBase());
    this.ensureBytes(this.tableAt + rows * width * F32);
    this.rows = rows;
    this.width = width;
    this.view = new Float32Array(this.kernels.memory.buffer, this.tableAt, rows * width);
  }

  /** The table in wasm memory, row-major (a view, renewed when memory grows: do not keep it across calls). */
  table(): Float32Array {
    const { buffer } = this.kernels.memory;
    if (this.view === undefined) throw new Error('no table: call setTable first');
    if (this.view.buffer !== buffer) this.view = new Float32Array(buffer, this.tableAt, this.rows * this.width);
    return this.view;
  }

  /**
   * out row r = act(user + table row rows[r] + Σ_k dense[r·denseWidth + k] · weight row k), the
   * kernel's float32 steps (firstLayerRowsReference gives the same bits); act is ReLU when `relu`.
   */
  compute(user: Float32Array, rows: Int32Array, dense: Float32Array, denseWidth: number, weight: Float32Array, relu: boolean, out: Float32Array): void {
    const n = rows.length;
    const { width } = this;
    if (user.length !== width || weight.length !== denseWidth * width || dense.length < n * denseWidth || out.length !== n * width) {
      throw new RangeError(
        `${n} rows of ${width} need user = ${width}, weight = ${denseWidth * width}, dense ≥ ${n * denseWidth} and out = ${n * width} floats, ` +
        `got ${user.length}, ${weight.length}, ${dense.length} and ${out.length}`,
      );
    }
    for (const r of rows) if (!(r >= 0 && r < this.rows)) throw new RangeError(`row ${r} is outside the table's 0..${this.rows - 1}`);
    const userAt = align16(this.tableAt + this.rows * width * F32);
    const weightAt = align16(userAt + width * F32);
    const rowsAt = align16(weightAt + weight.length * F32);
    const denseAt = align16(rowsAt + n * 4);
    const outAt = align16(denseAt + n * denseWidth * F32);
    this.ensureBytes(outAt + out.length * F32);
    const { buffer } = this.kernels.memory;
    new Float32Array(buffer, userAt, width).set(user);
    new Float32Array(buffer, weightAt, weight.length).set(weight);
    new Int32Array(buffer, rowsAt, n).set(rows);
    new Float32Array(buffer, denseAt, n * denseWidth).set(dense.subarray(0, n * denseWidth));
    this.kernels.firstLayerRows(outAt, n, userAt, this.tableAt, width, rowsAt, denseAt, denseWidth, weightAt, relu ? 1 : 0);
    out.set(new Float32Array(buffer, outAt, out.length));
  }

  private ensureBytes(bytes: number): void {
    growTo(this.kernels.memory, bytes);
  }
}

/** Bytes of the xoshiro128** state the `sampleBeta` kernel reads and writes back. */
const PRNG_STATE_BYTES = 16;

/**
 * Thompson-sampling draws with the `sampleBeta` kernel: one Beta(alpha[i], beta[i]) sample per arm.
 * The PRNG is the caller's `Xoshiro128` (core/domain/random.ts): its state goes into wasm memory
 * for the call and comes back advanced, so WASM and the TypeScript reference can share, resume or
 * replay one stream, and a seeded call writes the same bits as `sampleBetaInto`.
 * Layout in linear memory, from heapBase: state[4 x u32] | alpha[n] | beta[n] | out[n].
 * Memory is laid out once per arm count; calls with the same count allocate nothing in wasm. Like
 * `WasmScorer`, it owns the instance's memory above heapBase: give each its own instance.
 */
export class WasmBetaSampler {
  private n = -1;
  private stateAt = 0;
  private alphaAt = 0;
  private betaAt = 0;
  private outAt = 0;

  constructor(private readonly kernels: KernelExports) {}

  /** Fills `out` (length n, fresh when omitted) with Beta(alpha[i], beta[i]) draws, advancing `rng`. */
  sample(alpha: Float32Array, beta: Float32Array, rng: Xoshiro128, out = new Float32Array(alpha.length)): Float32Array {
    const n = alpha.length;
    if (beta.length !== n || out.length !== n) {
      throw new RangeError(`alpha, beta and out must have one entry per arm: got ${n}, ${beta.length}, ${out.length}`);
    }
    for (let i = 0; i < n; i++) {
      const a = alpha[i] as number;
      const b = beta[i] as number;
      if (!(a > 0 && b > 0 && a < Infinity && b < Infinity)) {
        throw new RangeError(`arm ${i} has Beta(${a}, ${b}); both shapes must be positive and finite`);
      }
    }
    this.layout(n);
    const buffer = this.kernels.memory.buffer;
    const state = new Uint32Array(buffer, this.stateAt, 4);
    state.set(rng.state);
    new Float32Array(buffer, this.alphaAt, n).set(alpha);
    new Float32Array(buffer, this.betaAt, n).set(beta);
    this.kernels.sampleBeta(this.alphaAt, this.betaAt, n, this.stateAt, this.outAt);
    rng.state.set(state);
    out.set(new Float32Array(buffer, this.outAt, n));
    return out;
  }

  private layout(n: number): void {
    if (n === this.n) return;
    const stateAt = align16(this.kernels.heapBase());
    const alphaAt = align16(stateAt + PRNG_STATE_BYTES);
    const betaAt = align16(alphaAt + n * F32);
    const outAt = align16(betaAt + n * F32);
    const have = this.kernels.memory.buffer.byteLength;
    const need = outAt + n * F32;
    if (need > have) this.kernels.memory.grow(Math.ceil((need - have) / PAGE_BYTES));
    this.n = n;
    this.stateAt = stateAt;
    this.alphaAt = alphaAt;
    this.betaAt = betaAt;
    this.outAt = outAt;
  }
}

/**
 * Row-major SGEMM with the SIMD `gemm` kernel (wasm/assembly/matmul.ts):
 * C[m×n] = alpha·op(A)·op(B) + beta·C, op(X) = Xᵀ when its flag is set. Satisfies training/nn's
 * `MatmulBackend` structurally, so this file stays free of training imports.
 * Each call copies A, B (and C when beta ≠ 0) in and C out. Layout in linear memory, from
 * heapBase: A | B | C | scratch (the kernel's packed panels). Memory only grows, to the largest
 * call seen, so a training loop of fixed shapes allocates nothing in wasm after its first step.
 * Like `WasmScorer`, it owns the instance's memory above heapBase: give each its own instance.
 */
export class WasmMatmul {
  readonly name = 'wasm-simd';
  /** A view of all of linear memory, renewed when memory grows (growing detaches the old buffer). */
  private heap: Float32Array;

  constructor(private readonly kernels: KernelExports) {
    this.heap = new Float32Array(kernels.memory.buffer);
  }

  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array,
  ): void {
    if (a.length < m * k || b.length < k * n || c.length < m * n) {
      throw new RangeError(
        `gemm ${m}×${k} · ${k}×${n} needs A ≥ ${m * k}, B ≥ ${k * n}, C ≥ ${m * n} floats; ` +
        `got ${a.length}, ${b.length}, ${c.length}`,
      );
    }
    if (m === 0 || n === 0) return;
    const aAt = align16(this.kernels.heapBase());
    const bAt = align16(aAt + m * k * F32);
    const cAt = align16(bAt + k * n * F32);
    const scratchAt = align16(cAt + m * n * F32);
    this.ensureBytes(scratchAt + this.kernels.matmulScratchBytes(m, n, k));
    const heap = this.heap;
    heap.set(a.length === m * k ? a : a.subarray(0, m * k), aAt / F32);
    heap.set(b.length === k * n ? b : b.subarray(0, k * n), bAt / F32);
    const cView = c.length === m * n ? c : c.subarray(0, m * n);
    if (beta !== 0) heap.set(cView, cAt / F32);
    this.kernels.gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, aAt, bAt, beta, cAt, scratchAt);
    cView.set(heap.subarray(cAt / F32, cAt / F32 + m * n));
  }

  /**
   * InBatchSoftmax's row passes (training/nn/backend.ts `InBatchSoftmaxRows`) in the
   * `inBatchSoftmaxRows` kernel. Copies the batch × batch logits in and out (2 MiB at batch 512),
   * cheap next to the batch² exps it takes over. Layout from heapBase: s | itemIds | logQ | weights.
   */
  readonly inBatchSoftmaxRows = (
    s: Float32Array, batch: number, itemIds: Int32Array, logQ: Float32Array | undefined, weights: Float32Array | undefined,
  ): number => {
    if (s.length < batch * batch || itemIds.length < batch || (logQ && logQ.length < batch) || (weights && weights.length < batch)) {
      throw new RangeError(`inBatchSoftmaxRows for a batch of ${batch} needs ${batch * batch} logits and ${batch} ids, logQ and weights`);
    }
    if (batch === 0) return 0;
    const sAt = align16(this.kernels.heapBase());
    const idsAt = align16(sAt + batch * batch * F32);
    const logQAt = align16(idsAt + batch * F32);
    const weightsAt = align16(logQAt + batch * F32);
    this.ensureBytes(weightsAt + batch * F32);
    const heap = this.heap;
    const sView = s.subarray(0, batch * batch);
    heap.set(sView, sAt / F32);
    new Int32Array(heap.buffer, idsAt, batch).set(itemIds.subarray(0, batch));
    if (logQ) heap.set(logQ.subarray(0, batch), logQAt / F32);
    if (weights) heap.set(weights.subarray(0, batch), weightsAt / F32);
    const total = this.kernels.inBatchSoftmaxRows(sAt, batch, idsAt, logQ ? logQAt : 0, weights ? weightsAt : 0);
    sView.set(heap.subarray(sAt / F32, sAt / F32 + batch * batch));
    return total;
  };

  /**
   * EmbeddingBag's pooling (training/nn/backend.ts `PoolRows`) in the `poolRows` kernel, float64
   * sums rounded to float32 per add like the TypeScript loop, so it gives the same bits. Copies
   * the source rows, lists and dst (when accumulating) in and dst out. Layout from heapBase:
   * dst | src | offsets | starts | weights.
   */
  readonly poolRows = (
    dst: Float32Array, rows: number, src: Float32Array, offsets: Int32Array, weights: Float64Array, starts: Int32Array,
    dim: number, accumulate: boolean,
  ): void => {
    if (rows === 0) return;
    const entries = starts[rows] as number;
    if (dst.length < rows * dim || starts.length < rows + 1 || offsets.length < entries || weights.length < entries) {
      throw new RangeError(`poolRows into ${rows} rows of ${dim} needs dst ≥ ${rows * dim}, starts ≥ ${rows + 1}, offsets and weights ≥ ${entries}`);
    }
    const dstAt = align16(this.kernels.heapBase());
    const srcAt = align16(dstAt + rows * dim * F32);
    const offsetsAt = align16(srcAt + src.length * F32);
    const startsAt = align16(offsetsAt + entries * F32);
    const weightsAt = align16(startsAt + (rows + 1) * F32);
    this.ensureBytes(weightsAt + entries * F64);
    const heap = this.heap;
    const buffer = heap.buffer;
    const dstView = dst.subarray(0, rows * dim);
    if (accumulate) heap.set(dstView, dstAt / F32);
    heap.set(src, srcAt / F32);
    new Int32Array(buffer, offsetsAt, entries).set(offsets.subarray(0, entries));
    new Int32Array(buffer, startsAt, rows + 1).set(starts.subarray(0, rows + 1));
    new Float64Array(buffer, weightsAt, entries).set(weights.subarray(0, entries));
    this.kernels.poolRows(dstAt, rows, srcAt, offsetsAt, weightsAt, startsAt, dim, accumulate ? 1 : 0);
    dstView.set(heap.subarray(dstAt / F32, dstAt / F32 + rows * dim));
  };

  private ensureBytes(bytes: number): void {
    growTo(this.kernels.memory, bytes);
    if (this.heap.buffer !== this.kernels.memory.buffer) this.heap = new Float32Array(this.kernels.memory.buffer);
  }
}

/**
 * The edge's re-rank pipeline (core/domain/rerank.ts: affinity + shown penalty, MMR, Thompson
 * exploration): steps 1–2 in the `rerank` kernel (wasm/assembly/rerank.ts), step 3's draws one
 * candidate at a time in the `sampleBeta` kernel, the rest as the reference does it; same input and
 * seed, same output as the TypeScript `rerank`. Each call validates like the reference and copies
 * the inputs in and the results out. Layout in linear memory, from heapBase: state[4 x u32] |
 * coreScore f64[n] | embeddings f32[n·dim] | shown f64[n] | alpha f32[n] | beta f32[n] |
 * interest f32[dim] | picks i32[n] | the kernels' scratch. Laid out again only when n or dim
 * changes; memory only grows. Like `WasmScorer`, it owns the instance's memory above heapBase.
 */
export class WasmReranker {
  private n = -1;
  private dim = -1;
  private stateAt = 0;
  private coreAt = 0;
  private embAt = 0;
  private shownAt = 0;
  private alphaAt = 0;
  private betaAt = 0;
  private interestAt = 0;
  private picksAt = 0;
  private scratchAt = 0;
  private readonly rng = new Xoshiro128();
  /** explore's pools, per picks array, with the posterior arrays they were made from. */
  private readonly pools = new WeakMap<ArrayLike<number>, { alpha: ArrayLike<number>; beta: ArrayLike<number>; n: number; pool: ExplorationPool }>();
  private f32: Float32Array;
  private f64: Float64Array;

  constructor(private readonly kernels: KernelExports) {
    this.f32 = new Float32Array(kernels.memory.buffer);
    this.f64 = new Float64Array(kernels.memory.buffer);
  }

  rerank(input: RerankInput, options: RerankOptions): RerankResult {
    const plan = checkRerank(input, options);
    const picks = this.mmrPicks(input, options, plan.slots - plan.explore);
    const pool = plan.explore > 0 ? explorationPool(picks, plan.n, input.alpha, input.beta) : undefined;
    return placeFromPool(picks, plan, pool, options.seed, this.draws);
  }

  /**
   * Steps 1–2 alone: the MMR picks `rerank` places around the explored slots (slots − explore of
   * them, in pick order). They depend on neither the posteriors nor the seed: a caller can keep
   * them for the same candidates and session and run only `explore` per request.
   */
  picks(input: RerankInput, options: RerankOptions): Int32Array {
    const { slots, explore } = checkRerank(input, options);
    return this.mmrPicks(input, options, slots - explore);
  }

  /**
   * Steps 3–4 for `picks` of the same input and options: `rerank`'s answer. The candidates the
   * draws run over (those the picks leave, grouped as step 3 draws them) are kept per picks array
   * while the same posterior arrays come with it, so a caller that keeps its picks pays only for the
   * draws; like the picks, those arrays must not change in place.
   */
  explore(picks: ArrayLike<number>, input: RerankInput, options: RerankOptions): RerankResult {
    const plan = checkRerankShape(input, options);
    let pool: ExplorationPool | undefined;
    if (plan.explore > 0) {
      const kept = this.pools.get(picks);
      if (kept !== undefined && kept.alpha === input.alpha && kept.beta === input.beta && kept.n === plan.n) {
        pool = kept.pool;
      } else {
        checkPosteriors(input.alpha, input.beta);
        pool = explorationPool(picks, plan.n, input.alpha, input.beta);
        this.pools.set(picks, { alpha: input.alpha, beta: input.beta, n: plan.n, pool });
      }
    }
    return placeFromPool(picks, plan, pool, options.seed, this.draws);
  }

  /** Step 3b's draws in the `sampleBeta` kernel: alpha, beta to their slots, θ via the scratch. */
  private readonly draws = (alpha: Float32Array, beta: Float32Array, seed: number, out: Float32Array): void => {
    const m = alpha.length;
    // The slots hold n values: lay out again when n < m, or when memory grew under the views.
    if (this.n < m || this.f32.buffer !== this.kernels.memory.buffer) this.layout(Math.max(m, this.n), Math.max(this.dim, 1));
    this.f32.set(alpha, this.alphaAt / F32);
    this.f32.set(beta, this.betaAt / F32);
    this.rng.seed(seed);
    new Uint32Array(this.f32.buffer, this.stateAt, 4).set(this.rng.state);
    this.kernels.sampleBeta(this.alphaAt, this.betaAt, m, this.stateAt, this.scratchAt);
    out.set(this.f32.subarray(this.scratchAt / F32, this.scratchAt / F32 + m));
  };

  private mmrPicks(input: RerankInput, options: RerankOptions, count: number): Int32Array {
    const n = input.coreScore.length;
    const { dim } = input;
    this.layout(n, dim);
    const { f32, f64 } = this;
    f64.set(input.coreScore, this.coreAt / F64);
    f32.set(input.embeddings, this.embAt / F32);
    f64.set(input.shown, this.shownAt / F64);
    f32.set(input.interest, this.interestAt / F32);
    const bad = this.kernels.rerank(
      n, dim, this.coreAt, this.embAt, this.shownAt, this.interestAt,
      options.affinityWeight, options.shownPenalty, options.lambda, count, this.scratchAt, this.picksAt,
    );
    if (bad >= 0) {
      let dot = 0;
      for (let d = 0, o = bad * dim; d < dim; d++) dot += (input.embeddings[o + d] as number) * (input.interest[d] as number);
      const r = (input.coreScore[bad] as number) + options.affinityWeight * dot - options.shownPenalty * (input.shown[bad] as number);
      throw nonFiniteRelevance(bad, r);
    }
    return new Int32Array(f32.buffer, this.picksAt, count).slice();
  }

  private layout(n: number, dim: number): void {
    if (n === this.n && dim === this.dim && this.f32.buffer === this.kernels.memory.buffer) return;
    const stateAt = align16(this.kernels.heapBase());
    const coreAt = align16(stateAt + PRNG_STATE_BYTES);
    const embAt = align16(coreAt + n * F64);
    const shownAt = align16(embAt + n * dim * F32);
    const alphaAt = align16(shownAt + n * F64);
    const betaAt = align16(alphaAt + n * F32);
    const interestAt = align16(betaAt + n * F32);
    const picksAt = align16(interestAt + dim * F32);
    // The scratch holds the MMR kernel's working set, or sampleBeta's n θ.
    const scratchAt = align16(picksAt + n * F32);
    const need = scratchAt + Math.max(this.kernels.rerankScratchBytes(n, dim), n * F32);
    const have = this.kernels.memory.buffer.byteLength;
    if (need > have) this.kernels.memory.grow(Math.ceil((need - have) / PAGE_BYTES));
    // Growing detaches the old buffer; views are renewed here (and when another wrapper on this
    // instance grew it, which the buffer check above notices).
    this.f32 = new Float32Array(this.kernels.memory.buffer);
    this.f64 = new Float64Array(this.kernels.memory.buffer);
    this.n = n;
    this.dim = dim;
    this.stateAt = stateAt;
    this.coreAt = coreAt;
    this.embAt = embAt;
    this.shownAt = shownAt;
    this.alphaAt = alphaAt;
    this.betaAt = betaAt;
    this.interestAt = interestAt;
    this.picksAt = picksAt;
    this.scratchAt = scratchAt;
  }
}

function align16(offset: number): number {
  return (offset + 15) & ~15;
}
