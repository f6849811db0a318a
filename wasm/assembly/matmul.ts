// Single-precision GEMM for training: C[m×n] = alpha·op(A)·op(B) + beta·C, all row-major, with
// op(X) = X or Xᵀ. The layers of training/nn/ call it for y = x·W, dW = xᵀ·dy and dx = dy·Wᵀ.
//
// The structure is the BLIS one (Van Zee & van de Geijn, "BLIS: A Framework for Rapidly
// Instantiating BLAS Functionality", 2015), reduced to what sizes of 32–1024 need: op(A) is packed
// into panels of MR rows and op(B) into panels of NR columns, each laid out k-major and zero-padded
// to a full panel, so the transposes cost one pass while packing and the micro-kernel always runs
// a full MR×NR tile with unit-stride loads. The micro-kernel keeps the 4×8 tile of C in eight f32x4
// accumulators (plus two B vectors and one broadcast A value: 11 of the 16 SIMD registers on x64
// and arm64). The depth is cut into slices of KC so that the panels in use stay in L1.

/** Rows of C per micro-tile. */
const MR: i32 = 4;
/** Columns of C per micro-tile: two f32x4. */
const NR: i32 = 8;
/** Bytes of one f32. */
const F32: usize = 4;

/** Depth of one pass: a packed B panel (KC·NR floats, 8 KiB) and A panel (4 KiB) stay in L1. */
const KC: i32 = 256;
/** Rows of op(A) packed together when A is transposed: 64 contiguous floats read per row of A. */
const TRANS_PACK_ROWS: i32 = 64;

/** Bytes of scratch `gemm` needs above its `scratch` pointer for these sizes. */
export function matmulScratchBytes(m: i32, n: i32, k: i32): usize {
  const kc = min(k, KC);
  return packedABytes(m, kc) + packedBBytes(n, kc) + <usize>(MR * NR) * F32;
}

@inline
function packedABytes(m: i32, kc: i32): usize {
  return <usize>((m + MR - 1) / MR) * <usize>MR * <usize>kc * F32;
}

@inline
function packedBBytes(n: i32, kc: i32): usize {
  return <usize>((n + NR - 1) / NR) * <usize>NR * <usize>kc * F32;
}

/**
 * Columns p0..p0+kc of op(A) [m×k] as panels of MR rows: panel q holds rows q·MR.., its element
 * (p, r) at (q·kc + p)·MR + r, rows past m zero.
 */
function packA(transA: bool, m: i32, k: i32, p0: i32, kc: i32, a: usize, out: usize): void {
  if (!transA) {
    // op(A)[i, p] = A[i, p]: MR sequential read streams, one per row.
    let dst = out;
    for (let i0 = 0; i0 < m; i0 += MR) {
      const rows = min(MR, m - i0);
      let p = p0;
      if (rows == MR) {
        // A full panel: 4×4 blocks, one vector load per row, transposed in registers.
        const rowBytes = <usize>k * F32;
        let src = a + (<usize>i0 * <usize>k + <usize>p0) * F32;
        for (; p + 4 <= p0 + kc; p += 4) {
          transpose4x4(src, rowBytes, dst, <usize>MR * F32);
          dst += 16 * F32;
          src += 4 * F32;
        }
      }
      for (; p < p0 + kc; p++) {
        for (let r = 0; r < MR; r++) {
          const value: f32 = r < rows ? load<f32>(a + (<usize>(i0 + r) * <usize>k + <usize>p) * F32) : 0;
          store<f32>(dst, value);
          dst += F32;
        }
      }
    }
    return;
  }
  // op(A)[i, p] = A[p, i] (A is k×m). Reading MR floats per row of A would stride by m floats,
  // and for m a power of two every read lands in one cache set; instead read TRANS_PACK_ROWS
  // contiguous floats per row of A and scatter them as 16-byte pieces to their panels.
  const panelBytes = <usize>kc * <usize>MR * F32;
  for (let b0 = 0; b0 < m; b0 += TRANS_PACK_ROWS) {
    const blockEnd = min(m, b0 + TRANS_PACK_ROWS);
    for (let p = 0; p < kc; p++) {
      const src = a + <usize>(p0 + p) * <usize>m * F32;
      for (let i0 = b0; i0 < blockEnd; i0 += MR) {
        const dst = out + <usize>(i0 / MR) * panelBytes + <usize>p * <usize>MR * F32;
        if (i0 + MR <= m) {
          v128.store(dst, v128.load(src + <usize>i0 * F32));
        } else {
          for (let r = 0; r < MR; r++) {
            store<f32>(dst + <usize>r * F32, i0 + r < m ? load<f32>(src + <usize>(i0 + r) * F32) : 0);
          }
        }
      }
    }
  }
}

/** The 4×4 block at `src` (rows `srcStride` bytes apart) written transposed at `dst` (rows `dstStride` apart). */
@inline
function transpose4x4(src: usize, srcStride: usize, dst: usize, dstStride: usize): void {
  const r0 = v128.load(src);
  const r1 = v128.load(src + srcStride);
  const r2 = v128.load(src + 2 * srcStride);
  const r3 = v128.load(src + 3 * srcStride);
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(dst + dstStride, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(dst + 2 * dstStride, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * dstStride, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

/**
 * Rows p0..p0+kc of op(B) [k×n] as panels of NR columns: panel q holds columns q·NR.., its
 * element (p, c) at (q·kc + p)·NR + c, columns past n zero.
 */
function packB(transB: bool, n: i32, k: i32, p0: i32, kc: i32, b: usize, out: usize): void {
  const panelBytes = <usize>kc * <usize>NR * F32;
  for (let j0 = 0; j0 < n; j0 += NR) {
    const cols = min(NR, n - j0);
    const panel = out + <usize>(j0 / NR) * panelBytes;
    if (transB && cols == NR) {
      // op(B)[p, j] = B[j, p] (B is n×k), a full panel: two 4×4 blocks per 4 depths, one vector
      // load per row of B, transposed in registers.
      const rowBytes = <usize>k * F32;
      let src = b + (<usize>j0 * <usize>k + <usize>p0) * F32;
      let dst = panel;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        transpose4x4(src, rowBytes, dst, <usize>NR * F32);
        transpose4x4(src + 4 * rowBytes, rowBytes, dst + 4 * F32, <usize>NR * F32);
        src += 4 * F32;
        dst += 4 * <usize>NR * F32;
      }
      for (; p < kc; p++) {
        for (let c = 0; c < NR; c++) {
          store<f32>(panel + (<usize>p * <usize>NR + <usize>c) * F32, load<f32>(b + (<usize>(j0 + c) * <usize>k + <usize>(p0 + p)) * F32));
        }
      }
    } else if (transB) {
      // op(B)[p, j] = B[j, p] (B is n×k): read each row of B sequentially, write with stride NR.
      for (let c = 0; c < NR; c++) {
        const src = b + (<usize>(j0 + c) * <usize>k + <usize>p0) * F32;
        for (let p = 0; p < kc; p++) {
          const value: f32 = c < cols ? load<f32>(src + <usize>p * F32) : 0;
          store<f32>(panel + (<usize>p * <usize>NR + <usize>c) * F32, value);
        }
      }
    } else if (cols == NR) {
      // The common case (B is k×n, a full panel): two vector copies per row of the panel.
      for (let p = 0; p < kc; p++) {
        const src = b + (<usize>(p0 + p) * <usize>n + <usize>j0) * F32;
        const dst = panel + <usize>p * <usize>NR * F32;
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const src = b + (<usize>(p0 + p) * <usize>n + <usize>j0) * F32;
        const dst = panel + <usize>p * <usize>NR * F32;
        for (let c = 0; c < NR; c++) store<f32>(dst + <usize>c * F32, c < cols ? load<f32>(src + <usize>c * F32) : 0);
      }
    }
  }
}

/** C row segment of 8 floats at `c` = alpha·(lo, hi) + beta·C (C not read when beta is 0). */
@inline
function storeRow(c: usize, lo: v128, hi: v128, alpha: v128, beta: v128, readC: bool): void {
  let outLo = f32x4.mul(lo, alpha);
  let outHi = f32x4.mul(hi, alpha);
  if (readC) {
    outLo = f32x4.add(outLo, f32x4.mul(v128.load(c), beta));
    outHi = f32x4.add(outHi, f32x4.mul(v128.load(c, 16), beta));
  }
  v128.store(c, outLo);
  v128.store(c, outHi, 16);
}

/**
 * C = alpha·op(A)·op(B) + beta·C. `a`, `b`, `c` and `scratch` are byte offsets; `scratch` must
 * have `matmulScratchBytes(m, n, k)` bytes. transA/transB are 0 or 1. As in BLAS, beta = 0 means
 * C is written without being read, so it may hold garbage (even NaN).
 */
export function gemm(
  transA: i32, transB: i32, m: i32, n: i32, k: i32,
  alpha: f32, a: usize, b: usize, beta: f32, c: usize, scratch: usize,
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    // No products: C = beta·C, keeping the "beta = 0 does not read C" rule.
    for (let i = 0; i < m * n; i++) {
      const at = c + <usize>i * F32;
      store<f32>(at, beta == 0 ? 0 : beta * load<f32>(at));
    }
    return;
  }
  const kcMax = min(k, KC);
  const pa = scratch;
  const pb = pa + packedABytes(m, kcMax);
  const tile = pb + packedBBytes(n, kcMax);
  for (let p0 = 0; p0 < k; p0 += KC) {
    const kc = min(KC, k - p0);
    packA(transA != 0, m, k, p0, kc, a, pa);
    packB(transB != 0, n, k, p0, kc, b, pb);
    // Later depth slices add onto what the earlier ones wrote.
    macroKernel(m, n, kc, alpha, p0 == 0 ? beta : 1, pa, pb, c, tile);
  }
}

/** C += the product of the packed panels, one MR×NR micro-tile at a time. */
function macroKernel(m: i32, n: i32, k: i32, alpha: f32, beta: f32, pa: usize, pb: usize, c: usize, tile: usize): void {
  const readC = beta != 0;
  const alphaV = f32x4.splat(alpha);
  const betaV = f32x4.splat(beta);
  const rowBytes = <usize>n * F32;
  const aPanelBytes = <usize>k * <usize>MR * F32;
  const bPanelBytes = <usize>k * <usize>NR * F32;

  for (let j0 = 0; j0 < n; j0 += NR) {
    const bPanel = pb + <usize>(j0 / NR) * bPanelBytes;
    for (let i0 = 0; i0 < m; i0 += MR) {
      let ap = pa + <usize>(i0 / MR) * aPanelBytes;
      let bp = bPanel;
      let c00 = f32x4.splat(0);
      let c01 = f32x4.splat(0);
      let c10 = f32x4.splat(0);
      let c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0);
      let c21 = f32x4.splat(0);
      let c30 = f32x4.splat(0);
      let c31 = f32x4.splat(0);
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        let av = v128.load32_splat(ap);
        c00 = f32x4.add(c00, f32x4.mul(av, b0));
        c01 = f32x4.add(c01, f32x4.mul(av, b1));
        av = v128.load32_splat(ap, 4);
        c10 = f32x4.add(c10, f32x4.mul(av, b0));
        c11 = f32x4.add(c11, f32x4.mul(av, b1));
        av = v128.load32_splat(ap, 8);
        c20 = f32x4.add(c20, f32x4.mul(av, b0));
        c21 = f32x4.add(c21, f32x4.mul(av, b1));
        av = v128.load32_splat(ap, 12);
        c30 = f32x4.add(c30, f32x4.mul(av, b0));
        c31 = f32x4.add(c31, f32x4.mul(av, b1));
        ap += <usize>MR * F32;
        bp += <usize>NR * F32;
      }
      const cTile = c + (<usize>i0 * <usize>n + <usize>j0) * F32;
      if (i0 + MR <= m && j0 + NR <= n) {
        storeRow(cTile, c00, c01, alphaV, betaV, readC);
        storeRow(cTile + rowBytes, c10, c11, alphaV, betaV, readC);
        storeRow(cTile + 2 * rowBytes, c20, c21, alphaV, betaV, readC);
        storeRow(cTile + 3 * rowBytes, c30, c31, alphaV, betaV, readC);
        continue;
      }
      // An edge tile: spill the accumulators, then write only the part inside C.
      v128.store(tile, c00);
      v128.store(tile, c01, 16);
      v128.store(tile, c10, 32);
      v128.store(tile, c11, 48);
      v128.store(tile, c20, 64);
      v128.store(tile, c21, 80);
      v128.store(tile, c30, 96);
      v128.store(tile, c31, 112);
      const rows = min(MR, m - i0);
      const cols = min(NR, n - j0);
      for (let r = 0; r < rows; r++) {
        for (let q = 0; q < cols; q++) {
          const dst = cTile + <usize>r * rowBytes + <usize>q * F32;
          let value = alpha * load<f32>(tile + <usize>(r * NR + q) * F32);
          if (readC) value += beta * load<f32>(dst);
          store<f32>(dst, value);
        }
      }
    }
  }
}
