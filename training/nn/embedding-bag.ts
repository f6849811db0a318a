// An embedding bag: per example, a padded list of ids pooled into one vector (Covington 2016's
// averaged watch history). Inputs are the serving layout of training/models/spec.ts: ids and a
// mask [batch × L] row-major, where the mask is 0/1 padding or a per-id weight.
import type { Xoshiro128 } from '../../core/domain/random.ts';
import type { BagSpec } from '../models/spec.ts';
import { fillNormal } from './init.ts';
import { SparseParam } from './param.ts';

export type BagPooling = 'mean' | 'sum';

export interface EmbeddingBagOptions {
  rows: number;
  dim: number;
  pooling: BagPooling;
  rng: Xoshiro128;
  /** Std of the normal initialisation; default 1/√dim keeps a pooled vector's norm near 1. */
  initStd?: number;
}

export class EmbeddingBag {
  readonly table: SparseParam;
  readonly pooling: BagPooling;
  private out = new Float32Array(0);
  /** Per example: the factor each masked id's row is scaled by (1/max(Σ mask, 1) for mean, 1 for sum). */
  private scale = new Float32Array(0);
  private ids: Int32Array = new Int32Array(0);
  private mask: Float32Array = new Float32Array(0);
  private batch = 0;
  private length = 0;

  constructor(options: EmbeddingBagOptions) {
    const { rows, dim, pooling, rng } = options;
    if (!Number.isInteger(rows) || rows <= 0 || !Number.isInteger(dim) || dim <= 0) {
      throw new RangeError(`an embedding bag needs positive integer rows and dim, got ${rows} × ${dim}`);
    }
    const table = fillNormal(new Float32Array(rows * dim), options.initStd ?? 1 / Math.sqrt(dim), rng);
    this.table = new SparseParam(table, rows, dim);
    this.pooling = pooling;
  }

  get dim(): number {
    return this.table.dim;
  }

  /**
   * out[b] = Σ_l mask[b,l]·E[ids[b,l]] · scale[b], scale = 1/max(Σ_l mask[b,l], 1) for mean and 1
   * for sum: the formula of BagSpec. Ids whose mask is 0 are padding and never read. Returns a
   * buffer this layer owns, valid until its next forward.
   */
  forward(ids: Int32Array, mask: Float32Array, batch: number, length: number): Float32Array {
    const { dim, rows, value } = this.table;
    if (ids.length !== batch * length || mask.length !== batch * length) {
      throw new RangeError(`ids and mask must be batch ${batch} × length ${length}; got ${ids.length} and ${mask.length}`);
    }
    if (this.out.length !== batch * dim) this.out = new Float32Array(batch * dim);
    if (this.scale.length !== batch) this.scale = new Float32Array(batch);
    const out = this.out.fill(0);
    for (let b = 0; b < batch; b++) {
      let weight = 0;
      for (let l = 0; l < length; l++) weight += mask[b * length + l] as number;
      const scale = this.pooling === 'mean' ? 1 / Math.max(weight, 1) : 1;
      this.scale[b] = scale;
      for (let l = 0; l < length; l++) {
        const m = mask[b * length + l] as number;
        if (m === 0) continue;
        const id = ids[b * length + l] as number;
        if (!(id >= 0 && id < rows)) {
          throw new RangeError(`example ${b} position ${l} has id ${id}, outside the table's ${rows} rows`);
        }
        const w = m * scale;
        const src = id * dim;
        const dst = b * dim;
        for (let d = 0; d < dim; d++) out[dst + d] = (out[dst + d] as number) + w * (value[src + d] as number);
      }
    }
    this.ids = ids;
    this.mask = mask;
    this.batch = batch;
    this.length = length;
    return out;
  }

  /** Adds dL/dE into the table's sparse gradient, touching only the rows this batch used. */
  backward(dOut: Float32Array): void {
    const { dim } = this.table;
    const grad = this.table.grad;
    const { ids, mask, batch, length } = this;
    if (dOut.length !== batch * dim) throw new RangeError(`dOut has ${dOut.length} floats, expected ${batch} × ${dim}`);
    for (let b = 0; b < batch; b++) {
      const scale = this.scale[b] as number;
      for (let l = 0; l < length; l++) {
        const m = mask[b * length + l] as number;
        if (m === 0) continue;
        const s = grad.slot(ids[b * length + l] as number);
        // slot() may grow the buffer: read `values` after it.
        const values = grad.values;
        const w = m * scale;
        for (let d = 0; d < dim; d++) values[s * dim + d] = (values[s * dim + d] as number) + w * (dOut[b * dim + d] as number);
      }
    }
  }

  zeroGrad(): void {
    this.table.zeroGrad();
  }

  /** The serving form (a copy of the table). */
  toSpec(name: string): BagSpec {
    return { name, rows: this.table.rows, dim: this.dim, mode: this.pooling, table: this.table.value.slice() };
  }
}
