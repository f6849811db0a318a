// An embedding bag: per example, a padded list of ids pooled into one vector (Covington 2016's
// averaged watch history). Inputs are the serving layout of training/models/spec.ts: ids and a
// mask [batch × L] row-major, where the mask is 0/1 padding or a per-id weight.
import type { Xoshiro128 } from '../../core/domain/random.ts';
import type { BagSpec } from '../models/spec.ts';
import { typescriptPoolRows } from './backend.ts';
import type { MatmulBackend, PoolRows } from './backend.ts';
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
  /** A backend whose `poolRows` kernel runs the pooling loops; without one they run in TypeScript. */
  backend?: MatmulBackend;
}

export class EmbeddingBag {
  readonly table: SparseParam;
  readonly pooling: BagPooling;
  private readonly poolRows: PoolRows;
  /** True when `poolRows` copies its source: then forward hands it only the rows the batch uses. */
  private readonly copiesSource: boolean;
  private out = new Float32Array(0);
  /** Per example: the factor each masked id's row is scaled by (1/max(Σ mask, 1) for mean, 1 for sum). */
  private scale = new Float32Array(0);
  private ids: Int32Array = new Int32Array(0);
  private mask: Float32Array = new Float32Array(0);
  private batch = 0;
  private length = 0;
  /**
   * The (row, id) pairs of the last pass in `poolRows`' layout: per pair a source offset and a
   * weight, and per pooled row the start of its pairs. Forward lists them per example; backward
   * lists them per touched row (`pairSlot` holds each pair's slot before they are sorted).
   */
  private offsets = new Int32Array(0);
  private weights = new Float64Array(0);
  private starts = new Int32Array(0);
  private pairSlot = new Int32Array(0);
  private pairFrom = new Int32Array(0);
  private pairWeight = new Float64Array(0);
  /** Forward's copy of the rows a batch uses (only when `copiesSource`): localRow[id] is its row, or −1. */
  private localRow: Int32Array = new Int32Array(0);
  private usedRows = new Int32Array(0);
  private gathered = new Float32Array(0);

  constructor(options: EmbeddingBagOptions) {
    const { rows, dim, pooling, rng } = options;
    if (!Number.isInteger(rows) || rows <= 0 || !Number.isInteger(dim) || dim <= 0) {
      throw new RangeError(`an embedding bag needs positive integer rows and dim, got ${rows} × ${dim}`);
    }
    const table = fillNormal(new Float32Array(rows * dim), options.initStd ?? 1 / Math.sqrt(dim), rng);
    this.table = new SparseParam(table, rows, dim);
    this.pooling = pooling;
    const kernel = options.backend?.poolRows;
    this.poolRows = kernel ?? typescriptPoolRows;
    this.copiesSource = kernel !== undefined;
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
    this.reserve(batch * length, batch);
    const { offsets, weights, starts } = this;
    const out = this.out;
    const scales = this.scale;
    const mean = this.pooling === 'mean';
    // A kernel that copies its source gets the whole table when the batch could touch every row,
    // else only the rows it uses (a table may be far larger than a batch).
    const gather = this.copiesSource && rows > batch * length;
    if (gather && this.localRow.length !== rows) this.localRow = new Int32Array(rows).fill(-1);
    const localRow = this.localRow;
    let used = 0;
    let pairs = 0;
    starts[0] = 0;
    for (let b = 0; b < batch; b++) {
      const at = b * length;
      let weight = 0;
      for (let l = 0; l < length; l++) weight += mask[at + l] as number;
      const scale = mean ? 1 / Math.max(weight, 1) : 1;
      scales[b] = scale;
      for (let l = 0; l < length; l++) {
        const m = mask[at + l] as number;
        if (m === 0) continue;
        const id = ids[at + l] as number;
        if (!(id >= 0 && id < rows)) {
          if (gather) this.forgetUsedRows(used);
          throw new RangeError(`example ${b} position ${l} has id ${id}, outside the table's ${rows} rows`);
        }
        let row = id;
        if (gather) {
          row = localRow[id] as number;
          if (row < 0) {
            row = used++;
            localRow[id] = row;
            this.usedRows[row] = id;
          }
        }
        offsets[pairs] = row * dim;
        weights[pairs] = m * scale;
        pairs++;
      }
      starts[b + 1] = pairs;
    }
    let source = value;
    if (gather) {
      if (this.gathered.length < used * dim) this.gathered = new Float32Array(Math.max(used * dim, 2 * this.gathered.length));
      const gathered = this.gathered;
      for (let r = 0; r < used; r++) {
        const from = (this.usedRows[r] as number) * dim;
        const to = r * dim;
        for (let d = 0; d < dim; d++) gathered[to + d] = value[from + d] as number;
      }
      this.forgetUsedRows(used);
      source = gathered.subarray(0, used * dim);
    }
    this.poolRows(out, batch, source, offsets, weights, starts, dim, false);
    this.ids = ids;
    this.mask = mask;
    this.batch = batch;
    this.length = length;
    return out;
  }

  /**
   * Adds dL/dE into the table's sparse gradient, touching only the rows this batch used. Each
   * touched row's gradient is pooled over its (example, position) pairs in forward order, so
   * every float32 sum is the one that adding the pairs into the row one by one would store.
   */
  backward(dOut: Float32Array): void {
    const { dim } = this.table;
    const grad = this.table.grad;
    const { ids, mask, batch, length } = this;
    if (dOut.length !== batch * dim) throw new RangeError(`dOut has ${dOut.length} floats, expected ${batch} × ${dim}`);
    const scales = this.scale;
    const { pairSlot, pairFrom, pairWeight } = this;
    // Claim each used row's slot and list the pairs in forward order.
    const firstNew = grad.count;
    let pairs = 0;
    for (let b = 0; b < batch; b++) {
      const scale = scales[b] as number;
      const at = b * length;
      for (let l = 0; l < length; l++) {
        const m = mask[at + l] as number;
        if (m === 0) continue;
        pairSlot[pairs] = grad.slot(ids[at + l] as number);
        pairFrom[pairs] = b * dim;
        pairWeight[pairs] = m * scale;
        pairs++;
      }
    }
    // A stable counting sort of the pairs by slot: counts land at starts[s + 2], so that after
    // the prefix sum starts[s + 1] is where slot s begins, and after placing, where slot s + 1 does.
    const slots = grad.count;
    if (this.starts.length < slots + 2) this.starts = new Int32Array(Math.max(slots + 2, 2 * this.starts.length));
    const { starts, offsets, weights } = this;
    starts.fill(0, 0, slots + 2);
    for (let e = 0; e < pairs; e++) {
      const at = (pairSlot[e] as number) + 2;
      starts[at] = (starts[at] as number) + 1;
    }
    for (let s = 2; s < slots + 2; s++) starts[s] = (starts[s] as number) + (starts[s - 1] as number);
    for (let e = 0; e < pairs; e++) {
      const at = (pairSlot[e] as number) + 1;
      const to = starts[at] as number;
      starts[at] = to + 1;
      offsets[to] = pairFrom[e] as number;
      weights[to] = pairWeight[e] as number;
    }
    // New slots are zero (slot() clears them), so start from zero unless older slots hold sums.
    this.poolRows(grad.values, slots, dOut, offsets, weights, starts, dim, firstNew > 0);
  }

  zeroGrad(): void {
    this.table.zeroGrad();
  }

  /** The serving form (a copy of the table). */
  toSpec(name: string): BagSpec {
    return { name, rows: this.table.rows, dim: this.dim, mode: this.pooling, table: this.table.value.slice() };
  }

  /** Room for `pairs` (row, id) pairs and `rows` pooled rows in the scratch lists. */
  private reserve(pairs: number, rows: number): void {
    if (this.offsets.length < pairs) {
      this.offsets = new Int32Array(pairs);
      this.weights = new Float64Array(pairs);
      this.pairSlot = new Int32Array(pairs);
      this.pairFrom = new Int32Array(pairs);
      this.pairWeight = new Float64Array(pairs);
      this.usedRows = new Int32Array(pairs);
    }
    if (this.starts.length < rows + 2) this.starts = new Int32Array(rows + 2);
  }

  private forgetUsedRows(used: number): void {
    for (let r = 0; r < used; r++) this.localRow[this.usedRows[r] as number] = -1;
  }
}
