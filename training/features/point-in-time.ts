// Point-in-time feature rows: walk the interactions in time order through a `FeatureState`,
// featurise each group of rows from the state as of just before its timestamp, then apply the
// group (the tie rule of feature-state.ts); or freeze the state at a time for serving.

import type { Dataset } from '../data/dataset.ts';
import { DENSE_SIZE, FeatureState } from './feature-state.ts';
import type { FeatureOptions, WideGroupSink, WideRowSink } from './feature-state.ts';

/** Dense features [rows × DENSE_SIZE] and wide ids (CSR) of some rows. */
export interface FeatureRows {
  length: number;
  dense: Float32Array;
  wideOffsets: Int32Array;
  wideIds: Int32Array;
}

/** A growable list of wide ids with row offsets; FeatureState.wide appends to it directly. */
export class WideBuilder implements WideRowSink {
  private ids: Int32Array;
  private size = 0;
  readonly offsets: number[] = [0];

  /** `rows`: how many rows are coming, when known (room for 16 ids each, so no regrowth for most). */
  constructor(rows = 64) {
    this.ids = new Int32Array(Math.max(1024, rows * 16));
  }

  /** WideSink: appends one id to the row being built (the row ends when `pushRow` returns). */
  push(id: number): void {
    if (this.size === this.ids.length) {
      const grown = new Int32Array(this.ids.length * 2);
      grown.set(this.ids);
      this.ids = grown;
    }
    this.ids[this.size++] = id;
  }

  /** WideRowSink: closes the row being built. */
  endRow(): void {
    this.offsets.push(this.size);
  }

  /** Appends the row of (user, item, position). No array per row: ids go straight into the buffer. */
  pushRow(state: FeatureState, user: number, item: number, position: number): void {
    state.wide(user, item, position, this);
    this.endRow();
  }

  build(): { wideOffsets: Int32Array; wideIds: Int32Array } {
    return { wideOffsets: Int32Array.from(this.offsets), wideIds: this.ids.slice(0, this.size) };
  }
}

/** Features of every interaction row (its user, item and position) as of just before its timestamp. */
export function pointInTimeFeatures(dataset: Dataset, options: FeatureOptions = {}): FeatureRows {
  const { interactions } = dataset;
  const n = interactions.length;
  const state = new FeatureState(dataset, options);
  const dense = new Float32Array(n * DENSE_SIZE);
  const wide = new WideBuilder();
  while (state.nextRow < n) {
    const from = state.nextRow;
    const to = state.groupEnd(from);
    const t = interactions.timestamp[from] ?? 0;
    for (let r = from; r < to; r++) {
      const u = interactions.user[r] ?? 0;
      const i = interactions.item[r] ?? 0;
      const p = interactions.position[r] ?? -1;
      state.dense(u, i, t, p, dense, r * DENSE_SIZE);
      wide.pushRow(state, u, i, p);
    }
    state.applyGroup();
  }
  return { length: n, dense, ...wide.build() };
}

/**
 * The state frozen at time `at` (default: just after the last interaction): features of any
 * (user, item) as serving would compute them then. Position defaults to unknown, which is what a
 * candidate has before it is ranked.
 */
export function freezeFeatures(dataset: Dataset, options: FeatureOptions = {}, at?: number): FrozenFeatures {
  const { timestamp, length } = dataset.interactions;
  const time = at ?? (length > 0 ? (timestamp[length - 1] ?? 0) + 1 : 0);
  const state = new FeatureState(dataset, options);
  state.advanceTo(time);
  return {
    at: time,
    state,
    dense: (user, item, out, offset = 0, position = -1) => state.dense(user, item, time, position, out, offset),
    wide: (user, item, out, position = -1) => state.wide(user, item, position, out),
    rows: (user, items, dense, wide, position = -1) => state.rows(user, items, time, position, dense, wide),
  };
}

export interface FrozenFeatures {
  at: number;
  state: FeatureState;
  dense(user: number, item: number, out: Float32Array, offset?: number, position?: number): void;
  wide(user: number, item: number, out: number[], position?: number): void;
  /** `dense` and `wide` of one user with each of `items` (FeatureState.rows): dense row k at k · DENSE_SIZE. */
  rows(user: number, items: ArrayLike<number>, dense: Float32Array, wide: WideRowSink | WideGroupSink, position?: number): void;
}
