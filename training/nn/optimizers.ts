// Optimizers. Dense parameters take Adam; embedding tables take a sparse optimizer that visits
// only the rows in the step's touched list (SparseRowGrad), so its cost per step does not depend
// on the table's size. Weight decay on a table is lazy too: a row decays only when it is used.
import type { Param, SparseParam } from './param.ts';

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): w −= lr·decay·w each step. */
  weightDecay?: number;
}

/** Adam (Kingma & Ba 2015) with bias correction, over dense parameters. */
export class Adam {
  learningRate: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;

  constructor(private readonly params: readonly Param[], options: AdamOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.m = params.map((p) => new Float32Array(p.value.length));
    this.v = params.map((p) => new Float32Array(p.value.length));
  }

  step(): void {
    this.t++;
    const { beta1, beta2, epsilon, weightDecay } = this;
    const stepSize = this.learningRate * Math.sqrt(1 - beta2 ** this.t) / (1 - beta1 ** this.t);
    const decay = 1 - this.learningRate * weightDecay;
    const oneMinusBeta1 = 1 - beta1;
    const oneMinusBeta2 = 1 - beta2;
    for (let p = 0; p < this.params.length; p++) {
      const { value, grad } = this.params[p] as Param;
      const m = this.m[p] as Float32Array;
      const v = this.v[p] as Float32Array;
      const n = value.length;
      for (let i = 0; i < n; i++) {
        const g = grad[i] as number;
        const mi = beta1 * (m[i] as number) + oneMinusBeta1 * g;
        const vi = beta2 * (v[i] as number) + oneMinusBeta2 * g * g;
        m[i] = mi;
        v[i] = vi;
        value[i] = (value[i] as number) * decay - stepSize * mi / (Math.sqrt(vi) + epsilon);
      }
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }
}

export interface SparseAdagradOptions {
  learningRate: number;
  /** Starting value of every accumulator; TensorFlow's default 0.1 damps the first steps. */
  initialAccumulator?: number;
  epsilon?: number;
  /** L2 penalty added to a touched row's gradient: g += decay·w. */
  weightDecay?: number;
}

/**
 * Adagrad (Duchi, Hazan & Singer 2011) on the touched rows of embedding tables: per coordinate,
 * acc += g², w −= lr·g/(√acc + ε). A rare id keeps a small accumulator and so a large step, which
 * suits long-tailed id distributions. Holds one accumulator per table entry (allocated once).
 */
export class SparseAdagrad {
  learningRate: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly accumulators: Float32Array[];

  constructor(private readonly params: readonly SparseParam[], options: SparseAdagradOptions) {
    this.learningRate = options.learningRate;
    this.epsilon = options.epsilon ?? 1e-10;
    this.weightDecay = options.weightDecay ?? 0;
    const initial = options.initialAccumulator ?? 0.1;
    this.accumulators = params.map((p) => new Float32Array(p.value.length).fill(initial));
  }

  step(): void {
    const { learningRate, epsilon, weightDecay } = this;
    for (let p = 0; p < this.params.length; p++) {
      const { value, grad, dim } = this.params[p] as SparseParam;
      const acc = this.accumulators[p] as Float32Array;
      const { count, rows, values } = grad;
      for (let s = 0; s < count; s++) {
        const base = (rows[s] as number) * dim;
        const at = s * dim;
        for (let d = 0; d < dim; d++) {
          const i = base + d;
          const g = (values[at + d] as number) + weightDecay * (value[i] as number);
          const a = (acc[i] as number) + g * g;
          acc[i] = a;
          value[i] = (value[i] as number) - learningRate * g / (Math.sqrt(a) + epsilon);
        }
      }
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }
}

/**
 * Lazy Adam (TensorFlow Addons' LazyAdam): Adam's moments updated only for the touched rows, with
 * the global step's bias correction. Untouched rows keep stale moments instead of decaying them,
 * which is what makes the step cost independent of the table size. Holds two floats per entry.
 */
export class LazyAdam {
  learningRate: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;

  constructor(private readonly params: readonly SparseParam[], options: Omit<AdamOptions, 'weightDecay'>) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.m = params.map((p) => new Float32Array(p.value.length));
    this.v = params.map((p) => new Float32Array(p.value.length));
  }

  step(): void {
    this.t++;
    const { beta1, beta2, epsilon } = this;
    const stepSize = this.learningRate * Math.sqrt(1 - beta2 ** this.t) / (1 - beta1 ** this.t);
    const oneMinusBeta1 = 1 - beta1;
    const oneMinusBeta2 = 1 - beta2;
    for (let p = 0; p < this.params.length; p++) {
      const { value, grad, dim } = this.params[p] as SparseParam;
      const m = this.m[p] as Float32Array;
      const v = this.v[p] as Float32Array;
      const { count, rows, values } = grad;
      for (let s = 0; s < count; s++) {
        const base = (rows[s] as number) * dim;
        const at = s * dim;
        for (let d = 0; d < dim; d++) {
          const i = base + d;
          const g = values[at + d] as number;
          const mi = beta1 * (m[i] as number) + oneMinusBeta1 * g;
          const vi = beta2 * (v[i] as number) + oneMinusBeta2 * g * g;
          m[i] = mi;
          v[i] = vi;
          value[i] = (value[i] as number) - stepSize * mi / (Math.sqrt(vi) + epsilon);
        }
      }
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }
}

/**
 * Scales every gradient by min(1, maxNorm / ‖g‖) where ‖g‖ is the L2 norm over all of them, dense
 * and sparse together (Pascanu, Mikolov & Bengio 2013). Returns the norm before clipping.
 */
export function clipGradNorm(dense: readonly Param[], sparse: readonly SparseParam[], maxNorm: number): number {
  let sum = 0;
  for (const p of dense) for (let i = 0; i < p.grad.length; i++) sum += (p.grad[i] as number) ** 2;
  for (const p of sparse) {
    const { values, count, dim } = p.grad;
    for (let i = 0; i < count * dim; i++) sum += (values[i] as number) ** 2;
  }
  const norm = Math.sqrt(sum);
  if (norm > maxNorm && norm > 0) {
    const scale = maxNorm / norm;
    for (const p of dense) for (let i = 0; i < p.grad.length; i++) p.grad[i] = (p.grad[i] as number) * scale;
    for (const p of sparse) {
      const { values, count, dim } = p.grad;
      for (let i = 0; i < count * dim; i++) values[i] = (values[i] as number) * scale;
    }
  }
  return norm;
}
