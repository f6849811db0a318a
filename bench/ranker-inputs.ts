// The ml-100k-shaped Wide&Deep ranker the `rank` suite and bench/gpu-check.ts time: a vocabulary of
// 943 users and 1682 items (+1 out-of-vocabulary row each), 19 genres, 30 user features (age
// buckets, gender, occupation), and candidate inputs with ml-100k's shapes: 1–3 genres per item (one
// with 6, which sets the padding), 3 user features, and per row the wide crosses
// training/features/feature-state.ts makes (user×genre per genre, item×position, user feature×genre).
// Deterministic: every run builds the same network and inputs.
import { DENSE_SIZE } from '../training/features/feature-state.ts';
import type { NetworkInputs } from '../training/models/spec.ts';
import { RANKER_INPUTS } from '../training/ranker/inputs.ts';
import type { RankerVocabulary } from '../training/ranker/inputs.ts';
import { randomMatrix } from './harness.ts';

export const RANKER_USERS = 943;
export const RANKER_ITEMS = 1682;
export const RANKER_GENRES = 19;
export const RANKER_USER_FEATURES = 30;
const FEATURES_PER_USER = 3;
const MAX_GENRES = 6;
export const RANKER_WIDE_BUCKETS = 1 << 18;
export const RANKER_SEED = 42;

/** xorshift32 integers in [0, n), deterministic so runs compare like with like. */
function randomInts(count: number, n: number, seed: number): Int32Array {
  const u = randomMatrix(count, seed);
  return Int32Array.from(u, (x) => Math.min(n - 1, Math.floor((x + 0.5) * n)));
}

function csr(rowLengths: readonly number[], values: Int32Array): { offsets: Int32Array; indices: Int32Array } {
  const offsets = new Int32Array(rowLengths.length + 1);
  rowLengths.forEach((len, r) => {
    offsets[r + 1] = (offsets[r] ?? 0) + len;
  });
  return { offsets, indices: values.subarray(0, offsets[rowLengths.length] ?? 0) };
}

export function rankerVocabulary(): RankerVocabulary {
  const genreCounts = Array.from(randomInts(RANKER_ITEMS, 3, RANKER_SEED), (g, i) => (i === 0 ? MAX_GENRES : g + 1));
  return {
    users: RANKER_USERS,
    items: RANKER_ITEMS,
    categories: RANKER_GENRES,
    userFeatures: RANKER_USER_FEATURES,
    itemCategories: csr(genreCounts, randomInts(RANKER_ITEMS * MAX_GENRES, RANKER_GENRES, RANKER_SEED + 1)),
    userFeatureRows: csr(Array.from({ length: RANKER_USERS }, () => FEATURES_PER_USER), randomInts(RANKER_USERS * FEATURES_PER_USER, RANKER_USER_FEATURES, RANKER_SEED + 2)),
  };
}

/** The inputs of `n` candidate items for one user, padded as InputBuilder pads them. */
export function rankerCandidates(v: RankerVocabulary, n: number): NetworkInputs {
  const user = 17;
  const items = randomInts(n, v.items, RANKER_SEED + 3);
  items[0] = 0; // the item with MAX_GENRES genres
  const wideLength = MAX_GENRES + 1 + FEATURES_PER_USER * MAX_GENRES;
  const bag = (length: number) => ({ ids: new Int32Array(n * length), mask: new Float32Array(n * length), length });
  const bags: NetworkInputs['bags'] = {
    [RANKER_INPUTS.user]: bag(1),
    [RANKER_INPUTS.item]: bag(1),
    [RANKER_INPUTS.categories]: bag(MAX_GENRES),
    [RANKER_INPUTS.userFeatures]: bag(FEATURES_PER_USER),
    [RANKER_INPUTS.wide]: bag(wideLength),
  };
  const hashes = randomInts(n * wideLength, RANKER_WIDE_BUCKETS, RANKER_SEED + 4);
  const put = (name: string, row: number, slot: number, id: number): void => {
    const b = bags[name];
    if (b === undefined) return;
    b.ids[row * b.length + slot] = id;
    b.mask[row * b.length + slot] = 1;
  };
  for (let r = 0; r < n; r++) {
    const item = items[r] ?? 0;
    put(RANKER_INPUTS.user, r, 0, user);
    put(RANKER_INPUTS.item, r, 0, item);
    const c0 = v.itemCategories.offsets[item] ?? 0;
    const genres = (v.itemCategories.offsets[item + 1] ?? 0) - c0;
    for (let k = 0; k < genres; k++) put(RANKER_INPUTS.categories, r, k, v.itemCategories.indices[c0 + k] ?? 0);
    const f0 = v.userFeatureRows.offsets[user] ?? 0;
    for (let k = 0; k < FEATURES_PER_USER; k++) put(RANKER_INPUTS.userFeatures, r, k, v.userFeatureRows.indices[f0 + k] ?? 0);
    const crosses = genres + 1 + FEATURES_PER_USER * genres;
    for (let k = 0; k < crosses; k++) put(RANKER_INPUTS.wide, r, k, hashes[r * wideLength + k] ?? 0);
  }
  return { batch: n, bags, dense: randomMatrix(n * DENSE_SIZE, RANKER_SEED + 5) };
}
