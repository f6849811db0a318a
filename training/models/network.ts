// A trainable network of the NetworkSpec shape (spec.ts): embedding bags and an optional dense
// input, concatenated → dense layers (ReLU between them) → an output transform, plus an optional
// wide sum-bag added to the last layer (Cheng 2016). The two towers and the ranker are instances;
// `toSpec()` hands the weights to the ONNX exporter and the serving kernels unchanged.

import type { Xoshiro128 } from '../../core/domain/random.ts';
import { Concat, Dense, EmbeddingBag, L2Normalize, Relu } from '../nn/index.ts';
import type { MatmulBackend, Param, SparseParam } from '../nn/index.ts';
import type { NetworkInputs, NetworkSpec } from './spec.ts';

export interface BagConfig {
  name: string;
  rows: number;
  dim: number;
  mode: 'mean' | 'sum';
  /** Std of the initial table; default 1/√dim. */
  initStd?: number;
}

export interface NetworkConfig {
  bags: BagConfig[];
  dense?: { name: string; size: number };
  /** Widths of the hidden layers (each followed by ReLU). */
  hidden: number[];
  outputs: number;
  output: 'l2' | 'none';
  outputName: string;
  /** Wide part: a sum bag of `rows` hashed cross features, dim = outputs, initialised at 0. */
  wide?: { name: string; rows: number };
}

export class Network {
  readonly bags: EmbeddingBag[];
  readonly layers: Dense[];
  readonly wide: EmbeddingBag | undefined;
  private readonly relus: Relu[];
  private readonly concat = new Concat();
  private readonly norm = new L2Normalize();
  private readonly widths: number[];
  private out = new Float32Array(0);

  constructor(readonly config: NetworkConfig, rng: Xoshiro128, backend: MatmulBackend) {
    this.bags = config.bags.map((b) => new EmbeddingBag({
      rows: b.rows, dim: b.dim, pooling: b.mode, rng, backend, ...(b.initStd === undefined ? {} : { initStd: b.initStd }),
    }));
    this.widths = [...config.bags.map((b) => b.dim), ...(config.dense ? [config.dense.size] : [])];
    const sizes = [this.widths.reduce((s, w) => s + w, 0), ...config.hidden, config.outputs];
    this.layers = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const last = l + 2 === sizes.length;
      this.layers.push(new Dense({ inputs: sizes[l] ?? 0, outputs: sizes[l + 1] ?? 0, rng, backend, init: last ? 'glorot' : 'he' }));
    }
    this.relus = config.hidden.map(() => new Relu());
    if (config.wide) {
      this.wide = new EmbeddingBag({ rows: config.wide.rows, dim: config.outputs, pooling: 'sum', rng, backend, initStd: 0 });
      this.wide.table.value.fill(0);
    } else {
      this.wide = undefined;
    }
  }

  get denseParams(): Param[] {
    return this.layers.flatMap((l) => l.params);
  }

  get sparseParams(): SparseParam[] {
    return [...this.bags.map((b) => b.table), ...(this.wide ? [this.wide.table] : [])];
  }

  /** [batch × outputs]; a buffer the network owns, valid until its next forward. */
  forward(inputs: NetworkInputs): Float32Array {
    const { batch } = inputs;
    const parts = this.bags.map((bag, i) => {
      const name = this.config.bags[i]?.name ?? '';
      const input = inputs.bags[name];
      if (!input) throw new Error(`network input '${name}' is missing`);
      return bag.forward(input.ids, input.mask, batch, input.length);
    });
    if (this.config.dense) {
      if (!inputs.dense || inputs.dense.length !== batch * this.config.dense.size) {
        throw new Error(`network input '${this.config.dense.name}' must be ${batch} × ${this.config.dense.size} floats`);
      }
      parts.push(inputs.dense);
    }
    let x = this.concat.forward(parts, this.widths, batch);
    this.layers.forEach((layer, l) => {
      x = layer.forward(x, batch);
      const relu = this.relus[l];
      if (relu) x = relu.forward(x);
    });
    if (this.wide && this.config.wide) {
      const input = inputs.bags[this.config.wide.name];
      if (!input) throw new Error(`network input '${this.config.wide.name}' is missing`);
      const w = this.wide.forward(input.ids, input.mask, batch, input.length);
      if (this.out.length !== x.length) this.out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) this.out[i] = (x[i] ?? 0) + (w[i] ?? 0);
      x = this.out;
    }
    return this.config.output === 'l2' ? this.norm.forward(x, this.config.outputs) : x;
  }

  /** Accumulates every parameter's gradient from dLoss/dOutput of the last forward. */
  backward(dOut: Float32Array): void {
    let d = this.config.output === 'l2' ? this.norm.backward(dOut) : dOut;
    this.wide?.backward(d);
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const relu = this.relus[l];
      if (relu) d = relu.backward(d);
      const layer = this.layers[l];
      if (layer) d = layer.backward(d, true);
    }
    const grads = this.concat.backward(d);
    this.bags.forEach((bag, i) => {
      const g = grads[i];
      if (g) bag.backward(g);
    });
  }

  zeroGrad(): void {
    for (const p of this.denseParams) p.zeroGrad();
    for (const p of this.sparseParams) p.zeroGrad();
  }

  toSpec(): NetworkSpec {
    const { config } = this;
    return {
      bags: this.bags.map((b, i) => b.toSpec(config.bags[i]?.name ?? '')),
      ...(config.dense ? { dense: { ...config.dense } } : {}),
      layers: this.layers.map((l, i) => l.toSpec(i < this.relus.length ? 'relu' : 'none')),
      ...(this.wide && config.wide ? { wide: this.wide.toSpec(config.wide.name) } : {}),
      output: config.output,
      outputName: config.outputName,
    };
  }
}
