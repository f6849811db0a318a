// The event stream of the synthetic dataset: every user's sessions, merged into one stream in
// global time order (so per-user order holds too), exactly `events` long.
//
// Memory is O(users): a min-heap of users keyed by their next event time, and the pending events
// of the few sessions in progress. A session is generated when its user comes up in the heap.
//
// A session is either
// * a slate (SLATE_SHARE): SLATE_SIZE impressions shown at once, most carrying requestId +
//   position; clicks on them (likelier for items of the user's clusters, and higher up), some
//   add-to-cart, fewer purchases (value = price), ratings 1–5 (value), and skips or dislikes on
//   items far from the user's taste; or
// * browsing: a few views (value = seconds viewed) of items drawn from the user's taste, with the
//   same follow-ups.

import type { Event } from '../../core/domain/event.ts';
import { Rng, sampleCumulative, sampleWeighted } from './prng.ts';
import { mixtureAt, trendAt } from './synthetic.ts';
import type { World } from './synthetic.ts';

const SLATE_SHARE = 0.75;
/** Share of slates whose impressions carry requestId + position (the rest come from untracked surfaces). */
const TRACKED_SLATE_SHARE = 0.9;
const SLATE_SIZE = 10;
/** Share of a slate's items drawn from the user's taste; the rest from global popularity. */
const SLATE_PERSONAL_SHARE = 0.6;
/** After the cutoff, share of taste draws that go to a new item of the cluster (when one is out). */
const FRESH_SHARE = 0.25;
/** Rough events per session, used only to spread a user's sessions over the window. */
const MEAN_SESSION_EVENTS = 12;
const MIN_SESSION_GAP_MS = 10 * 60_000;

interface Pending {
  events: Omit<Event, 'id'>[];
  next: number;
}

/** Splits `total` events over users in proportion to their activity (largest share first for the remainder). */
function budgets(world: World, total: number): Int32Array {
  const n = world.params.users;
  let sum = 0;
  for (let u = 0; u < n; u++) sum += world.activity[u] ?? 0;
  const out = new Int32Array(n);
  let given = 0;
  for (let u = 0; u < n; u++) {
    out[u] = Math.floor((total * (world.activity[u] ?? 0)) / sum);
    given += out[u] ?? 0;
  }
  for (let u = 0; given < total; u = (u + 1) % n, given++) out[u] = (out[u] ?? 0) + 1;
  return out;
}

/** Binary min-heap of user numbers ordered by (time, user). */
class UserHeap {
  private readonly heap: Int32Array;
  private size = 0;
  constructor(private readonly time: Float64Array) {
    this.heap = new Int32Array(time.length);
  }
  get length(): number {
    return this.size;
  }
  private less(a: number, b: number): boolean {
    const ta = this.time[a] ?? 0;
    const tb = this.time[b] ?? 0;
    return ta < tb || (ta === tb && a < b);
  }
  push(u: number): void {
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = this.heap[parent] ?? 0;
      if (!this.less(u, p)) break;
      this.heap[i] = p;
      i = parent;
    }
    this.heap[i] = u;
  }
  pop(): number {
    const top = this.heap[0] ?? 0;
    const last = this.heap[--this.size] ?? 0;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.size) break;
      const r = l + 1;
      const lu = this.heap[l] ?? 0;
      const ru = this.heap[r] ?? 0;
      const c = r < this.size && this.less(ru, lu) ? r : l;
      const cu = this.heap[c] ?? 0;
      if (!this.less(cu, last)) break;
      this.heap[i] = cu;
      i = c;
    }
    this.heap[i] = last;
    return top;
  }
}

class SessionMaker {
  private readonly mix: Float64Array;
  private readonly clusterWeight: Float64Array;
  constructor(private readonly world: World, private readonly rng: Rng) {
    this.mix = new Float64Array(world.params.clusters);
    this.clusterWeight = new Float64Array(world.params.clusters);
  }

  /** An item of cluster c out at time t: a new one (after the cutoff) or a Zipf-popular old one. */
  private itemOf(c: number, t: number, freshShare: number): number {
    const fresh = this.world.fresh[c];
    if (fresh && fresh.length > 0 && t >= this.world.cutoff && this.rng.chance(freshShare)) {
      let lo = 0;
      let hi = fresh.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((this.world.items[fresh[mid] ?? 0]?.publishedAt ?? Infinity) <= t) lo = mid + 1;
        else hi = mid;
      }
      if (lo > 0) return fresh[this.rng.int(lo)] ?? 0;
    }
    const pop = this.world.popular[c];
    if (!pop) throw new Error(`cluster ${c} has no items`);
    return pop.items[sampleCumulative(this.rng, pop.cdf)] ?? 0;
  }

  private tasteItem(t: number): number {
    return this.itemOf(sampleWeighted(this.rng, this.mix), t, FRESH_SHARE);
  }

  private popularItem(t: number): number {
    const { world } = this;
    for (let c = 0; c < world.params.clusters; c++) {
      this.clusterWeight[c] = (world.clusterPopularity[c] ?? 0) * trendAt(world, c, t);
    }
    return this.itemOf(sampleWeighted(this.rng, this.clusterWeight), t, FRESH_SHARE / 2);
  }

  private affinity(item: number): number {
    return this.mix[this.world.itemCluster[item] ?? 0] ?? 0;
  }

  /** Rating 1–5, high for items of the user's clusters, with noise. */
  private rating(a: number): number {
    const noise = (this.rng.next() + this.rng.next() - 1) * 1.5;
    return Math.max(1, Math.min(5, Math.round(1 + 4 * Math.min(1, a / 0.5) + noise)));
  }

  /** Follow-ups of a positive interaction with `item` at `clock`: cart, purchase, rating, like. */
  private followUps(out: Omit<Event, 'id'>[], base: Omit<Event, 'id' | 'type' | 'timestamp'>, item: number, clock: number): number {
    const rng = this.rng;
    const a = this.affinity(item);
    const at = (lo: number, hi: number) => (clock += rng.between(lo, hi) * 1000 + rng.int(1000));
    if (rng.chance(0.25)) {
      out.push({ ...base, type: 'add-to-cart', timestamp: at(20, 300) });
      if (rng.chance(0.4)) {
        out.push({ ...base, type: 'purchase', value: this.world.items[item]?.attributes.price ?? 0, timestamp: at(30, 600) });
      }
    }
    if (rng.chance(0.15)) out.push({ ...base, type: 'rating', value: this.rating(a), timestamp: at(5, 60) });
    else if (a > 0.3 && rng.chance(0.1)) out.push({ ...base, type: 'like', timestamp: at(2, 30) });
    return clock;
  }

  /** The events of one session of user u starting at t, in time order (ids not yet assigned). */
  make(u: number, t: number, sessionNo: number): Omit<Event, 'id'>[] {
    const { world, rng } = this;
    mixtureAt(world, u, t, this.mix);
    const userId = world.users[u]?.id ?? `u${u}`;
    const out: Omit<Event, 'id'>[] = [];
    let clock = t;
    if (rng.chance(SLATE_SHARE)) {
      const tracked = rng.chance(TRACKED_SLATE_SHARE);
      const requestId = `${userId}-r${sessionNo}`;
      const shown: number[] = [];
      for (let pos = 0; pos < SLATE_SIZE; pos++) {
        let item = 0;
        for (let tries = 0; tries < 4; tries++) {
          item = rng.chance(SLATE_PERSONAL_SHARE) ? this.tasteItem(t) : this.popularItem(t);
          if (!shown.includes(item)) break;
        }
        if (shown.includes(item)) continue;
        shown.push(item);
      }
      const slot = (pos: number) => (tracked ? { requestId, position: pos } : {});
      shown.forEach((item, pos) => {
        out.push({ type: 'impression', userId, itemId: world.items[item]?.id ?? '', timestamp: t, ...slot(pos), context: { surface: 'home' } });
      });
      shown.forEach((item, pos) => {
        const a = this.affinity(item);
        const base = { userId, itemId: world.items[item]?.id ?? '', ...slot(pos) };
        if (rng.chance(Math.min(0.9, 0.03 + 0.7 * a) * (1 - 0.03 * pos))) {
          clock += rng.between(3, 90) * 1000 + rng.int(1000);
          out.push({ ...base, type: 'click', timestamp: clock });
          clock = this.followUps(out, base, item, clock);
        } else if (rng.chance(0.12 * (1 - a))) {
          clock += rng.between(1, 10) * 1000 + rng.int(1000);
          out.push({ ...base, type: rng.chance(0.25) ? 'dislike' : 'skip', timestamp: clock });
        }
      });
    } else {
      for (let n = rng.between(2, 6); n > 0; n--) {
        const item = this.tasteItem(clock);
        const base = { userId, itemId: world.items[item]?.id ?? '' };
        clock += rng.between(10, 300) * 1000 + rng.int(1000);
        out.push({ ...base, type: 'view', value: rng.between(5, 600), timestamp: clock });
        clock = this.followUps(out, base, item, clock);
      }
    }
    return out;
  }
}

/** Puts the Event contract's fields in its documented order, leaving out absent ones. */
function withId(id: string, e: Omit<Event, 'id'>): Event {
  return {
    id, type: e.type, userId: e.userId, itemId: e.itemId,
    ...(e.value !== undefined ? { value: e.value } : {}),
    timestamp: e.timestamp,
    ...(e.requestId !== undefined ? { requestId: e.requestId } : {}),
    ...(e.position !== undefined ? { position: e.position } : {}),
    ...(e.context !== undefined ? { context: e.context } : {}),
  };
}

/** Exactly `world.params.events` events, in ascending timestamp order (ties: by user number). */
export function* syntheticEvents(world: World): Generator<Event> {
  const { params, end } = world;
  const rng = new Rng(params.seed, 'events');
  const maker = new SessionMaker(world, rng);
  const budget = budgets(world, params.events);
  const nextAt = new Float64Array(params.users);
  const sessionNo = new Int32Array(params.users);
  const pending = new Map<number, Pending>();
  const heap = new UserHeap(nextAt);
  const windowMs = end - params.start;
  const sessionsLeft = (u: number) => Math.ceil((budget[u] ?? 0) / MEAN_SESSION_EVENTS);
  for (let u = 0; u < params.users; u++) {
    if ((budget[u] ?? 0) <= 0) continue;
    const spread = Math.min(0.2 * windowMs, windowMs / (sessionsLeft(u) + 1));
    nextAt[u] = params.start + Math.floor(rng.next() * spread);
    heap.push(u);
  }
  let seq = 0;
  while (heap.length > 0) {
    const u = heap.pop();
    const session = pending.get(u);
    if (!session) {
      const made = maker.make(u, nextAt[u] ?? 0, sessionNo[u] ?? 0);
      sessionNo[u] = (sessionNo[u] ?? 0) + 1;
      const events = made.slice(0, budget[u] ?? 0);
      budget[u] = (budget[u] ?? 0) - events.length;
      pending.set(u, { events, next: 0 });
      // A session may open with a delay (browsing starts with a view, not at the session start):
      // the user comes back up when its first event is due.
      nextAt[u] = events[0]?.timestamp ?? nextAt[u] ?? 0;
      heap.push(u);
      continue;
    }
    const event = session.events[session.next++];
    if (event) yield withId(`e${seq++}`, event);
    const following = session.events[session.next];
    if (following) {
      nextAt[u] = following.timestamp;
      heap.push(u);
      continue;
    }
    pending.delete(u);
    if ((budget[u] ?? 0) <= 0) continue;
    const last = event?.timestamp ?? nextAt[u] ?? 0;
    const gap = ((end - last) / (sessionsLeft(u) + 1)) * (0.5 + rng.next());
    nextAt[u] = last + Math.max(MIN_SESSION_GAP_MS, Math.floor(gap));
    heap.push(u);
  }
}
