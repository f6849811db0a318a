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
    if (this.external) {
      out[offset + f.externalScore] = this.external(user, item, this.history(user), t);
      out[offset + f.externalScoreMissing] = 0;
    } else {
      out[offset + f.externalScore] = 0;
      out[offset + f.externalScoreMissing] = 1;
    }
    if (this.coVisitation) {
      out[offset + f.coVisitationScore] = this.coVisitation(user, item, this.history(user), t);
      out[offset + f.coVisitationMissing] = 0;
    } else {
      out[offset + f.coVisitationScore] = 0;
      out[offset + f.coVisitationMissing] = 1;
    }
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
    const hasLast = last > -Infinity;
    out[offset + f.sinceCategorySeconds] = hasLast ? Math.log1p((t - last) / 1000) : 0;
    out[offset + f.sinceCategoryMissing] = hasLast ? 0 : 1;
    out[offset + f.categoryAffinity] = activity > 0 ? best / activity : 0;
    out[offset + f.position] = position >= 0 ? Math.log1p(position) : 0;
    out[offset + f.positionMissing] = position >= 0 ? 0 : 1;
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

function highestBit(n: number): number {
  let b = 1;
  while (b * 2 <= n) b *= 2;
  return n > 0 ? b : 0;
}
