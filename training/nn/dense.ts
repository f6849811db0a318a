// A fully connected layer, y = x·W + b with W [inputs × outputs] row-major: the layout of
// DenseLayerSpec, so trained weights go to serving without a transpose.
import type { Xoshiro128 } from '../../core/domain/random.ts';
import type { DenseLayerSpec } from '../models/spec.ts';
import { typescriptPoolRows } from './backend.ts';
import type { MatmulBackend, PoolRows } from './backend.ts';
import { glorotUniform, heNormal } from './init.ts';
import { Param } from './param.ts';

export interface DenseOptions {
  inputs: number;
  outputs: number;
  rng: Xoshiro128;
  backend: MatmulBackend;
  /** he (default) for layers followed by ReLU, glorot for the rest. */
  init?: 'he' | 'glorot';
}

export class Dense {
  readonly inputs: number;
  readonly outputs: number;
  readonly weight: Param;
  readonly bias: Param;
  private readonly backend: MatmulBackend;
  private x: Float32Array = new Float32Array(0);
  private batch = 0;
  private out = new Float32Array(0);
  private dx = new Float32Array(0);
  /** db += Σ_rows dy as a pooling of dy's rows with weight 1 (`rowOffsets`, `ones`, `rowSpan`). */
  private readonly sumRows: PoolRows;
  private rowOffsets = new Int32Array(0);
  private ones = new Float64Array(0);
  private readonly rowSpan = new Int32Array(2);

  constructor(options: DenseOptions) {
    const { inputs, outputs, rng } = options;
    if (!Number.isInteger(inputs) || inputs <= 0 || !Number.isInteger(outputs) || outputs <= 0) {
      throw new RangeError(`a dense layer needs positive integer inputs and outputs, got ${inputs} × ${outputs}`);
    }
    this.inputs = inputs;
    this.outputs = outputs;
    const w = options.init === 'glorot' ? glorotUniform(inputs, outputs, rng) : heNormal(inputs, outputs, rng);
    this.weight = new Param(w);
    this.bias = new Param(new Float32Array(outputs));
    this.backend = options.backend;
    this.sumRows = options.backend.poolRows ?? typescriptPoolRows;
  }

  get params(): Param[] {
    return [this.weight, this.bias];
  }

  /** y [batch × outputs] = x [batch × inputs] · W + b. Keeps `x` (not a copy) for backward. */
  forward(x: Float32Array, batch: number): Float32Array {
    const { inputs, outputs } = this;
    if (x.length !== batch * inputs) throw new RangeError(`x has ${x.length} floats, expected batch ${batch} × ${inputs} inputs`);
    if (this.out.length !== batch * outputs) this.out = new Float32Array(batch * outputs);
    const out = this.out;
    const bias = this.bias.value;
    for (let b = 0; b < batch; b++) out.set(bias, b * outputs);
    this.backend.gemm(false, false, batch, outputs, inputs, 1, x, this.weight.value, 1, out);
    this.x = x;
    this.batch = batch;
    return out;
  }

  /**
   * Adds dW += xᵀ·dy and db += Σ_rows dy; returns dx = dy·Wᵀ, or an empty array when the layer's
   * input needs no gradient (`needInputGrad` false, e.g. the first layer over raw features).
   */
  backward(dy: Float32Array, needInputGrad = true): Float32Array {
    const { inputs, outputs, batch } = this;
    if (dy.length !== batch * outputs) throw new RangeError(`dy has ${dy.length} floats, expected ${batch} × ${outputs}`);
    this.backend.gemm(true, false, inputs, outputs, batch, 1, this.x, dy, 1, this.weight.grad);
    if (this.rowOffsets.length !== batch) {
      this.rowOffsets = Int32Array.from({ length: batch }, (_, b) => b * outputs);
      this.ones = new Float64Array(batch).fill(1);
      this.rowSpan[1] = batch;
    }
    // db[j] + dy[0, j] + dy[1, j] + …, rounded to float32 after each add (w·x = x for w = 1).
    this.sumRows(this.bias.grad, 1, dy, this.rowOffsets, this.ones, this.rowSpan, outputs, true);
    if (!needInputGrad) return new Float32Array(0);
    if (this.dx.length !== batch * inputs) this.dx = new Float32Array(batch * inputs);
    this.backend.gemm(false, true, batch, inputs, outputs, 1, dy, this.weight.value, 0, this.dx);
    return this.dx;
  }

  zeroGrad(): void {
    this.weight.zeroGrad();
    this.bias.zeroGrad();
  }

  /** The serving form (copies of the weights). */
  toSpec(activation: DenseLayerSpec['activation']): DenseLayerSpec {
    return {
      inputs: this.inputs, outputs: this.outputs, activation,
      weight: this.weight.value.slice(), bias: this.bias.value.slice(),
    };
  }
}
