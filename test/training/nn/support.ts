// Shared helpers of the training/nn tests: seeded data and a finite-difference gradient check.
import { normalVariate, Xoshiro128 } from '../../../core/domain/random.ts';

export function randomNormal(n: number, rng: Xoshiro128, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * normalVariate(rng);
  return out;
}

/** Σ r·y in float64: a scalar whose gradient wrt y is r, to check a layer through its backward(r). */
export function project(y: Float32Array, r: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < y.length; i++) sum += (y[i] as number) * (r[i] as number);
  return sum;
}

/**
 * Central differences of `loss` wrt every entry of `x` (perturbed in place, then restored).
 * The step is divided by the difference actually stored in float32, not by the nominal 2·eps,
 * so rounding of x ± eps does not enter the estimate.
 */
export function numericGradient(loss: () => number, x: Float32Array, eps = 1e-2): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const orig = x[i] as number;
    x[i] = orig + eps;
    const up = x[i] as number;
    const fUp = loss();
    x[i] = orig - eps;
    const down = x[i] as number;
    const fDown = loss();
    x[i] = orig;
    grad[i] = (fUp - fDown) / (up - down);
  }
  return grad;
}

/** ‖a − b‖ / max(‖a‖, ‖b‖, tiny): one number for how far an analytic gradient is from the numeric one. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    diff += (x - y) ** 2;
    na += x * x;
    nb += y * y;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(na), Math.sqrt(nb), 1e-30);
}

/**
 * ‖a − b‖ over ‖scale‖: the error of a float32 sum measured against the size of its terms
 * (for GEMM, |alpha|·|A|·|B| + |beta|·|C|, `gemmTermScale`), which rounding is proportional to.
 * Against the result instead, a sum that cancels (a 1×1 output, alpha·a·b ≈ −beta·c) shows a
 * large relative error that no float32 kernel can avoid.
 */
export function errorRelativeToTerms(a: ArrayLike<number>, b: ArrayLike<number>, scale: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += ((a[i] as number) - (b[i] as number)) ** 2;
    norm += (scale[i] as number) ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30);
}

/** |alpha|·|op(A)|·|op(B)| + |beta|·|C| in float64: the size of the terms of each GEMM output. */
export function gemmTermScale(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array,
): Float64Array {
  const abs = (x: Float32Array) => x.map(Math.abs);
  return referenceGemm(transA, transB, m, n, k, Math.abs(alpha), abs(a), abs(b), Math.abs(beta), abs(c));
}

/** C = alpha·op(A)·op(B) + beta·C in float64 (beta = 0 ignores C, as BLAS does). */
export function referenceGemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const aip = transA ? (a[p * m + i] as number) : (a[i * k + p] as number);
        const bpj = transB ? (b[j * k + p] as number) : (b[p * n + j] as number);
        sum += aip * bpj;
      }
      out[i * n + j] = alpha * sum + (beta === 0 ? 0 : beta * (c[i * n + j] as number));
    }
  }
  return out;
}

// Sizes straddle the 4×8 micro-tile, the 4-lane vectors and the WASM kernel's 256-deep slices.
export const GEMM_SIZES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [4, 8, 4], [13, 9, 17], [33, 31, 300], [64, 24, 257], [5, 70, 2]];
export const TRANSPOSES: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

export { Xoshiro128 };
