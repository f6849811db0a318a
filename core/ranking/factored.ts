// The Wide&Deep ranker's input split by what it depends on, for serving. A request ranks ~1,000
// items for one user. The first layer's input is the pooled embedding bags, then the dense
// features, and each bag depends on the user alone (user id, user features) or on the item alone
// (item id, categories), so
//
//   * the user's bags are pooled once per request,
//   * each item's bags once per catalog snapshot (kept, filled as items come up),
//   * and per row only three copies are left: user part, item part, dense features (done by the
//     WASM `gatherRows` kernel when the parts live in its memory, by TypeScript loops otherwise).
//
// The network the Ranker adapters run takes that row as one dense input: the first layer's weight
// rows reordered to match it, everything else unchanged. So every adapter (onnx, wasm, webgpu) runs
// it as it is, and no row pools an embedding bag: on ml-100k that pooling was ~0.5 ms of the
// ranker's ~1.3 ms per request. The wide part is summed by `score` from the rows' wide ids (no
// padded bag). The pooled values are the ones forward.ts computes, so the scores equal the whole
// network's up to the order of the first layer's sum (test/kernels/ranker-parity.test.ts holds
// them to the reference forward pass on every adapter).
import { DENSE_SIZE } from '../../training/features/feature-state.ts';
import type { WideGroupSink } from '../../training/features/feature-state.ts';
import type { FrozenFeatures } from '../../training/features/point-in-time.ts';
import { checkNetworkSpec, networkInput, networkOutputWidth } from '../../training/models/forward.ts';
import type { BagSpec, NetworkInputs, NetworkSpec } from '../../training/models/spec.ts';
import { InputBuilder, RANKER_INPUTS } from '../../training/ranker/inputs.ts';
import type { RankerVocabulary, ScoringRows } from '../../training/ranker/inputs.ts';
import type { WasmRowGather } from '../../wasm/index.ts';
import type { Ranker } from './ranker.ts';

/** The bags of ranker.onnx that depend on the user alone; every other bag depends on the item alone. */
export const USER_BAGS: readonly string[] = [RANKER_INPUTS.user, RANKER_INPUTS.userFeatures];
/** The input of the factored network: [user part | item part | dense features] per row. */
export const FACTORED_INPUT = 'user_item_dense';
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

/** The ranker with its input split (see the header); one per model version. */
export class FactoredRanker {
  /** What the Ranker adapters run: input FACTORED_INPUT [batch × width]. */
  readonly spec: NetworkSpec;
  /** Pooled user bags per row. */
  readonly userWidth: number;
  /** Pooled item bags per row. */
  readonly itemWidth: number;
  readonly width: number;
  /** Logit columns per row. */
  readonly outputs: number;
  private readonly userBags: NetworkSpec;
  private readonly itemBags: NetworkSpec;
  private readonly wide: BagSpec | undefined;

  constructor(ranker: NetworkSpec) {
    checkNetworkSpec(ranker);
    const first = ranker.layers[0];
    if (first === undefined) throw new RangeError('the ranker has no dense layer to factor');
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
    this.width = this.userWidth + this.itemWidth + DENSE_SIZE;
    const rows = firstLayerRows(ranker);
    const weight = concat([...user, ...item].map((b) => rows.get(b.name) ?? new Float32Array(0)).concat(rows.get('dense') ?? new Float32Array(0)));
    this.spec = {
      bags: [],
      dense: { name: FACTORED_INPUT, size: this.width },
      layers: [{ ...first, inputs: this.width, weight }, ...ranker.layers.slice(1)],
      output: 'none',
      outputName: ranker.outputName,
    };
    checkNetworkSpec(this.spec);
    this.wide = ranker.wide;
    this.outputs = networkOutputWidth(ranker);
  }

  /**
   * The logits [rows.length × outputs] of one user's rows on `ranker` (an adapter opened on
   * `this.spec`): the deep part there, then the wide part summed here from the rows' wide ids.
   */
  async score(ranker: Ranker, rows: ScoringRows | SummedRows, parts: ItemParts, userPart: Float32Array): Promise<Float32Array> {
    const logits = await ranker.score(this.inputs(rows, parts, userPart));
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
  rows(features: FrozenFeatures, user: number, items: Int32Array, position = -1): SummedRows {
    const n = items.length;
    const dense = new Float32Array(n * DENSE_SIZE);
    const sums = new WideSums(this.wide, this.outputs, items, features.state.dataset.categoryNames.length, this.itemWideOf(features, position));
    features.rows(user, items, dense, sums, position);
    if (sums.rows !== n) throw new Error(`the features gave ${sums.rows} wide rows for ${n} items`);
    return {
      length: n, user: new Int32Array(n).fill(user), item: items, dense,
      wideOffsets: new Int32Array(n + 1), wideIds: new Int32Array(0), wideSums: sums.out,
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
   * A cache of item parts for one vocabulary (a snapshot's): `items` rows, filled on first use.
   * With `gather` (a fresh WasmRowGather), the parts live in its memory and `inputs` assembles
   * rows with its kernel instead of TypeScript loops (~0.3 ms per 1,000 rows in the serving profile).
   */
  itemParts(vocabulary: RankerVocabulary, items: number, gather?: WasmRowGather): ItemParts {
    return new ItemParts(this, vocabulary, items, gather);
  }

  /** The pooled user bags of `user` (an index of the vocabulary; unknown ones take the OOV row): [userWidth]. */
  userPart(vocabulary: RankerVocabulary, user: number): Float32Array {
    const rows: ScoringRows = {
      length: 1, user: Int32Array.of(user), item: Int32Array.of(vocabulary.items), dense: new Float32Array(DENSE_SIZE),
      wideOffsets: new Int32Array(2), wideIds: new Int32Array(0),
    };
    return networkInput(this.userBags, new InputBuilder(vocabulary).build(rows, [0], 0, 1));
  }

  /** Pooled item bags [items.length × itemWidth] computed now (ItemParts caches them). */
  computeItemParts(vocabulary: RankerVocabulary, items: Int32Array): Float32Array {
    const out = new Float32Array(items.length * this.itemWidth);
    const builder = new InputBuilder(vocabulary);
    for (let from = 0; from < items.length; from += ITEM_BATCH) {
      const chunk = items.subarray(from, Math.min(items.length, from + ITEM_BATCH));
      const rows: ScoringRows = {
        length: chunk.length, user: new Int32Array(chunk.length).fill(vocabulary.users), item: chunk,
        dense: new Float32Array(chunk.length * DENSE_SIZE), wideOffsets: new Int32Array(chunk.length + 1), wideIds: new Int32Array(0),
      };
      const indices = Int32Array.from({ length: chunk.length }, (_, k) => k);
      out.set(networkInput(this.itemBags, builder.build(rows, indices, 0, chunk.length)), from * this.itemWidth);
    }
    return out;
  }

  /**
   * The factored network's inputs for `rows`, which must all be one user's: per row the user part,
   * the row item's part, then its dense features (`score` adds the wide part after).
   */
  inputs(rows: ScoringRows, parts: ItemParts, userPart: Float32Array): NetworkInputs {
    const n = rows.length;
    const user = rows.user[0] ?? 0;
    for (let r = 1; r < n; r++) {
      if (rows.user[r] !== user) throw new RangeError(`factored rows are one user's: row ${r} has user ${rows.user[r]}, row 0 has ${user}`);
    }
    const { userWidth, itemWidth, width } = this;
    if (userPart.length !== userWidth) throw new RangeError(`the user part has ${userPart.length} values, expected ${userWidth}`);
    parts.ensure(rows.item);
    const x = new Float32Array(n * width);
    if (parts.gather !== undefined) {
      parts.gather.gather(userPart, rows.item, rows.dense, DENSE_SIZE, x);
      return { batch: n, bags: {}, dense: x };
    }
    const table = parts.table;
    const dense = rows.dense;
    const denseAt = userWidth + itemWidth;
    for (let r = 0; r < n; r++) {
      const at = r * width;
      for (let k = 0; k < userWidth; k++) x[at + k] = userPart[k] ?? 0;
      const from = (rows.item[r] ?? 0) * itemWidth;
      for (let k = 0; k < itemWidth; k++) x[at + userWidth + k] = table[from + k] ?? 0;
      const d = r * DENSE_SIZE;
      for (let k = 0; k < DENSE_SIZE; k++) x[at + denseAt + k] = dense[d + k] ?? 0;
    }
    return { batch: n, bags: {}, dense: x };
  }
}

/** Item parts of one vocabulary, computed on first use and kept (a snapshot's catalog does not change). */
export class ItemParts {
  private readonly own: Float32Array | undefined;
  private readonly computed: Uint8Array;

  constructor(
    private readonly ranker: FactoredRanker, private readonly vocabulary: RankerVocabulary, readonly items: number,
    readonly gather?: WasmRowGather,
  ) {
    if (gather === undefined) this.own = new Float32Array(items * ranker.itemWidth);
    else gather.setTable(items, ranker.itemWidth);
    this.computed = new Uint8Array(items);
  }

  /** [items × itemWidth]; rows not yet computed are zero. Pages never touched cost no memory. */
  get table(): Float32Array {
    return this.own ?? (this.gather as WasmRowGather).table();
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
    const width = this.ranker.itemWidth;
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
    private readonly itemWeights: Float32Array,
  ) {
    if (wide !== undefined && wide.dim !== dim) throw new RangeError(`the wide bag '${wide.name}' has dim ${wide.dim}, the ranker ${dim} outputs`);
    this.out = new Float32Array(items.length * dim);
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
 * forward.ts (float32 entries summed in float64, rounded once) with no padding to walk.
 */
function addWide(wide: BagSpec, rows: ScoringRows, logits: Float32Array): void {
  const { dim, table, rows: size } = wide;
  if (dim === 2) {
    addWide2(wide, rows, logits);
    return;
  }
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

/** addWide for two logits (the Wide&Deep ranker's click and engagement): the sums in locals. */
function addWide2(wide: BagSpec, rows: ScoringRows, logits: Float32Array): void {
  const { table, rows: size } = wide;
  const { wideOffsets, wideIds } = rows;
  for (let r = 0; r < rows.length; r++) {
    let a = 0;
    let b = 0;
    const w1 = wideOffsets[r + 1] ?? 0;
    for (let k = wideOffsets[r] ?? 0; k < w1; k++) {
      const id = wideIds[k] ?? 0;
      if (!(id >= 0 && id < size)) throw outsideWide(wide, id, r, k - (wideOffsets[r] ?? 0));
      a += table[2 * id] ?? 0;
      b += table[2 * id + 1] ?? 0;
    }
    logits[2 * r] = (logits[2 * r] ?? 0) + Math.fround(a);
    logits[2 * r + 1] = (logits[2 * r + 1] ?? 0) + Math.fround(b);
  }
}

function outsideWide(wide: BagSpec, id: number, row: number, position: number): RangeError {
  return new RangeError(`wide bag '${wide.name}': id ${id} at row ${row}, position ${position} is outside 0..${wide.rows - 1}`);
}
