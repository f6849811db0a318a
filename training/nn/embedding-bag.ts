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
  /** Per example, the table offset and weight of each unmasked id: scratch for `poolRows`. */
  private rowOffsets = new Int32Array(0);
  private rowWeights = new Float64Array(0);

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
    if (this.rowOffsets.length < length) {
      this.rowOffsets = new Int32Array(length);
      this.rowWeights = new Float64Array(length);
    }
    const { rowOffsets, rowWeights } = this;
    const out = this.out;
    const scales = this.scale;
    const mean = this.pooling === 'mean';
    for (let b = 0; b < batch; b++) {
      const at = b * length;
      let weight = 0;
      for (let l = 0; l < length; l++) weight += mask[at + l] as number;
      const scale = mean ? 1 / Math.max(weight, 1) : 1;
      scales[b] = scale;
      let used = 0;
      for (let l = 0; l < length; l++) {
        const m = mask[at + l] as number;
        if (m === 0) continue;
        const id = ids[at + l] as number;
        if (!(id >= 0 && id < rows)) {
          throw new RangeError(`example ${b} position ${l} has id ${id}, outside the table's ${rows} rows`);
        }
        rowOffsets[used] = id * dim;
        rowWeights[used] = m * scale;
        used++;
      }
      poolRows(out, b * dim, value, rowOffsets, rowWeights, used, dim);
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
    const scales = this.scale;
    for (let b = 0; b < batch; b++) {
      const scale = scales[b] as number;
      const at = b * length;
      const src = b * dim;
      for (let l = 0; l < length; l++) {
        const m = mask[at + l] as number;
        if (m === 0) continue;
        const s = grad.slot(ids[at + l] as number);
        // slot() may grow the buffer: read `values` after it.
        addScaledRow(grad.values, s * dim, dOut, src, m * scale, dim);
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

/**
 * dst[to .. to+dim) += w · src[from .. from+dim), each sum rounded to float32 as it is stored: the
 * loop of backward per (example, id), unrolled by 8 (dims are multiples of 8 in practice).
 */
function addScaledRow(dst: Float32Array, to: number, src: Float32Array, from: number, w: number, dim: number): void {
  let d = 0;
  for (; d + 8 <= dim; d += 8) {
    const a = to + d;
    const c = from + d;
    dst[a] = (dst[a] as number) + w * (src[c] as number);
    dst[a + 1] = (dst[a + 1] as number) + w * (src[c + 1] as number);
    dst[a + 2] = (dst[a + 2] as number) + w * (src[c + 2] as number);
    dst[a + 3] = (dst[a + 3] as number) + w * (src[c + 3] as number);
    dst[a + 4] = (dst[a + 4] as number) + w * (src[c + 4] as number);
    dst[a + 5] = (dst[a + 5] as number) + w * (src[c + 5] as number);
    dst[a + 6] = (dst[a + 6] as number) + w * (src[c + 6] as number);
    dst[a + 7] = (dst[a + 7] as number) + w * (src[c + 7] as number);
  }
  for (; d < dim; d++) dst[to + d] = (dst[to + d] as number) + w * (src[from + d] as number);
}

/**
 * dst[to + d] = Σ_k weights[k] · table[offsets[k] + d] over the `count` rows, summed in k order and
 * rounded to float32 after every add: the same float32 sums as adding each row into a zeroed output,
 * but eight running sums stay in registers instead of being loaded and stored once per row.
 */
function poolRows(
  dst: Float32Array, to: number, table: Float32Array, offsets: Int32Array, weights: Float64Array, count: number, dim: number,
): void {
  let d = 0;
  for (; d + 8 <= dim; d += 8) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let s5 = 0;
    let s6 = 0;
    let s7 = 0;
    for (let k = 0; k < count; k++) {
      const o = (offsets[k] as number) + d;
      const w = weights[k] as number;
      s0 = Math.fround(s0 + w * (table[o] as number));
      s1 = Math.fround(s1 + w * (table[o + 1] as number));
      s2 = Math.fround(s2 + w * (table[o + 2] as number));
      s3 = Math.fround(s3 + w * (table[o + 3] as number));
      s4 = Math.fround(s4 + w * (table[o + 4] as number));
      s5 = Math.fround(s5 + w * (table[o + 5] as number));
      s6 = Math.fround(s6 + w * (table[o + 6] as number));
      s7 = Math.fround(s7 + w * (table[o + 7] as number));
    }
    const at = to + d;
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
    let sum = 0;
    for (let k = 0; k < count; k++) sum = Math.fround(sum + (weights[k] as number) * (table[(offsets[k] as number) + d] as number));
    dst[to + d] = sum;
  }
}
