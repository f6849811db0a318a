// Point-in-time ranker features: a state that walks the interactions in time order and answers
// "what did we know about this user and item just before t?". Training rows read it before each
// event is applied, serving reads it frozen at the end of the training data, so the ranker sees
// the same feature distributions in both places and never a label's own future (Cheng 2016 trains
// Wide&Deep on impressions with features as logged at serving time; this reconstructs them).
//
// Tie rule: events with the same timestamp form one group. Every row of a group is featurised
// from the state of the events strictly before the group's timestamp, then the whole group is
// applied. So two events at the same millisecond never see each other, whatever their input order.
//
// What updates the state: positive events only (weight > 0). Impressions (weight 0) are exposure,
// explicit negatives (weight < 0) say nothing about popularity or activity.

import { hashString } from '../../core/domain/hash.ts';
import type { Dataset } from '../data/dataset.ts';
import { CROSS_ITEM_POSITION, CROSS_USER_CATEGORY, CROSS_USER_FEATURE_CATEGORY, crossHash, positionBucket } from './crosses.ts';

/** Names of the dense features, in the order of the dense vector. */
export const DENSE_FEATURES = [
  /** The externally supplied score (two-tower dot product); 0 when none. */
  'externalScore',
  /** 1 when no external score was supplied. */
  'externalScoreMissing',
  /** A second retrieval source's score (item-item co-visitation, e.g. item-kNN over the history); 0 when none. */
  'coVisitationScore',
  'coVisitationMissing',
  /** log(1 + positives of the item before t). */
  'itemPopularity',
  /** log(1 + positives of the item before t, each decayed by its age with `recentHalfLifeMs`). */
  'itemRecentPopularity',
  /** log(1 + days since the item was published), 0 when unknown. */
  'itemAgeDays',
  'itemAgeMissing',
  /** log(1 + positives of the user before t). */
  'userActivity',
  /** log(1 + seconds since the user's last positive in any of the item's categories), 0 when none. */
  'sinceCategorySeconds',
  'sinceCategoryMissing',
  /** Max over the item's categories of (user's past positives in the category / user's past positives). */
  'categoryAffinity',
  /** log(1 + slot), 0 when unknown. */
  'position',
  'positionMissing',
] as const;
export type DenseFeatureName = (typeof DENSE_FEATURES)[number];
export const DENSE_SIZE = DENSE_FEATURES.length;
/** Index of a dense feature by name. */
export const DENSE_INDEX: Readonly<Record<DenseFeatureName, number>> = Object.fromEntries(
  DENSE_FEATURES.map((name, i) => [name, i]),
) as Record<DenseFeatureName, number>;

/**
 * An externally supplied score for (user, item) at time t, e.g. the two-tower dot product.
 * `historyBefore` is the user's positive items strictly before t, oldest first: a live view that
 * the callback must not keep. A precomputed score fits as a closure over its array.
 */
export type ExternalScore = (user: number, item: number, historyBefore: readonly number[], t: number) => number;

export interface FeatureOptions {
  /** Half-life of the recent-popularity count. Default 7 days. */
  recentHalfLifeMs?: number;
  /** Hash buckets of the wide crosses. Default 2^18. */
  wideBuckets?: number;
  externalScore?: ExternalScore;
  /** The co-visitation source's score of (user, item), same contract as `externalScore`. */
  coVisitationScore?: ExternalScore;
}

export const DAY_MS = 86_400_000;
export const DEFAULT_RECENT_HALF_LIFE_MS = 7 * DAY_MS;
export const DEFAULT_WIDE_BUCKETS = 1 << 18;

/** Feature state as of a moment: everything strictly before `time` has been applied. */
/** Where `FeatureState.wide` appends ids: an array, or a builder that stores them as they come. */
export interface WideSink {
  push(id: number): unknown;
}

/** A WideSink that knows rows: `endRow` closes the row being built (FeatureState.rows calls it after each). */
export interface WideRowSink extends WideSink {
  endRow(): void;
}

/**
 * The wide ids of `FeatureState.rows` grouped by what they depend on, for a caller that sums their
 * weights instead of listing them (serving: one user's ~1,000 rows share a few categories' ids).
 * A row's ids are, per category of its item, that category's (user × category, then each user
 * feature × category); and its own item × position id. `category` comes once per category a
 * `rows` call meets, before the first row that has it.
 */
export interface WideGroupSink {
  category(category: number, userCross: number, featureCrosses: Int32Array, from: number, count: number): void;
  /** The next row: its item × position id and its categories, `categories[from..to)`. */
  row(itemCross: number, categories: Int32Array, from: number, to: number): void;
}

function isGrouped(sink: WideRowSink | WideGroupSink): sink is WideGroupSink {
  return typeof (sink as Partial<WideGroupSink>).row === 'function';
}

export class FeatureState {
  readonly dataset: Dataset;
  readonly wideBuckets: number;
  private readonly halfLife: number;
  private readonly external: ExternalScore | undefined;
  private readonly coVisitation: ExternalScore | undefined;
  private readonly itemCount: Float64Array;
  private readonly itemRecent: Float64Array;
  private readonly itemRecentAt: Float64Array;
  private readonly userCount: Float64Array;
  /** (user × categories + category) → slot in the two arrays below. */
  private readonly pairSlot = new Map<number, number>();
  private pairCount = new Float64Array(1024);
  private pairLast = new Float64Array(1024);
  private readonly histories: number[][];
  /** user × items + item for every positive applied. */
  private readonly seen = new Set<number>();
  /** Fenwick tree over (positives + 1) per item, for popularity-proportional sampling. */
  private readonly tree: Float64Array;
  private readonly userHash: Uint32Array;
  private readonly itemHash: Uint32Array;
  private readonly categoryHash: Uint32Array;
  private readonly userFeatureHash: Uint32Array;
  /** Bumped by every applied group: the caches of `rows` below are valid for one version and time. */
  private version = 0;
  /** rows(): per item, [popularity, recent popularity, age days, age missing] as of `itemCacheAt`. */
  private itemCache = new Float32Array(0);
  private itemCached = new Uint8Array(0);
  private itemCacheAt = Number.NaN;
  private itemCacheVersion = -1;
  /** rows(): per item, its item × position cross for `positionCacheBucket` (−1: not computed). */
  private positionCross = new Int32Array(0);
  private positionCacheBucket = -1;
  /** rows(): per category, the user's last positive, best count and crosses, valid where `categoryStamp` is the call's stamp. */
  private categoryStamp = new Uint32Array(0);
  private categoryLast = new Float64Array(0);
  private categoryBest = new Float64Array(0);
  private userCategoryCross = new Int32Array(0);
  private featureCategoryCross = new Int32Array(0);
  private stamp = 0;
  /** Next interaction row to apply. */
  private cursor = 0;
  /** Timestamp of the last group applied (−∞ before any). */
  private appliedUpTo = -Infinity;

  constructor(dataset: Dataset, options: FeatureOptions = {}) {
    this.dataset = dataset;
    this.halfLife = options.recentHalfLifeMs ?? DEFAULT_RECENT_HALF_LIFE_MS;
    this.wideBuckets = options.wideBuckets ?? DEFAULT_WIDE_BUCKETS;
    if (!Number.isInteger(this.wideBuckets) || this.wideBuckets < 1) {
      throw new RangeError(`wideBuckets must be a positive integer, got ${this.wideBuckets}`);
    }
    this.external = options.externalScore;
    this.coVisitation = options.coVisitationScore;
    const users = dataset.userIds.length;
    const items = dataset.itemIds.length;
    this.itemCount = new Float64Array(items);
    this.itemRecent = new Float64Array(items);
    this.itemRecentAt = new Float64Array(items);
    this.userCount = new Float64Array(users);
    this.histories = Array.from({ length: users }, () => []);
    this.tree = new Float64Array(items + 1);
    for (let i = 0; i < items; i++) this.treeAdd(i, 1);
    // Crosses hash the ids' names, not their indexes, so a retrained model keeps its buckets.
    this.userHash = Uint32Array.from(dataset.userIds, (id) => hashString(id));
    this.itemHash = Uint32Array.from(dataset.itemIds, (id) => hashString(id));
    this.categoryHash = Uint32Array.from(dataset.categoryNames, (name) => hashString(name));
    this.userFeatureHash = Uint32Array.from(dataset.userFeatureNames, (name) => hashString(name));
  }

  /** Timestamp of the last applied group; features may be asked only for t after it. */
  get appliedBefore(): number {
    return this.appliedUpTo;
  }

  /** Next interaction row not yet applied. */
  get nextRow(): number {
    return this.cursor;
  }

  /** Applies every interaction with timestamp < t. */
  advanceTo(t: number): void {
    const { timestamp, length } = this.dataset.interactions;
    while (this.cursor < length && (timestamp[this.cursor] ?? Infinity) < t) this.applyGroup();
  }

  /** Applies the group of rows sharing the next timestamp; returns the row after it. */
  applyGroup(): number {
    const { timestamp, length } = this.dataset.interactions;
    const t = timestamp[this.cursor] ?? Infinity;
    while (this.cursor < length && timestamp[this.cursor] === t) this.apply(this.cursor++);
    this.appliedUpTo = t;
    this.version++;
    return this.cursor;
  }

  /** End (exclusive) of the group of rows that share row `from`'s timestamp. */
  groupEnd(from: number): number {
    const { timestamp, length } = this.dataset.interactions;
    const t = timestamp[from];
    let to = from;
    while (to < length && timestamp[to] === t) to++;
    return to;
  }

  private apply(r: number): void {
    const { interactions, itemCategories, categoryNames, itemIds } = this.dataset;
    if (!((interactions.weight[r] ?? 0) > 0)) return;
    const u = interactions.user[r] ?? 0;
    const i = interactions.item[r] ?? 0;
    const t = interactions.timestamp[r] ?? 0;
    this.itemCount[i] = (this.itemCount[i] ?? 0) + 1;
    this.itemRecent[i] = this.recentAt(i, t) + 1;
    this.itemRecentAt[i] = t;
    this.userCount[u] = (this.userCount[u] ?? 0) + 1;
    this.histories[u]?.push(i);
    this.seen.add(u * itemIds.length + i);
    this.treeAdd(i, 1);
    const categories = categoryNames.length;
    const { offsets, indices } = itemCategories;
    for (let k = offsets[i] ?? 0, end = offsets[i + 1] ?? 0; k < end; k++) {
      const key = u * categories + (indices[k] ?? 0);
      let slot = this.pairSlot.get(key);
      if (slot === undefined) {
        slot = this.pairSlot.size;
        this.pairSlot.set(key, slot);
        if (slot >= this.pairCount.length) this.growPairs();
      }
      this.pairCount[slot] = (this.pairCount[slot] ?? 0) + 1;
      this.pairLast[slot] = t;
    }
  }

  private growPairs(): void {
    const count = new Float64Array(this.pairCount.length * 2);
    count.set(this.pairCount);
    this.pairCount = count;
    const last = new Float64Array(this.pairLast.length * 2);
    last.set(this.pairLast);
    this.pairLast = last;
  }

  private recentAt(item: number, t: number): number {
    const value = this.itemRecent[item] ?? 0;
    if (value === 0) return 0;
    return value * 2 ** (-(t - (this.itemRecentAt[item] ?? t)) / this.halfLife);
  }

  private checkTime(t: number): void {
    if (!(t > this.appliedUpTo)) {
      throw new RangeError(`features asked at ${t}, but events up to ${this.appliedUpTo} are applied: that would leak the future`);
    }
  }

  /** The user's positive items before the current time, oldest first (a live view). */
  history(user: number): readonly number[] {
    return this.histories[user] ?? [];
  }

  /** Whether the user had a positive on the item before the current time. */
  hasSeen(user: number, item: number): boolean {
    return this.seen.has(user * this.dataset.itemIds.length + item);
  }

  /** Positives of the item before the current time. */
  itemPositives(item: number): number {
    return this.itemCount[item] ?? 0;
  }

  /** Writes the dense features of (user, item) at time t into `out[offset ..]`. */
  dense(user: number, item: number, t: number, position: number, out: Float32Array, offset = 0): void {
    this.checkTime(t);
    const { itemCategories, categoryNames, itemPublishedAt } = this.dataset;
    const f = DENSE_INDEX;
    this.writeScores(user, item, this.history(user), t, out, offset);
    out[offset + f.itemPopularity] = Math.log1p(this.itemCount[item] ?? 0);
    out[offset + f.itemRecentPopularity] = Math.log1p(this.recentAt(item, t));
    const published = itemPublishedAt[item] ?? Number.NaN;
    const known = Number.isFinite(published);
    out[offset + f.itemAgeDays] = known ? Math.log1p(Math.max(0, t - published) / DAY_MS) : 0;
    out[offset + f.itemAgeMissing] = known ? 0 : 1;
    const activity = this.userCount[user] ?? 0;
    out[offset + f.userActivity] = Math.log1p(activity);
    let last = -Infinity;
    let best = 0;
    const categories = categoryNames.length;
    const { offsets, indices } = itemCategories;
    for (let k = offsets[item] ?? 0, end = offsets[item + 1] ?? 0; k < end; k++) {
      const slot = this.pairSlot.get(user * categories + (indices[k] ?? 0));
      if (slot === undefined) continue;
      last = Math.max(last, this.pairLast[slot] ?? -Infinity);
      best = Math.max(best, this.pairCount[slot] ?? 0);
    }
    writeCategory(last, best, activity, t, out, offset);
    out[offset + f.position] = position >= 0 ? Math.log1p(position) : 0;
    out[offset + f.positionMissing] = position >= 0 ? 0 : 1;
  }

  /** The external and co-visitation scores of (user, item) and their missing flags (0 and 1 when absent). */
  private writeScores(user: number, item: number, history: readonly number[], t: number, out: Float32Array, offset: number): void {
    const f = DENSE_INDEX;
    if (this.external) {
      out[offset + f.externalScore] = this.external(user, item, history, t);
      out[offset + f.externalScoreMissing] = 0;
    } else {
      out[offset + f.externalScore] = 0;
      out[offset + f.externalScoreMissing] = 1;
    }
    if (this.coVisitation) {
      out[offset + f.coVisitationScore] = this.coVisitation(user, item, history, t);
      out[offset + f.coVisitationMissing] = 0;
    } else {
      out[offset + f.coVisitationScore] = 0;
      out[offset + f.coVisitationMissing] = 1;
    }
  }

  /**
   * `dense` and `wide` of (user, item) for every item of `items` at time t, rows in that order:
   * the same values (test/training/features checks), for one user's many candidates at once (a
   * serving request, an evaluation): what depends on the user alone is read once, the user's
   * statistics and crosses once per category, and an item's own features once per item while the
   * state stays at t. Dense row k goes to `dense[k · DENSE_SIZE ..]`; each row's wide ids go to
   * `wide`, closed by `wide.endRow()`; or, to a WideGroupSink, grouped by category.
   */
  rows(user: number, items: ArrayLike<number>, t: number, position: number, dense: Float32Array, wide: WideRowSink | WideGroupSink): void {
    this.checkTime(t);
    if (dense.length < items.length * DENSE_SIZE) {
      throw new RangeError(`dense holds ${dense.length} values, ${items.length} rows need ${items.length * DENSE_SIZE}`);
    }
    const { itemCategories, categoryNames, userFeatures } = this.dataset;
    const f = DENSE_INDEX;
    const history = this.history(user);
    const activity = this.userCount[user] ?? 0;
    const userActivity = Math.log1p(activity);
    const positionValue = position >= 0 ? Math.log1p(position) : 0;
    const positionMissing = position >= 0 ? 0 : 1;
    const itemStatic = this.itemStatics(t);
    const positionCross = this.positionCrosses(positionBucket(position));
    const stamp = this.categoryScratch(categoryNames.length);
    const g0 = userFeatures.offsets[user] ?? 0;
    const features = Math.max(0, (userFeatures.offsets[user + 1] ?? 0) - g0);
    if (this.featureCategoryCross.length < categoryNames.length * features) this.featureCategoryCross = new Int32Array(categoryNames.length * features);
    const u = this.userHash[user] ?? 0;
    const { offsets, indices } = itemCategories;
    const grouped = isGrouped(wide) ? wide : undefined;
    const listed = grouped === undefined ? (wide as WideRowSink) : undefined;
    for (let k = 0; k < items.length; k++) {
      const item = items[k] ?? 0;
      const o = k * DENSE_SIZE;
      this.writeScores(user, item, history, t, dense, o);
      if (this.itemCached[item] !== 1) this.cacheItem(item, t);
      dense[o + f.itemPopularity] = itemStatic[item * 4] ?? 0;
      dense[o + f.itemRecentPopularity] = itemStatic[item * 4 + 1] ?? 0;
      dense[o + f.itemAgeDays] = itemStatic[item * 4 + 2] ?? 0;
      dense[o + f.itemAgeMissing] = itemStatic[item * 4 + 3] ?? 0;
      dense[o + f.userActivity] = userActivity;
      let last = -Infinity;
      let best = 0;
      const c0 = offsets[item] ?? 0;
      const c1 = offsets[item + 1] ?? 0;
      for (let c = c0; c < c1; c++) {
        const category = indices[c] ?? 0;
        if (this.categoryStamp[category] !== stamp) {
          this.cacheCategory(user, u, category, g0, features, stamp);
          grouped?.category(category, this.userCategoryCross[category] ?? 0, this.featureCategoryCross, category * features, features);
        }
        last = Math.max(last, this.categoryLast[category] ?? -Infinity);
        best = Math.max(best, this.categoryBest[category] ?? 0);
      }
      writeCategory(last, best, activity, t, dense, o);
      dense[o + f.position] = positionValue;
      dense[o + f.positionMissing] = positionMissing;
      let cross = positionCross[item] ?? -1;
      if (cross < 0) {
        cross = this.cross(CROSS_ITEM_POSITION, this.itemHash[item] ?? 0, this.positionCacheBucket);
        positionCross[item] = cross;
      }
      if (listed === undefined) {
        grouped?.row(cross, indices, c0, c1);
        continue;
      }
      // The order of `wide`: user × category, item × position, then per user feature × category.
      for (let c = c0; c < c1; c++) listed.push(this.userCategoryCross[indices[c] ?? 0] ?? 0);
      listed.push(cross);
      for (let g = 0; g < features; g++) {
        for (let c = c0; c < c1; c++) listed.push(this.featureCategoryCross[(indices[c] ?? 0) * features + g] ?? 0);
      }
      listed.endRow();
    }
  }

  /** The item-only dense features' cache for time t (emptied when t or the state changes). */
  private itemStatics(t: number): Float32Array {
    const items = this.dataset.itemIds.length;
    if (this.itemCache.length !== items * 4) {
      this.itemCache = new Float32Array(items * 4);
      this.itemCached = new Uint8Array(items);
    } else if (this.itemCacheAt !== t || this.itemCacheVersion !== this.version) {
      this.itemCached.fill(0);
    }
    this.itemCacheAt = t;
    this.itemCacheVersion = this.version;
    return this.itemCache;
  }

  /** The expressions of `dense` for the item's own features, stored as its float32 rows are. */
  private cacheItem(item: number, t: number): void {
    const published = this.dataset.itemPublishedAt[item] ?? Number.NaN;
    const known = Number.isFinite(published);
    const at = item * 4;
    this.itemCache[at] = Math.log1p(this.itemCount[item] ?? 0);
    this.itemCache[at + 1] = Math.log1p(this.recentAt(item, t));
    this.itemCache[at + 2] = known ? Math.log1p(Math.max(0, t - published) / DAY_MS) : 0;
    this.itemCache[at + 3] = known ? 0 : 1;
    this.itemCached[item] = 1;
  }

  /** Item × position crosses for one bucket (they depend on no state: kept until the bucket changes). */
  private positionCrosses(bucket: number): Int32Array {
    const items = this.dataset.itemIds.length;
    if (this.positionCross.length !== items) this.positionCross = new Int32Array(items).fill(-1);
    else if (this.positionCacheBucket !== bucket) this.positionCross.fill(-1);
    this.positionCacheBucket = bucket;
    return this.positionCross;
  }

  /** A fresh stamp for the per-category scratch (sized to `categories`), so no clearing per call. */
  private categoryScratch(categories: number): number {
    if (this.categoryStamp.length !== categories) {
      this.categoryStamp = new Uint32Array(categories);
      this.categoryLast = new Float64Array(categories);
      this.categoryBest = new Float64Array(categories);
      this.userCategoryCross = new Int32Array(categories);
      this.stamp = 0;
    }
    this.stamp = this.stamp >= 0xfffffffe ? 1 : this.stamp + 1;
    if (this.stamp === 1) this.categoryStamp.fill(0);
    return this.stamp;
  }

  /** The user's statistics and crosses of one category, as `dense` and `wide` read them. */
  private cacheCategory(user: number, userHash: number, category: number, g0: number, features: number, stamp: number): void {
    const slot = this.pairSlot.get(user * this.dataset.categoryNames.length + category);
    this.categoryLast[category] = slot === undefined ? -Infinity : (this.pairLast[slot] ?? -Infinity);
    this.categoryBest[category] = slot === undefined ? 0 : (this.pairCount[slot] ?? 0);
    const h = this.categoryHash[category] ?? 0;
    this.userCategoryCross[category] = this.cross(CROSS_USER_CATEGORY, userHash, h);
    const { indices } = this.dataset.userFeatures;
    for (let g = 0; g < features; g++) {
      this.featureCategoryCross[category * features + g] = this.cross(CROSS_USER_FEATURE_CATEGORY, this.userFeatureHash[indices[g0 + g] ?? 0] ?? 0, h);
    }
    this.categoryStamp[category] = stamp;
  }

  /**
   * Appends the hashed wide-part ids of (user, item) to `out`: user × category, item × position
   * bucket, user feature × category (Cheng 2016's cross-product transformations). They depend on
   * no history, so they are the same at every time.
   */
  wide(user: number, item: number, position: number, out: WideSink): void {
    const { itemCategories, userFeatures } = this.dataset;
    const u = this.userHash[user] ?? 0;
    const cats = itemCategories.indices;
    const c0 = itemCategories.offsets[item] ?? 0;
    const c1 = itemCategories.offsets[item + 1] ?? 0;
    for (let k = c0; k < c1; k++) out.push(this.cross(CROSS_USER_CATEGORY, u, this.categoryHash[cats[k] ?? 0] ?? 0));
    out.push(this.cross(CROSS_ITEM_POSITION, this.itemHash[item] ?? 0, positionBucket(position)));
    const { offsets, indices } = userFeatures;
    for (let g = offsets[user] ?? 0, end = offsets[user + 1] ?? 0; g < end; g++) {
      const h = this.userFeatureHash[indices[g] ?? 0] ?? 0;
      for (let k = c0; k < c1; k++) out.push(this.cross(CROSS_USER_FEATURE_CATEGORY, h, this.categoryHash[cats[k] ?? 0] ?? 0));
    }
  }

  private cross(kind: number, a: number, b: number): number {
    return crossHash(kind, a, b) % this.wideBuckets;
  }

  /** An item drawn with probability ∝ (its positives before now + 1); `unit` is uniform in [0, 1). */
  sampleByPopularity(unit: number): number {
    const n = this.tree.length - 1;
    let target = unit * this.totalWeight();
    let at = 0;
    for (let step = highestBit(n); step > 0; step >>= 1) {
      const next = at + step;
      if (next <= n && (this.tree[next] ?? 0) <= target) {
        at = next;
        target -= this.tree[next] ?? 0;
      }
    }
    return Math.min(at, n - 1);
  }

  private totalWeight(): number {
    let sum = 0;
    for (let i = this.tree.length - 1; i > 0; i -= i & -i) sum += this.tree[i] ?? 0;
    return sum;
  }

  private treeAdd(item: number, delta: number): void {
    for (let i = item + 1; i < this.tree.length; i += i & -i) this.tree[i] = (this.tree[i] ?? 0) + delta;
  }
}

/** The category features from the user's last positive and best count over the item's categories. */
function writeCategory(last: number, best: number, activity: number, t: number, out: Float32Array, offset: number): void {
  const f = DENSE_INDEX;
  const hasLast = last > -Infinity;
  out[offset + f.sinceCategorySeconds] = hasLast ? Math.log1p((t - last) / 1000) : 0;
  out[offset + f.sinceCategoryMissing] = hasLast ? 0 : 1;
  out[offset + f.categoryAffinity] = activity > 0 ? best / activity : 0;
}

function highestBit(n: number): number {
  let b = 1;
  while (b * 2 <= n) b *= 2;
  return n > 0 ? b : 0;
}
