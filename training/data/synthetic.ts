// The synthetic dataset behind `kestrel generate`: a catalog, users and an event stream with
// planted structure that a trained model must recover, and the ground truth that says what was
// planted. Pure: no `node:` imports; `write.ts` puts it in files.
//
// Planted structure
// * K latent taste clusters. Each item has one main cluster; its categories, tags and text are
//   drawn from that cluster's own vocabulary (with some shared words as noise), so content alone
//   carries the cluster. Each user has a mixture over clusters concentrated on 1–2 of them.
// * Zipf popularity: clusters are Zipf-popular (a user's main cluster is drawn by it), and items
//   are Zipf-popular within their cluster (exponent `zipf`, default 1).
// * Drift: a share of users (`driftShare`) switch their main cluster at a time between 30% and 70%
//   of the window; each cluster's popularity trends up or down over the window.
// * New items: a share (`newItemShare`) is published after `cutoff` (85% of the window); no event
//   touches an item before its publish time, so none touches a new item before the cutoff.
// * Sessions: bursts of events seconds to minutes apart, sessions hours to days apart; slates of
//   impressions (with requestId + position for most) → clicks → add-to-cart → purchases; browsing
//   views; ratings 1–5; likes; skips and dislikes as negative feedback (see `sessions.ts`).
//
// Record shapes (plain; the data-plane API's schema will map onto these):
// * item: `{ id, categories: ['c3', 'c3/s1'], tags: string[], text, attributes: { price, brand },
//   publishedAt }` with `publishedAt` in epoch ms.
// * user: `{ id, attributes: { country, ageGroup, device } }`.
// * event: the `Event` contract of `core/domain/event.ts`.

import { Rng, sampleWeighted, zipfCumulative } from './prng.ts';

export interface SyntheticParams {
  users: number;
  items: number;
  /** Exact number of events. */
  events: number;
  seed: number;
  clusters: number;
  /** Zipf exponent of popularity, within and across clusters. */
  zipf: number;
  /** Share of users whose main cluster changes partway through the window. */
  driftShare: number;
  /** Share of items published after the cutoff. */
  newItemShare: number;
  /** Window start, epoch ms. */
  start: number;
  days: number;
}

export const DEFAULT_PARAMS: Omit<SyntheticParams, 'users' | 'items' | 'events'> = {
  seed: 42,
  clusters: 8,
  zipf: 1,
  driftShare: 0.2,
  newItemShare: 0.05,
  start: Date.UTC(2025, 0, 1),
  days: 90,
};

/** Where in the window (as a fraction) new items start to be published. */
export const CUTOFF_FRACTION = 0.85;
const DAY_MS = 86_400_000;
const CLUSTER_WORDS = 24;
const SHARED_WORDS = 60;
const SUBCATEGORIES = 4;
/** Weight of a user's mixture spread evenly over all clusters (taste outside the main ones). */
const BACKGROUND_TASTE = 0.08;
/** How strongly cluster popularity trends over the window: weight × exp(trend · (f − ½)), trend ∈ [−T, T]. */
const TREND_STRENGTH = 1.5;

export interface SyntheticItem {
  id: string;
  categories: string[];
  tags: string[];
  text: string;
  attributes: { price: number; brand: string };
  publishedAt: number;
}

export interface SyntheticUser {
  id: string;
  attributes: { country: string; ageGroup: string; device: string };
}

/** Everything the event stream samples from, and the truth it plants. Arrays are indexed by item/user number. */
export interface World {
  params: SyntheticParams;
  end: number;
  cutoff: number;
  items: SyntheticItem[];
  itemCluster: Int32Array;
  isNew: Uint8Array;
  /** Per cluster: old item numbers in popularity order, with cumulative Zipf weights. */
  popular: { items: Int32Array; cdf: Float64Array }[];
  /** Per cluster: new item numbers sorted by publish time. */
  fresh: Int32Array[];
  clusterPopularity: Float64Array;
  clusterTrend: Float64Array;
  vocabulary: string[][];
  users: SyntheticUser[];
  /** Per user: main cluster, second cluster (−1 if none) and their weights. */
  main: Int32Array;
  second: Int32Array;
  mainWeight: Float64Array;
  secondWeight: Float64Array;
  /** Per user: the cluster that replaces `main` at `driftAt` (−1 if the user does not drift). */
  driftTo: Int32Array;
  driftAt: Float64Array;
  /** Per user: relative activity (share of the events). */
  activity: Float64Array;
}

const CONSONANTS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'st', 'tr', 'kl'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou'];
const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'BR', 'IN', 'JP', 'ES'];
const AGE_GROUPS = ['18-24', '25-34', '35-44', '45-54', '55+'];
const DEVICES = ['ios', 'android', 'web'];

function word(rng: Rng): string {
  let w = '';
  for (let s = rng.between(2, 3); s > 0; s--) w += rng.pick(CONSONANTS) + rng.pick(VOWELS);
  return w;
}

/** Cluster vocabularies (indexes 0..K-1) and a shared one (index K), all words distinct. */
function vocabularies(rng: Rng, clusters: number): string[][] {
  const seen = new Set<string>();
  const list = (n: number): string[] => {
    const out: string[] = [];
    while (out.length < n) {
      const w = word(rng);
      if (!seen.has(w)) {
        seen.add(w);
        out.push(w);
      }
    }
    return out;
  };
  const vocab: string[][] = [];
  for (let c = 0; c < clusters; c++) vocab.push(list(CLUSTER_WORDS));
  vocab.push(list(SHARED_WORDS));
  return vocab;
}

function validate(p: SyntheticParams): void {
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  };
  positive('users', p.users);
  positive('items', p.items);
  positive('clusters', p.clusters);
  if (!Number.isInteger(p.events) || p.events < 0) throw new RangeError(`events must be a non-negative integer, got ${p.events}`);
  if (p.clusters < 2) throw new RangeError(`clusters must be at least 2, got ${p.clusters}`);
  if (p.items < 2 * p.clusters) throw new RangeError(`items (${p.items}) must be at least 2 × clusters (${p.clusters})`);
  if (!(p.zipf > 0)) throw new RangeError(`zipf must be > 0, got ${p.zipf}`);
  if (!(p.driftShare >= 0 && p.driftShare <= 1)) throw new RangeError(`driftShare must be in [0, 1], got ${p.driftShare}`);
  if (!(p.newItemShare >= 0 && p.newItemShare <= 0.5)) throw new RangeError(`newItemShare must be in [0, 0.5], got ${p.newItemShare}`);
}

function buildItems(p: SyntheticParams, w: Pick<World, 'end' | 'cutoff' | 'clusterPopularity'>, vocab: string[][]) {
  const rng = new Rng(p.seed, 'items');
  const { clusters } = p;
  const shared = vocab[clusters] ?? [];
  const itemCluster = new Int32Array(p.items);
  const isNew = new Uint8Array(p.items);
  const items: SyntheticItem[] = [];
  const newCount = Math.min(Math.floor(p.items * p.newItemShare), p.items - clusters);
  // New items are a random subset of the numbers past the first K (which seed one old item per cluster).
  const order = rng.shuffle(Array.from({ length: p.items - clusters }, (_, i) => i + clusters));
  for (let i = 0; i < newCount; i++) isNew[order[i] ?? 0] = 1;
  const brands = Array.from({ length: clusters * 3 }, (_, b) => `b${b}`);
  for (let i = 0; i < p.items; i++) {
    // Cluster sizes follow cluster popularity softly (square root), so big clusters have more items.
    const c = i < clusters ? i : sampleWeighted(rng, w.clusterPopularity.map(Math.sqrt));
    itemCluster[i] = c;
    const words = vocab[c] ?? [];
    const from = (clusterShare: number) => (rng.chance(clusterShare) ? rng.pick(words) : rng.pick(shared));
    const tags = new Set<string>();
    for (let t = rng.between(2, 4); t > 0; t--) tags.add(rng.pick(words));
    if (rng.chance(0.3)) tags.add(rng.pick(shared));
    const text: string[] = [];
    for (let t = rng.between(6, 12); t > 0; t--) text.push(from(0.6));
    const first = text[0] ?? '';
    text[0] = first.charAt(0).toUpperCase() + first.slice(1);
    const publishedAt = isNew[i]
      ? w.cutoff + Math.floor(rng.next() * (w.end - w.cutoff) * 0.8)
      : p.start - Math.floor(rng.next() * 365 * DAY_MS);
    items.push({
      id: `i${i}`,
      categories: [`c${c}`, `c${c}/s${rng.int(SUBCATEGORIES)}`],
      tags: [...tags],
      text: `${text.join(' ')}.`,
      attributes: {
        price: Math.round(Math.exp(1.5 + rng.next() * 4 + (c % 3) * 0.3) * 100) / 100,
        brand: rng.chance(0.7) ? (brands[c * 3 + rng.int(3)] ?? 'b0') : rng.pick(brands),
      },
      publishedAt,
    });
  }
  const popular: World['popular'] = [];
  const fresh: Int32Array[] = [];
  for (let c = 0; c < clusters; c++) {
    const old: number[] = [];
    const young: number[] = [];
    for (let i = 0; i < p.items; i++) if (itemCluster[i] === c) (isNew[i] ? young : old).push(i);
    rng.shuffle(old); // popularity rank within the cluster is independent of the item number
    popular.push({ items: Int32Array.from(old), cdf: zipfCumulative(old.length, p.zipf) });
    young.sort((a, b) => (items[a]?.publishedAt ?? 0) - (items[b]?.publishedAt ?? 0) || a - b);
    fresh.push(Int32Array.from(young));
  }
  return { items, itemCluster, isNew, popular, fresh };
}

function buildUsers(p: SyntheticParams, w: Pick<World, 'end' | 'clusterPopularity'>) {
  const rng = new Rng(p.seed, 'users');
  const n = p.users;
  const main = new Int32Array(n);
  const second = new Int32Array(n).fill(-1);
  const mainWeight = new Float64Array(n);
  const secondWeight = new Float64Array(n);
  const driftTo = new Int32Array(n).fill(-1);
  const driftAt = new Float64Array(n);
  const activity = new Float64Array(n);
  const users: SyntheticUser[] = [];
  const windowMs = w.end - p.start;
  /** A popularity-weighted cluster outside `not`, or −1 when there is none (K = 2). */
  const other = (not: number[]) => {
    const weights = w.clusterPopularity.map((p, c) => (not.includes(c) ? 0 : p));
    return weights.some((p) => p > 0) ? sampleWeighted(rng, weights) : -1;
  };
  for (let u = 0; u < n; u++) {
    const m = sampleWeighted(rng, w.clusterPopularity);
    main[u] = m;
    const taste = 1 - BACKGROUND_TASTE;
    if (rng.chance(0.5)) {
      second[u] = other([m]);
      const split = 0.6 + rng.next() * 0.25;
      mainWeight[u] = taste * split;
      secondWeight[u] = taste * (1 - split);
    } else {
      mainWeight[u] = taste;
    }
    const to = rng.chance(p.driftShare) ? other([m, second[u] ?? -1]) : -1;
    if (to >= 0) {
      driftTo[u] = to;
      driftAt[u] = p.start + Math.floor((0.3 + rng.next() * 0.4) * windowMs);
    }
    // Heavy-tailed activity (Pareto, α = 1.5), capped so no user needs more sessions than the window holds.
    activity[u] = Math.min((1 - rng.next()) ** (-1 / 1.5), 50);
    users.push({
      id: `u${u}`,
      attributes: { country: rng.pick(COUNTRIES), ageGroup: rng.pick(AGE_GROUPS), device: rng.pick(DEVICES) },
    });
  }
  return { users, main, second, mainWeight, secondWeight, driftTo, driftAt, activity };
}

/** Builds the catalog, the users and their planted tastes. O(items + users) memory; events are streamed. */
export function buildWorld(input: Partial<SyntheticParams> & Pick<SyntheticParams, 'users' | 'items' | 'events'>): World {
  const params: SyntheticParams = { ...DEFAULT_PARAMS, ...input };
  validate(params);
  const rng = new Rng(params.seed, 'clusters');
  const end = params.start + params.days * DAY_MS;
  const cutoff = params.start + Math.floor(CUTOFF_FRACTION * params.days * DAY_MS);
  const clusterPopularity = new Float64Array(params.clusters);
  const rank = rng.shuffle(Array.from({ length: params.clusters }, (_, c) => c));
  rank.forEach((c, r) => (clusterPopularity[c] = 1 / (r + 1) ** params.zipf));
  const clusterTrend = Float64Array.from({ length: params.clusters }, () => (rng.next() * 2 - 1) * TREND_STRENGTH);
  const vocabulary = vocabularies(rng, params.clusters);
  const catalog = buildItems(params, { end, cutoff, clusterPopularity }, vocabulary);
  const people = buildUsers(params, { end, clusterPopularity });
  return { params, end, cutoff, clusterPopularity, clusterTrend, vocabulary, ...catalog, ...people };
}

/** Cluster popularity multiplier at time t (trend over the window). */
export function trendAt(world: World, cluster: number, t: number): number {
  const f = (t - world.params.start) / (world.end - world.params.start);
  return Math.exp((world.clusterTrend[cluster] ?? 0) * (f - 0.5));
}

/** The user's taste over clusters at time t, trends included, into `out` (normalised). */
export function mixtureAt(world: World, u: number, t: number, out: Float64Array): Float64Array {
  const k = world.params.clusters;
  const drifted = (world.driftTo[u] ?? -1) >= 0 && t >= (world.driftAt[u] ?? Infinity);
  const main = drifted ? (world.driftTo[u] ?? 0) : (world.main[u] ?? 0);
  out.fill(BACKGROUND_TASTE / k);
  out[main] = (out[main] ?? 0) + (world.mainWeight[u] ?? 0);
  const second = world.second[u] ?? -1;
  if (second >= 0) out[second] = (out[second] ?? 0) + (world.secondWeight[u] ?? 0);
  let sum = 0;
  for (let c = 0; c < k; c++) {
    out[c] = (out[c] ?? 0) * trendAt(world, c, t);
    sum += out[c] ?? 0;
  }
  for (let c = 0; c < k; c++) out[c] = (out[c] ?? 0) / sum;
  return out;
}

/** What was written, known only once the events are streamed. */
export interface DatasetCounts {
  items: number;
  users: number;
  events: number;
  eventTypes: Record<string, number>;
  eventsFile: string;
  /** Timestamps of the first and last event (null without events). */
  firstEvent: number | null;
  lastEvent: number | null;
}

/** The planted ground truth, for `truth.json`. */
export function truthOf(world: World, counts: DatasetCounts) {
  const { params } = world;
  const users: Record<string, { mixture: Record<string, number>; driftTo?: number; driftAt?: number }> = {};
  for (let u = 0; u < params.users; u++) {
    const mixture: Record<string, number> = {};
    const main = world.main[u] ?? 0;
    mixture[main] = round(world.mainWeight[u] ?? 0);
    const second = world.second[u] ?? -1;
    if (second >= 0) mixture[second] = round(world.secondWeight[u] ?? 0);
    const entry: (typeof users)[string] = { mixture };
    if ((world.driftTo[u] ?? -1) >= 0) {
      entry.driftTo = world.driftTo[u] ?? 0;
      entry.driftAt = world.driftAt[u] ?? 0;
    }
    users[`u${u}`] = entry;
  }
  const itemCluster: Record<string, number> = {};
  world.items.forEach((item, i) => (itemCluster[item.id] = world.itemCluster[i] ?? 0));
  return {
    description: 'Ground truth planted by `kestrel generate`; mixture weights exclude the background taste spread over all clusters.',
    params,
    window: { start: params.start, end: world.end, cutoff: world.cutoff },
    backgroundTaste: BACKGROUND_TASTE,
    clusters: Array.from({ length: params.clusters }, (_, c) => ({
      id: c,
      category: `c${c}`,
      popularity: round(world.clusterPopularity[c] ?? 0),
      trend: round(world.clusterTrend[c] ?? 0),
      vocabulary: world.vocabulary[c] ?? [],
    })),
    itemCluster,
    newItems: world.items.filter((_, i) => world.isNew[i]).map((item) => item.id),
    users,
    driftedUsers: world.users.filter((_, u) => (world.driftTo[u] ?? -1) >= 0).map((user) => user.id),
    counts,
  };
}

export type Truth = ReturnType<typeof truthOf>;

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
