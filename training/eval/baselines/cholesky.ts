// Inverse of a symmetric positive-definite matrix in float64 through its Cholesky factor:
// A = L·Lᵀ, A⁻¹ = L⁻ᵀ·L⁻¹. Each of the three steps costs n³/6 multiply-adds. At EASE's 4,096
// items the matrix is 128 MB, so a row-at-a-time loop streams it from memory n times over; here
// every step is blocked (Golub & Van Loan, "Matrix Computations", §3.2.11 and §4.2.9): most of the
// work is `tileDots`, dot products between BLOCK rows of two row-major matrices over a chunk of
// columns, which stay in cache while they are used BLOCK times. U = L⁻ᵀ is kept row-major (upper
// triangular), so that the triangular inverse and the final Uᵀ·U product are dot products of
// rows too.
// Reads use `as number`: every index is in bounds by construction, and the `?? 0` fallback
// doubles the time of these loops in V8.

/** Rows per block: a BLOCK × K_CHUNK float64 panel is 128 KiB. */
const BLOCK = 64;
const K_CHUNK = 256;

/** A⁻¹ for SPD `a` (n × n, row-major; only the lower triangle is read). `a` is overwritten with L. */
export function invertSpd(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new RangeError(`matrix has ${a.length} entries; ${n} × ${n} needs ${n * n}`);
  choleskyInPlace(a, n);
  const u = invertLowerTransposed(a, n);
  return gramOfUpper(u, n);
}

/** Overwrites the lower triangle of `a` with L (A = L·Lᵀ); the strict upper triangle is left as it was. */
export function choleskyInPlace(a: Float64Array, n: number): void {
  // The tile: Σ over the columns finished before this block, L[i][0..j0) · L[j][0..j0).
  forEachLowerBlock(n, a, a, (_i0, j0) => [0, j0], (i0, i1, j0, j1, tile) => {
    const nj = j1 - j0;
    for (let i = i0; i < i1; i++) {
      const row = i * n;
      for (let j = j0; j < Math.min(j1, i + 1); j++) {
        const lj = j * n;
        let s = (a[row + j] as number) - (tile[(i - i0) * nj + (j - j0)] as number);
        for (let k = j0; k < j; k++) s -= (a[row + k] as number) * (a[lj + k] as number);
        if (i === j) {
          if (!(s > 0)) throw new RangeError(`matrix is not positive definite (pivot ${i} is ${s}); add more regularisation`);
          a[row + i] = Math.sqrt(s);
        } else {
          a[row + j] = s / (a[lj + j] as number);
        }
      }
    }
  });
}

/**
 * U = (L⁻¹)ᵀ, upper triangular and row-major, for the lower-triangular L held in `l`'s lower
 * triangle. Row i of M = L⁻¹: M[i][j] = −(Σ_{j≤k<i} L[i][k]·M[k][j]) / L[i][i] for j < i, and
 * M[k][j] = U[j][k], so each entry is a dot product of row i of L with row j of U.
 */
function invertLowerTransposed(l: Float64Array, n: number): Float64Array {
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) u[i * n + i] = 1 / (l[i * n + i] as number);
  // The tile: Σ over the rows of M finished before this block (U[j][k] is 0 for k < j).
  forEachLowerBlock(n, l, u, (i0, j0) => [j0, i0], (i0, i1, j0, j1, tile) => {
    const nj = j1 - j0;
    for (let i = i0; i < i1; i++) {
      const row = i * n;
      const d = l[row + i] as number;
      for (let j = j0; j < Math.min(j1, i); j++) {
        const uj = j * n;
        let s = tile[(i - i0) * nj + (j - j0)] as number;
        for (let k = i0; k < i; k++) s += (l[row + k] as number) * (u[uj + k] as number);
        u[uj + i] = -s / d;
      }
    }
  });
  return u;
}

/** Uᵀ·U for upper-triangular row-major U: P[a][b] = Σ_{k ≥ max(a, b)} U[a][k]·U[b][k], mirrored. */
function gramOfUpper(u: Float64Array, n: number): Float64Array {
  const p = new Float64Array(n * n);
  // U[a][k] is 0 for k < a, and b ≤ a: the sum can start at a0.
  forEachLowerBlock(n, u, u, (a0) => [a0, n], (a0, a1, b0, b1, tile) => {
    const nb = b1 - b0;
    for (let a = a0; a < a1; a++) {
      for (let b = b0; b < Math.min(b1, a + 1); b++) {
        const v = tile[(a - a0) * nb + (b - b0)] as number;
        p[a * n + b] = v;
        p[b * n + a] = v;
      }
    }
  });
  return p;
}

/**
 * Visits the BLOCK × BLOCK blocks on and below the diagonal of an n × n matrix, block row by
 * block row and left to right within one (the order each step's dependencies need), each with
 * its tile of dot products: tile[(i − i0)·(j1 − j0) + (j − j0)] = Σ_{k0 ≤ k < k1} x[i][k]·y[j][k]
 * for rows i in [i0, i1) and j in [j0, j1), [k0, k1) = span(i0, j0).
 */
function forEachLowerBlock(
  n: number, x: Float64Array, y: Float64Array, span: (i0: number, j0: number) => readonly [number, number],
  visit: (i0: number, i1: number, j0: number, j1: number, tile: Float64Array) => void,
): void {
  const tile = new Float64Array(BLOCK * BLOCK);
  for (let i0 = 0; i0 < n; i0 += BLOCK) {
    const i1 = Math.min(i0 + BLOCK, n);
    for (let j0 = 0; j0 <= i0; j0 += BLOCK) {
      const j1 = Math.min(j0 + BLOCK, n);
      const [k0, k1] = span(i0, j0);
      tile.fill(0);
      tileDots(x, y, n, i0, i1, j0, j1, k0, k1, tile, j1 - j0);
      visit(i0, i1, j0, j1, tile);
    }
  }
}

/**
 * out[(i − i0)·stride + (j − j0)] += Σ_{k0 ≤ k < k1} x[i][k]·y[j][k] for i in [i0, i1) and j in
 * [j0, j1), x and y row-major with n columns. Four rows of x against two of y at a time (eight
 * independent sums per six loads), over chunks of K_CHUNK columns so that both panels stay in cache.
 */
function tileDots(
  x: Float64Array, y: Float64Array, n: number, i0: number, i1: number, j0: number, j1: number, k0: number, k1: number,
  out: Float64Array, stride: number,
): void {
  for (let kc = k0; kc < k1; kc += K_CHUNK) {
    const kEnd = Math.min(kc + K_CHUNK, k1);
    for (let i = i0; i < i1; i += 4) {
      // Past the last row, a row is read again (the last one) and its sums are dropped.
      const rows = Math.min(4, i1 - i);
      const x0 = i * n;
      const x1 = rows > 1 ? x0 + n : x0;
      const x2 = rows > 2 ? x0 + 2 * n : x0;
      const x3 = rows > 3 ? x0 + 3 * n : x0;
      for (let j = j0; j < j1; j += 2) {
        const both = j + 1 < j1;
        const ya = j * n;
        const yb = both ? ya + n : ya;
        let s00 = 0;
        let s01 = 0;
        let s10 = 0;
        let s11 = 0;
        let s20 = 0;
        let s21 = 0;
        let s30 = 0;
        let s31 = 0;
        for (let k = kc; k < kEnd; k++) {
          const b0 = y[ya + k] as number;
          const b1 = y[yb + k] as number;
          const a0 = x[x0 + k] as number;
          s00 += a0 * b0;
          s01 += a0 * b1;
          const a1 = x[x1 + k] as number;
          s10 += a1 * b0;
          s11 += a1 * b1;
          const a2 = x[x2 + k] as number;
          s20 += a2 * b0;
          s21 += a2 * b1;
          const a3 = x[x3 + k] as number;
          s30 += a3 * b0;
          s31 += a3 * b1;
        }
        const sums = [s00, s01, s10, s11, s20, s21, s30, s31];
        for (let r = 0; r < rows; r++) {
          const o = (i - i0 + r) * stride + (j - j0);
          out[o] = (out[o] as number) + (sums[2 * r] as number);
          if (both) out[o + 1] = (out[o + 1] as number) + (sums[2 * r + 1] as number);
        }
      }
    }
  }
}
