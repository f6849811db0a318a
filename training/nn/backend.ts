// The one dense-math port of the training layers: a row-major SGEMM. The layers take a backend as a
// constructor parameter; `typescriptMatmul` (below) is the reference, `WasmMatmul` (wasm/index.ts,
// loaded by core/kernels/wasm.ts `createWasmMatmul`) the SIMD one.

/**
 * C[m×n] = alpha·op(A)·op(B) + beta·C, every matrix row-major and dense (leading dimension = its
 * column count), op(X) = Xᵀ when the flag is set: A is m×k (k×m when transA), B is k×n (n×k when
 * transB). As in BLAS, beta = 0 writes C without reading it.
 */
export interface MatmulBackend {
  readonly name: string;
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array,
  ): void;
  /** Optional: InBatchSoftmax's row passes in this backend's kernels, in place of its TypeScript loop. */
  readonly inBatchSoftmaxRows?: InBatchSoftmaxRows;
  /** Optional: EmbeddingBag's pooling loops in this backend's kernels, in place of its TypeScript loop. */
  readonly poolRows?: PoolRows;
}

/**
 * For each of `rows` dst rows o: dst[o·dim + d] = start + Σ_k weights[k] · src[offsets[k] + d] over
 * k ∈ [starts[o], starts[o + 1]), in k order, with each float64 multiply-add rounded to float32
 * (Math.fround) before the next; start = dst[o·dim + d] when `accumulate`, else 0. EmbeddingBag's
 * forward pools table rows into examples with it and its backward examples' gradients into rows.
 * An implementation must match that TypeScript loop bit for bit, like `InBatchSoftmaxRows`.
 */
export type PoolRows = (
  dst: Float32Array, rows: number, src: Float32Array, offsets: Int32Array, weights: Float64Array, starts: Int32Array,
  dim: number, accumulate: boolean,
) => void;

/**
 * The row passes of InBatchSoftmax.forward on logits s [batch × batch], in place: z = s − logQ[j]
 * (−∞ where j ≠ i carries row i's item), softmax per row, then s = w_i/batch · (softmax − [i = j]).
 * Returns Σ_i w_i · (logsumexp_j z − z[i, i]). An implementation must match the TypeScript passes
 * bit for bit (same float64 operations, float32 stores, and V8's exp and log), so that a backend's
 * choice of kernel never changes a trained model.
 */
export type InBatchSoftmaxRows = (
  s: Float32Array, batch: number, itemIds: Int32Array, logQ: Float32Array | undefined, weights: Float32Array | undefined,
) => number;

/** C = beta·C, with beta = 0 clearing C outright (so NaN or garbage in C does not survive). */
function scale(c: Float32Array, size: number, beta: number): void {
  if (beta === 1) return;
  if (beta === 0) c.fill(0, 0, size);
  else for (let i = 0; i < size; i++) c[i] = (c[i] as number) * beta;
}

/** Rows of C updated together, so each loaded element of B (or row of A) is used four times. */
const ROW_BLOCK = 4;

/**
 * Plain TypeScript GEMM. Each transpose case picks the loop order whose innermost loop walks
 * memory with unit stride (i-p-j for op(B) = B, dot products over p for op(B) = Bᵀ), the cache-aware
 * orders of Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (2008), and
 * works on ROW_BLOCK rows (or columns) of C at once to cut loads per multiply-add.
 */
function gemmTs(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array,
): void {
  scale(c, m * n, beta);
  if (alpha === 0 || k === 0) return;
  // op(A)[i, p]
  const aAt = transA ? (i: number, p: number): number => a[p * m + i] as number : (i: number, p: number): number => a[i * k + p] as number;
  if (!transB) {
    // C[i, :] += alpha · op(A)[i, p] · B[p, :], four rows of C per pass over B.
    let i = 0;
    for (; i + ROW_BLOCK <= m; i += ROW_BLOCK) {
      const c0 = i * n;
      const c1 = c0 + n;
      const c2 = c1 + n;
      const c3 = c2 + n;
      for (let p = 0; p < k; p++) {
        const a0 = alpha * aAt(i, p);
        const a1 = alpha * aAt(i + 1, p);
        const a2 = alpha * aAt(i + 2, p);
        const a3 = alpha * aAt(i + 3, p);
        const bRow = p * n;
        for (let j = 0; j < n; j++) {
          const bpj = b[bRow + j] as number;
          c[c0 + j] = (c[c0 + j] as number) + a0 * bpj;
          c[c1 + j] = (c[c1 + j] as number) + a1 * bpj;
          c[c2 + j] = (c[c2 + j] as number) + a2 * bpj;
          c[c3 + j] = (c[c3 + j] as number) + a3 * bpj;
        }
      }
    }
    for (; i < m; i++) {
      const cRow = i * n;
      for (let p = 0; p < k; p++) {
        const aip = alpha * aAt(i, p);
        const bRow = p * n;
        for (let j = 0; j < n; j++) c[cRow + j] = (c[cRow + j] as number) + aip * (b[bRow + j] as number);
      }
    }
    return;
  }
  if (!transA) {
    // C[i, j] += alpha · A[i, :] · B[j, :]: unit-stride dot products, four columns of C per row of A.
    for (let i = 0; i < m; i++) {
      const aRow = i * k;
      const cRow = i * n;
      let j = 0;
      for (; j + ROW_BLOCK <= n; j += ROW_BLOCK) {
        const b0 = j * k;
        const b1 = b0 + k;
        const b2 = b1 + k;
        const b3 = b2 + k;
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        for (let p = 0; p < k; p++) {
          const aip = a[aRow + p] as number;
          d0 += aip * (b[b0 + p] as number);
          d1 += aip * (b[b1 + p] as number);
          d2 += aip * (b[b2 + p] as number);
          d3 += aip * (b[b3 + p] as number);
        }
        c[cRow + j] = (c[cRow + j] as number) + alpha * d0;
        c[cRow + j + 1] = (c[cRow + j + 1] as number) + alpha * d1;
        c[cRow + j + 2] = (c[cRow + j + 2] as number) + alpha * d2;
        c[cRow + j + 3] = (c[cRow + j + 3] as number) + alpha * d3;
      }
      for (; j < n; j++) {
        const bRow = j * k;
        let dot = 0;
        for (let p = 0; p < k; p++) dot += (a[aRow + p] as number) * (b[bRow + p] as number);
        c[cRow + j] = (c[cRow + j] as number) + alpha * dot;
      }
    }
    return;
  }
  // Both transposed (no layer needs it): C[i, j] += alpha · Σ_p A[p, i] · B[j, p].
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const bRow = j * k;
      let dot = 0;
      for (let p = 0; p < k; p++) dot += (a[p * m + i] as number) * (b[bRow + p] as number);
      c[i * n + j] = (c[i * n + j] as number) + alpha * dot;
    }
  }
}

export const typescriptMatmul: MatmulBackend = { name: 'typescript', gemm: gemmTs };

/**
 * The TypeScript `PoolRows`: eight running sums per pass over a row's
 * pairs stay in registers instead of being loaded and stored once per pair, and each is rounded to
 * float32 after every add, as storing it would.
 */
export const typescriptPoolRows: PoolRows = (dst, rows, src, offsets, weights, starts, dim, accumulate) => {
  for (let o = 0; o < rows; o++) {
    const first = starts[o] as number;
    const end = starts[o + 1] as number;
    const to = o * dim;
    let d = 0;
    for (; d + 8 <= dim; d += 8) {
      const at = to + d;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let s4 = 0;
      let s5 = 0;
      let s6 = 0;
      let s7 = 0;
      if (accumulate) {
        s0 = dst[at] as number;
        s1 = dst[at + 1] as number;
        s2 = dst[at + 2] as number;
        s3 = dst[at + 3] as number;
        s4 = dst[at + 4] as number;
        s5 = dst[at + 5] as number;
        s6 = dst[at + 6] as number;
        s7 = dst[at + 7] as number;
      }
      for (let k = first; k < end; k++) {
        const x = (offsets[k] as number) + d;
        const w = weights[k] as number;
        s0 = Math.fround(s0 + w * (src[x] as number));
        s1 = Math.fround(s1 + w * (src[x + 1] as number));
        s2 = Math.fround(s2 + w * (src[x + 2] as number));
        s3 = Math.fround(s3 + w * (src[x + 3] as number));
        s4 = Math.fround(s4 + w * (src[x + 4] as number));
        s5 = Math.fround(s5 + w * (src[x + 5] as number));
        s6 = Math.fround(s6 + w * (src[x + 6] as number));
        s7 = Math.fround(s7 + w * (src[x + 7] as number));
      }
      dst[at] = s0;
      dst[at + 1] = s1;
      dst[at + 2] = s2;
      dst[at + 3] = s3;
      dst[at + 4] = s4;
      dst[at + 5] = s5;
      dst[at + 6] = s6;
      dst[at + 7] = s7;
    }
    for (; d < dim; d++) {
      let sum = accumulate ? dst[to + d] as number : 0;
      for (let k = first; k < end; k++) sum = Math.fround(sum + (weights[k] as number) * (src[(offsets[k] as number) + d] as number));
      dst[to + d] = sum;
    }
  }
};
