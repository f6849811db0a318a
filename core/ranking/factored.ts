// The Wide&Deep ranker split by what each part depends on, for serving. A request ranks ~1,000
// items for one user. The first layer's input is the pooled embedding bags, then the dense
// features, and each bag depends on the user alone (user id, user features) or on the item alone
// (item id, categories). The first layer x · W₁ + b₁ is a sum over those parts, so
//
//   * the user's share (its pooled bags times their rows of W₁, plus b₁) is computed once per request,
//   * each item's share (its pooled bags times theirs) once per catalog snapshot (kept, filled as
//     items come up),
//   * and per row only the dense features' rows are left: act(user + item + dense · W₁_dense),
//     14 × 64 multiply-adds instead of 62 × 64 (the WASM `firstLayerRows` kernel when the item
//     shares live in its memory, `firstLayerRowsReference` otherwise: the same float32 steps).
//
// The network the Ranker adapters run is the rest: the layers after the first, on the first
// layer's output as one dense input. So every adapter (onnx, wasm, webgpu) runs it as it is, and no
// row pools an embedding bag or multiplies the shares again: the ONNX Runtime call does half the
// multiply-adds of the whole network. The wide part is summed by `score` from the rows' wide ids or
// `rows` sums (no padded bag). The scores equal the whole network's up to the order of the first
// layer's sum (test/kernels/ranker-parity.test.ts holds them to the reference forward pass on
// every adapter).
import { DENSE_SIZE } from '../../training/features/feature-state.ts';
import type { WideGroupSink } from '../../training/features/feature-state.ts';
import type { FrozenFeatures } from '../../training/features/point-in-time.ts';
import { checkNetworkSpec, dense, networkInput, networkOutputWidth } from '../../training/models/forward.ts';
import type { BagSpec, DenseLayerSpec, NetworkInputs, NetworkSpec } from '../../training/models/spec.ts';
import { InputBuilder, RANKER_INPUTS } from '../../training/ranker/inputs.ts';
import type { RankerVocabulary, ScoringRows } from '../../training/ranker/inputs.ts';
import type { WasmFirstLayer } from '../../wasm/index.ts';
import type { Ranker } from './ranker.ts';
import { NEW_ARRAYS } from '../domain/arrays.ts';
import type { ArraySource } from '../domain/arrays.ts';

/** The bags of ranker.onnx that depend on the user alone; every other bag depends on the item alone. */
export const USER_BAGS: readonly string[] = [RANKER_INPUTS.user, RANKER_INPUTS.userFeatures];
/** The input of the network the adapters run: each row's first-layer output. */
export const FACTORED_INPUT = 'first_layer';
/**
 * One user's rows as `FactoredRanker.rows` builds them: the wide part already summed per row
 * (`wideSums`, [length × outputs]) and no wide ids (`wideOffsets` all 0). Only the factored
 * ranker reads `wideSums`; the whole network's inputs (InputBuilder) need the ids.
 */
export interface SummedRows extends ScoringRows {
  wideSums: Float32Array;
}

/** Items whose parts are computed in one batch at most (bounds the padded bags' memory). */
const ITEM_BATCH = 4096;

/** The ranker split by what its parts depend on (see the header); one per model version. */
export class FactoredRanker {
  /** What the Ranker adapters run: the layers after the first, input FACTORED_INPUT [batch × width]. */
  readonly spec: NetworkSpec;
  /** Pooled user bags per row. */
  readonly userWidth: number;
  /** Pooled item bags per row. */
  readonly itemWidth: number;
  /** The first layer's outputs: a user's share, an item's share, a row's input to `spec`. */
  readonly width: number;
  /** Logit columns per row. */
  readonly outputs: number;
  private readonly userBags: NetworkSpec;
  private readonly itemBags: NetworkSpec;
  private readonly wide: BagSpec | undefined;
  /** The first layer's rows of W₁ for the user's pooled bags, with b₁: the user's share. */
  private readonly userLayer: DenseLayerSpec;
  /** Its rows for the item's pooled bags, no bias: an item's share. */
  private readonly itemLayer: DenseLayerSpec;
  /** Its rows for the dense features, [DENSE_SIZE × width]. */
  private readonly denseWeight: Float32Array;
  private readonly relu: boolean;

  constructor(ranker: NetworkSpec) {
    checkNetworkSpec(ranker);
    const first = ranker.layers[0];
    if (first === undefined || ranker.layers.length < 2) throw new RangeError('the ranker needs a hidden layer to be factored: it has no layer after its first');
    if (ranker.dense === undefined || ranker.dense.size !== DENSE_SIZE) {
      throw new RangeError(`the ranker's dense input must have ${DENSE_SIZE} features, got ${ranker.dense?.size ?? 'none'}`);
    }
    if (ranker.output !== 'none') throw new RangeError(`only a network with raw outputs can be factored, this one's output is '${ranker.output}'`);
    const pooling = (bags: BagSpec[]): NetworkSpec => ({ bags, layers: [], output: 'none', outputName: 'pooled' });
    const user = ranker.bags.filter((b) => USER_BAGS.includes(b.name));
    const item = ranker.bags.filter((b) => !USER_BAGS.includes(b.name));
    if (user.length === 0 || item.length === 0) throw new RangeError('the ranker needs both user and item bags to be factored');
    this.userBags = pooling(user);
    this.itemBags = pooling(item);
    this.userWidth = user.reduce((w, b) => w + b.dim, 0);
    this.itemWidth = item.reduce((w, b) => w + b.dim, 0);
    this.width = first.outputs;
    const rows = firstLayerRows(ranker);
    const weightOf = (bags: BagSpec[]) => concat(bags.map((b) => rows.get(b.name) ?? new Float32Array(0)));
    this.userLayer = { inputs: this.userWidth, outputs: this.width, weight: weightOf(user), bias: first.bias, activation: 'none' };
    this.itemLayer = { inputs: this.itemWidth, outputs: this.width, weight: weightOf(item), bias: new Float32Array(this.width), activation: 'none' };
    this.denseWeight = rows.get('dense') ?? new Float32Array(0);
    this.relu = first.activation === 'relu';
    const [, ...rest] = ranker.layers;
    this.spec = { bags: [], dense: { name: FACTORED_INPUT, size: this.width }, layers: rest, output: 'none', outputName: ranker.outputName };
    checkNetworkSpec(this.spec);
    this.wide = ranker.wide;
    this.outputs = networkOutputWidth(ranker);
  }

  /**
   * The logits [rows.length × outputs] of one user's rows on `ranker` (an adapter opened on
   * `this.spec`): the deep part there, then the wide part summed here from the rows' wide ids.
   */
  async score(ranker: Ranker, rows: ScoringRows | SummedRows, parts: ItemParts, userPart: Float32Array, arrays: ArraySource = NEW_ARRAYS): Promise<Float32Array> {
    // The first layer's output, ~256 KB for 1,000 rows: the core passes its request's scratch
    // (core/serving/scratch.ts). A fresh one per request was most of the request's memory outside
    // V8's heap, and under load that memory made V8 run a full collection several times a second
    // (one core, in process: 52 against 8 in 6,500 requests, with a buffer kept between calls).
    const out = arrays.float32('ranking.firstLayer', rows.length * this.width);
    return this.withWide(rows, await ranker.score(this.inputs(rows, parts, userPart, out)));
  }

  private withWide(rows: ScoringRows | SummedRows, logits: Float32Array): Float32Array {
    if (logits.length !== rows.length * this.outputs) throw new Error(`the ranker gave ${logits.length} logits for ${rows.length} rows × ${this.outputs}`);
    if ('wideSums' in rows) {
      const sums = rows.wideSums;
      if (sums.length !== logits.length) throw new RangeError(`wideSums has ${sums.length} values, expected rows × outputs = ${logits.length}`);
      for (let k = 0; k < logits.length; k++) logits[k] = (logits[k] ?? 0) + (sums[k] ?? 0);
    } else if (this.wide !== undefined) {
      addWide(this.wide, rows, logits);
    }
    return logits;
  }

  /**
   * The rows of `user` with each of `items` (the frozen features' `rows`, position −1 unless
   * given), with the wide part summed as it goes: one user's rows share their categories'
   * (user × category, user feature × category) ids, so those are summed once per category and a
   * row adds its categories' sums and its item × position weight. The same values `score` sums
   * from the ids, in another order of float64 additions of float32 weights, rounded once.
   */
  rows(features: FrozenFeatures, user: number, items: Int32Array, position = -1, arrays: ArraySource = NEW_ARRAYS): SummedRows {
    const n = items.length;
    const dense = arrays.float32('rows.dense', n * DENSE_SIZE);
    const sums = new WideSums(this.wide, this.outputs, items, features.state.dataset.categoryNames.length, this.itemWideOf(features, position), arrays.float32('rows.wideSums', n * this.outputs));
    features.rows(user, items, dense, sums, position);
    if (sums.rows !== n) throw new Error(`the features gave ${sums.rows} wide rows for ${n} items`);
    return {
      length: n, user: arrays.int32('rows.user', n).fill(user), item: items, dense,
      wideOffsets: arrays.int32('rows.wideOffsets', n + 1), wideIds: new Int32Array(0), wideSums: sums.out,
    };
  }

  /** Per frozen features and position, each item's item × position weights (NaN until computed): the same for every user. */
  private readonly itemWide = new WeakMap<FrozenFeatures, Map<number, Float32Array>>();

  private itemWideOf(features: FrozenFeatures, position: number): Float32Array {
    let byPosition = this.itemWide.get(features);
    if (byPosition === undefined) {
      byPosition = new Map();
      this.itemWide.set(features, byPosition);
    }
    let weights = byPosition.get(position);
    if (weights === undefined) {
      weights = new Float32Array(features.state.dataset.itemIds.length * this.outputs).fill(Number.NaN);
      byPosition.set(position, weights);
    }
    return weights;
  }

  /**
   * A cache of the item shares for one vocabulary (a snapshot's): `items` rows, filled on first
   * use. With `kernel` (a fresh WasmFirstLayer), they live in its memory and `inputs` computes the
   * rows with it instead of `firstLayerRowsReference`.
   */
  itemParts(vocabulary: RankerVocabulary, items: number, kernel?: WasmFirstLayer): ItemParts {
    return new ItemParts(this, vocabulary, items, kernel);
  }

  /**
   * The user's share of the first layer: the pooled user bags of `user` (an index of the
   * vocabulary; unknown ones take the OOV row) times their rows of W₁, plus b₁: [width].
   */
  userPart(vocabulary: RankerVocabulary, user: number): Float32Array {
    const rows: ScoringRows = {
      length: 1, user: Int32Array.of(user), item: Int32Array.of(vocabulary.items), dense: new Float32Array(DENSE_SIZE),
      wideOffsets: new Int32Array(2), wideIds: new Int32Array(0),
    };
    const pooled = networkInput(this.userBags, new InputBuilder(vocabulary).build(rows, [0], 0, 1));
    return dense(this.userLayer, pooled, 1);
  }

  /** The items' shares of the first layer, [items.length × width], computed now (ItemParts caches them). */
  computeItemParts(vocabulary: RankerVocabulary, items: Int32Array): Float32Array {
    const out = new Float32Array(items.length * this.width);
    const builder = new InputBuilder(vocabulary);
    for (let from = 0; from < items.length; from += ITEM_BATCH) {
      const chunk = items.subarray(from, Math.min(items.length, from + ITEM_BATCH));
      const rows: ScoringRows = {
        length: chunk.length, user: new Int32Array(chunk.length).fill(vocabulary.users), item: chunk,
        dense: new Float32Array(chunk.length * DENSE_SIZE), wideOffsets: new Int32Array(chunk.length + 1), wideIds: new Int32Array(0),
      };
      const indices = Int32Array.from({ length: chunk.length }, (_, k) => k);
      const pooled = networkInput(this.itemBags, builder.build(rows, indices, 0, chunk.length));
      out.set(dense(this.itemLayer, pooled, chunk.length), from * this.width);
    }
    return out;
  }

  /**
   * The inputs of `spec` for `rows`, which must all be one user's: per row the first layer's output,
   * act(user share + the row item's share + its dense features · their rows of W₁) (`score` adds
   * the wide part after).
   */
  inputs(rows: ScoringRows, parts: ItemParts, userPart: Float32Array, out?: Float32Array): NetworkInputs {
    const n = rows.length;
    const user = rows.user[0] ?? 0;
    for (let r = 1; r < n; r++) {
      if (rows.user[r] !== user) throw new RangeError(`factored rows are one user's: row ${r} has user ${rows.user[r]}, row 0 has ${user}`);
    }
    const { width } = this;
    if (userPart.length !== width) throw new RangeError(`the user part has ${userPart.length} values, expected ${width}`);
    parts.ensure(rows.item);
    if (out !== undefined && out.length !== n * width) throw new RangeError(`out has ${out.length} values, expected rows × width = ${n * width}`);
    const x = out ?? new Float32Array(n * width);
    if (parts.kernel !== undefined) parts.kernel.compute(userPart, rows.item, rows.dense, DENSE_SIZE, this.denseWeight, this.relu, x);
    else firstLayerRowsReference(userPart, parts.table, width, rows.item, rows.dense, DENSE_SIZE, this.denseWeight, this.relu, x);
    return { batch: n, bags: {}, dense: x };
  }
}

/**
 * out row r = act(user + table row rows[r] + Σ_k dense[r·denseWidth + k] · weight row k), in
 * float32 steps left to right (user + table row, then each dense term in k order; act = ReLU as
 * `0 < x ? x : 0`): what the WASM `firstLayerRows` kernel computes, to the bit. A Float32Array
 * store rounds each float64 sum or product of two float32 values once, as a float32 operation does.
 */
export function firstLayerRowsReference(
  user: Float32Array, table: Float32Array, width: number, rows: ArrayLike<number>, dense: Float32Array, denseWidth: number,
  weight: Float32Array, relu: boolean, out: Float32Array,
): void {
  const term = new Float32Array(1);
  for (let r = 0; r < rows.length; r++) {
    const at = r * width;
    const from = (rows[r] ?? 0) * width;
    for (let j = 0; j < width; j++) out[at + j] = (user[j] ?? 0) + (table[from + j] ?? 0);
    for (let k = 0; k < denseWidth; k++) {
      const d = dense[r * denseWidth + k] ?? 0;
      for (let j = 0; j < width; j++) {
        term[0] = d * (weight[k * width + j] ?? 0);
        out[at + j] = (out[at + j] ?? 0) + (term[0] ?? 0);
      }
    }
    if (relu) for (let j = 0; j < width; j++) if (!(0 < (out[at + j] ?? 0))) out[at + j] = 0;
  }
}

/** Item parts of one vocabulary, computed on first use and kept (a snapshot's catalog does not change). */
export class ItemParts {
  private readonly own: Float32Array | undefined;
  private readonly computed: Uint8Array;

  constructor(
    private readonly ranker: FactoredRanker, private readonly vocabulary: RankerVocabulary, readonly items: number,
    readonly kernel?: WasmFirstLayer,
  ) {
    if (kernel === undefined) this.own = new Float32Array(items * ranker.width);
    else kernel.setTable(items, ranker.width);
    this.computed = new Uint8Array(items);
  }

  /** [items × width]; rows not yet computed are zero. Pages never touched cost no memory. */
  get table(): Float32Array {
    return this.own ?? (this.kernel as WasmFirstLayer).table();
  }

  /** Computes the parts of those of `items` not yet computed, in one batch. */
  ensure(items: ArrayLike<number>): void {
    let missing: number[] | undefined;
    for (let k = 0; k < items.length; k++) {
      const i = items[k] ?? 0;
      if (!(i >= 0 && i < this.items)) throw new RangeError(`item ${i} is outside this snapshot's 0..${this.items - 1}`);
      if (this.computed[i] !== 0) continue;
      // 2: listed once, even when `items` repeats it.
      this.computed[i] = 2;
      (missing ??= []).push(i);
    }
    if (missing === undefined) return;
    const list = Int32Array.from(missing);
    let parts: Float32Array;
    try {
      parts = this.ranker.computeItemParts(this.vocabulary, list);
    } catch (error) {
      for (const i of list) this.computed[i] = 0;
      throw error;
    }
    const width = this.ranker.width;
    const table = this.table;
    list.forEach((i, k) => {
      table.set(parts.subarray(k * width, (k + 1) * width), i * width);
      this.computed[i] = 1;
    });
  }
}

/** FactoredRanker.rows' wide part: per category its ids' weights summed, per row its categories' sums and its own id's weight. */
class WideSums implements WideGroupSink {
  /** [rows × dim], the sums rounded to float32 as addWide rounds them. */
  readonly out: Float32Array;
  /** Rows summed so far. */
  rows = 0;
  private readonly byCategory: Float64Array;

  /**
   * `itemWeights`: per item of the features' dataset, its item × position weights, NaN until
   * computed here (kept across requests: they depend on the item and position alone).
   */
  constructor(
    private readonly wide: BagSpec | undefined, private readonly dim: number, private readonly items: Int32Array, categories: number,
    private readonly itemWeights: Float32Array, out: Float32Array = new Float32Array(items.length * dim),
  ) {
    if (wide !== undefined && wide.dim !== dim) throw new RangeError(`the wide bag '${wide.name}' has dim ${wide.dim}, the ranker ${dim} outputs`);
    if (out.length !== items.length * dim) throw new RangeError(`the wide sums of ${items.length} rows × ${dim} need ${items.length * dim} floats, got ${out.length}`);
    this.out = out;
    this.byCategory = new Float64Array(wide === undefined ? 0 : categories * dim);
  }

  category(category: number, userCross: number, featureCrosses: Int32Array, from: number, count: number): void {
    const wide = this.wide;
    if (wide === undefined) return;
    const { dim, byCategory } = this;
    const at = category * dim;
    for (let d = 0; d < dim; d++) byCategory[at + d] = this.weight(userCross, d);
    for (let g = from; g < from + count; g++) {
      const id = featureCrosses[g] ?? 0;
      for (let d = 0; d < dim; d++) byCategory[at + d] = (byCategory[at + d] ?? 0) + this.weight(id, d);
    }
  }

  row(itemCross: number, categories: Int32Array, from: number, to: number): void {
    const r = this.rows++;
    if (this.wide === undefined) return;
    const { dim, byCategory, out, itemWeights } = this;
    const at = (this.items[r] ?? 0) * dim;
    if (Number.isNaN(itemWeights[at])) for (let d = 0; d < dim; d++) itemWeights[at + d] = this.weight(itemCross, d);
    for (let d = 0; d < dim; d++) {
      let sum = itemWeights[at + d] ?? 0;
      for (let c = from; c < to; c++) sum += byCategory[(categories[c] ?? 0) * dim + d] ?? 0;
      out[r * dim + d] = sum;
    }
  }

  private weight(id: number, d: number): number {
    const wide = this.wide as BagSpec;
    if (!(id >= 0 && id < wide.rows)) throw outsideWide(wide, id, this.rows, 0);
    return wide.table[id * this.dim + d] ?? 0;
  }
}

/** Per bag of the first layer, its rows of W₁ (and 'dense' for the dense features' rows). */
function firstLayerRows(spec: NetworkSpec): Map<string, Float32Array> {
  const first = spec.layers[0];
  const out = new Map<string, Float32Array>();
  if (first === undefined) return out;
  let row = 0;
  for (const bag of spec.bags) {
    out.set(bag.name, first.weight.slice(row * first.outputs, (row + bag.dim) * first.outputs));
    row += bag.dim;
  }
  out.set('dense', first.weight.slice(row * first.outputs));
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * logits[r] += Σ wide.table[id] over row r's wide ids, straight from their CSR: the sum bag of
 * forward.ts (float32 entries summed in float64, rounded once) with no padding to walk. Serving
 * sums them per category instead (`rows`, WideSums); this is for rows that carry their ids.
 */
function addWide(wide: BagSpec, rows: ScoringRows, logits: Float32Array): void {
  const { dim, table, rows: size } = wide;
  const acc = new Float64Array(dim);
  for (let r = 0; r < rows.length; r++) {
    acc.fill(0);
    const w0 = rows.wideOffsets[r] ?? 0;
    const w1 = rows.wideOffsets[r + 1] ?? 0;
    for (let k = w0; k < w1; k++) {
      const id = rows.wideIds[k] ?? 0;
      if (!(id >= 0 && id < size)) throw outsideWide(wide, id, r, k - w0);
      const base = id * dim;
      for (let d = 0; d < dim; d++) acc[d] = (acc[d] ?? 0) + (table[base + d] ?? 0);
    }
    for (let d = 0; d < dim; d++) logits[r * dim + d] = (logits[r * dim + d] ?? 0) + Math.fround(acc[d] ?? 0);
  }
}

function outsideWide(wide: BagSpec, id: number, row: number, position: number): RangeError {
  return new RangeError(`wide bag '${wide.name}': id ${id} at row ${row}, position ${position} is outside 0..${wide.rows - 1}`);
}
