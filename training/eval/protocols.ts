// Train/test protocols over a dataset's positive rows, split per user (stratified), as Microsoft
// Recommenders' `python_stratified_split` / `python_chrono_split` (filter_by="user") do: within a
// user's rows ordered at random (or by time), the row at rank r of n goes to train when
// r / n ≤ 1 − testFraction, so train holds floor((1 − f)·n) rows and test the rest. One change:
// a user whose train share would be empty keeps one row in train (theirs sends a one-rating user
// wholly to test), so nobody is evaluated with no history. ml-100k users have ≥ 20 ratings, so
// the benchmark is unaffected.

import { shuffleInPlace, Xoshiro128 } from '../../core/domain/random.ts';
import { positiveRows } from '../data/dataset.ts';
import type { Dataset } from '../data/dataset.ts';

/** Row numbers into `dataset.interactions`, each list ascending (so in time order). */
export interface Split {
  train: Int32Array;
  test: Int32Array;
}

export interface RandomSplitOptions {
  /** Share of each user's positive rows held out. Default 0.25 (the Recommenders benchmark). */
  testFraction?: number;
  seed: number;
  /** The rows to split (default every positive row), e.g. a training set split again for validation. */
  rows?: Int32Array;
}

export interface TemporalSplitOptions {
  /** Share of each user's latest positive rows held out. Default 0.2. */
  testFraction?: number;
  /** The rows to split (default every positive row). */
  rows?: Int32Array;
}

export const RANDOM_TEST_FRACTION = 0.25;
export const TEMPORAL_TEST_FRACTION = 0.2;

/** Per user, a seeded random `testFraction` of their positive rows as test. Deterministic in `seed`. */
export function randomSplit(dataset: Dataset, options: RandomSplitOptions): Split {
  const rng = new Xoshiro128(options.seed);
  // Users are visited in index order, so one stream serves them all reproducibly.
  return stratify(dataset, options.rows, options.testFraction ?? RANDOM_TEST_FRACTION, (rows) => shuffleInPlace(rows, rng));
}

/** Per user, the latest `testFraction` of their positive rows (rows are in time order) as test. */
export function temporalSplit(dataset: Dataset, options: TemporalSplitOptions = {}): Split {
  return stratify(dataset, options.rows, options.testFraction ?? TEMPORAL_TEST_FRACTION, () => {});
}

/** Rows per user in row order; `order` permutes each user's list in place, then the head is train. */
function stratify(dataset: Dataset, subset: Int32Array | undefined, testFraction: number, order: (rows: Int32Array) => void): Split {
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new RangeError(`testFraction is ${testFraction}; use a share strictly between 0 and 1, such as 0.25`);
  }
  const rows = subset ? Int32Array.from(subset).sort() : positiveRows(dataset);
  const users = dataset.userIds.length;
  const offsets = new Int32Array(users + 1);
  const user = dataset.interactions.user;
  for (const r of rows) {
    const u = (user[r] ?? 0) + 1;
    offsets[u] = (offsets[u] ?? 0) + 1;
  }
  for (let u = 0; u < users; u++) offsets[u + 1] = (offsets[u + 1] ?? 0) + (offsets[u] ?? 0);
  const fill = offsets.slice(0, users);
  const byUser = new Int32Array(rows.length);
  for (const r of rows) {
    const u = user[r] ?? 0;
    const at = fill[u] ?? 0;
    byUser[at] = r;
    fill[u] = at + 1;
  }
  const train: number[] = [];
  const test: number[] = [];
  const keep = 1 - testFraction;
  for (let u = 0; u < users; u++) {
    const list = byUser.subarray(offsets[u] ?? 0, offsets[u + 1] ?? 0);
    if (list.length === 0) continue;
    order(list);
    const cut = Math.max(1, trainCount(list.length, keep));
    for (let i = 0; i < list.length; i++) (i < cut ? train : test).push(list[i] ?? 0);
  }
  return { train: Int32Array.from(train).sort(), test: Int32Array.from(test).sort() };
}

/** The number of ranks r in 1..n with r / n ≤ keep, computed as Recommenders does (in floats). */
function trainCount(n: number, keep: number): number {
  let c = Math.floor(keep * n);
  while (c < n && (c + 1) / n <= keep) c++;
  while (c > 0 && c / n > keep) c--;
  return c;
}
