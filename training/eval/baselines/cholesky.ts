// Inverse of a symmetric positive-definite matrix in float64 through its Cholesky factor:
// A = L·Lᵀ, A⁻¹ = L⁻ᵀ·L⁻¹. Each of the three steps costs n³/6 multiply-adds over contiguous
// row views (row-major), so ml-100k's 1682 items invert in a few seconds in plain JS.
// Reads use `as number`: every index is in bounds by construction, and the `?? 0` fallback
// doubles the time of these loops in V8.

/** A⁻¹ for SPD `a` (n × n, row-major; only the lower triangle is read). `a` is overwritten with L. */
export function invertSpd(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new RangeError(`matrix has ${a.length} entries; ${n} × ${n} needs ${n * n}`);
  choleskyInPlace(a, n);
  const m = invertLower(a, n);
  return gramOfLower(m, n);
}

/** Overwrites the lower triangle of `a` with L (A = L·Lᵀ); the strict upper triangle is left as it was. */
export function choleskyInPlace(a: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const li = a.subarray(i * n, i * n + n);
    for (let j = 0; j <= i; j++) {
      const lj = a.subarray(j * n, j * n + j + 1);
      // Four partial sums: independent chains the CPU can overlap.
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let k = 0;
      for (; k + 3 < j; k += 4) {
        s0 += (li[k] as number) * (lj[k] as number);
        s1 += (li[k + 1] as number) * (lj[k + 1] as number);
        s2 += (li[k + 2] as number) * (lj[k + 2] as number);
        s3 += (li[k + 3] as number) * (lj[k + 3] as number);
      }
      for (; k < j; k++) s0 += (li[k] as number) * (lj[k] as number);
      const s = (li[j] as number) - (s0 + s1 + (s2 + s3));
      if (i === j) {
        if (!(s > 0)) throw new RangeError(`matrix is not positive definite (pivot ${i} is ${s}); add more regularisation`);
        li[i] = Math.sqrt(s);
      } else {
        li[j] = s / (lj[j] as number);
      }
    }
  }
}

/** L⁻¹ of the lower-triangular L held in `l`'s lower triangle: row i = (eᵢ − Σ_{k<i} L[i][k]·row k) / L[i][i]. */
function invertLower(l: Float64Array, n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const li = l.subarray(i * n, i * n + n);
    const mi = m.subarray(i * n, i * n + n);
    for (let k = 0; k < i; k++) {
      const c = li[k] as number;
      if (c === 0) continue;
      const mk = m.subarray(k * n, k * n + k + 1);
      for (let j = 0; j <= k; j++) mi[j] = (mi[j] as number) - c * (mk[j] as number);
    }
    const d = 1 / (li[i] as number);
    for (let j = 0; j < i; j++) mi[j] = (mi[j] as number) * d;
    mi[i] = d;
  }
  return m;
}

/** Mᵀ·M for lower-triangular M, as a sum of rank-one updates row by row, mirrored at the end. */
function gramOfLower(m: Float64Array, n: number): Float64Array {
  const p = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const mk = m.subarray(k * n, k * n + k + 1);
    for (let a = 0; a <= k; a++) {
      const va = mk[a] as number;
      if (va === 0) continue;
      const pa = p.subarray(a * n, a * n + a + 1);
      for (let b = 0; b <= a; b++) pa[b] = (pa[b] as number) + va * (mk[b] as number);
    }
  }
  for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) p[b * n + a] = p[a * n + b] as number;
  return p;
}
