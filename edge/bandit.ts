// The edge's exploration state (ARCHITECTURE.md: "edge /v1/events ──► session + bandit state (DO)"):
// per-item impressions and clicks, the counts behind the Beta posteriors that Thompson sampling
// (Chapelle & Li 2011) draws from in the re-rank (core/domain/rerank.ts, step 3).
//
// Sharding: item → shard hashString(itemId) mod BANDIT_SHARDS (default 16), one BanditShard object
// per shard, named `bandit/<shards>/<i>`. One POST /v1/events makes one call per shard it touches;
// one recommendation reads the shards its slate touches, in parallel. Writes spread over the
// shards; reads are cut by a per-isolate cache (BANDIT_CACHE_MS, 5 s): a hit reads no shard
// while its slate's counts are fresh, and past that the read has BANDIT_TIMEOUT_MS (100 ms) before
// the re-rank goes on without it; the read then finishes in the background (waitUntil) and fills
// the cache for the next request. Changing BANDIT_SHARDS names new objects, so the counts start
// over (rather than half the items silently losing theirs).
//
// What counts: `impression` events are exposures, `click` events rewards. Other positive types
// (view, add-to-cart, purchase, like) follow a click on the same item, so counting them too would
// count one engagement twice. A click without a recorded impression still counts; the posterior
// keeps β ≥ β₀ by counting non-clicks as max(0, impressions − clicks).
//
// Posterior of an item: Beta(α₀ + clicks, β₀ + max(0, impressions − clicks)). The prior is the
// catalogue's base click rate (README, `bandit` bench: Thompson sampling beats ε-greedy with a
// Beta(1, 30)-like prior and loses to it with a flat one): α₀ = 1 and β₀ = α₀(1 − r)/r, where r is
// the pooled click rate of the shards the request read, shrunk toward DEFAULT_BASE_RATE (1/31, i.e.
// Beta(1, 30)) by BASE_RATE_PSEUDO_IMPRESSIONS, so a young deployment starts at Beta(1, 30). Items
// hash uniformly over the shards, so any set of shards is a fair sample of the catalogue.
//
// Decay: counts halve every HALF_LIFE_MS (7 days). Click rates drift (novelty wears off, seasons
// turn), and a decayed count bounds a posterior's confidence, so an item's estimate keeps moving.
// Decay applies in whole DECAY_STEP_MS (hours) since the time the stored counts stand for, so reads
// between two steps agree exactly (a request and its replay from the request id see the same
// posteriors); a write moves that time on by the whole steps it applied, keeping the remainder.
// Items untouched for FORGET_AFTER_MS (10 half-lives, < 0.1 % of their counts left) are deleted.
//
// Idempotency: a shard remembers the event ids it counted for DEDUPE_WINDOW_MS (1 h), so a client
// retry of a POST /v1/events is not counted twice (the core dedupes on the id the same way).
import { DurableObject } from 'cloudflare:workers';
import type { Event } from '../core/domain/event.ts';
import { hashString } from '../core/domain/hash.ts';
import { msVar } from './vars.ts';

/** Shards when BANDIT_SHARDS is unset or not a whole number in [1, MAX_SHARDS]. */
export const DEFAULT_SHARDS = 16;
export const MAX_SHARDS = 1024;
/** How long a recommendation waits for the shards when BANDIT_TIMEOUT_MS is unset. */
export const DEFAULT_READ_TIMEOUT_MS = 100;
/** How long an isolate reuses counts it read, when BANDIT_CACHE_MS is unset. */
export const DEFAULT_CACHE_MS = 5000;
/** Deadline of the shard updates inside POST /v1/events (the session forward has 2 s too). */
const WRITE_TIMEOUT_MS = 2000;
/** Items whose counts one isolate keeps; the least recently read go first. */
const MAX_CACHED_ITEMS = 100_000;
/** Seed of the shard hash: apart from the A/B hash, so shards and arms are independent. */
const SHARD_SEED = 0x6b657374;
/** Bound parameters per SQL statement (Durable Object SQLite allows 100). */
const SQL_PARAMS = 100;

export const HALF_LIFE_MS = 7 * 86_400_000;
export const DECAY_STEP_MS = 3_600_000;
export const FORGET_AFTER_MS = 10 * HALF_LIFE_MS;
export const DEDUPE_WINDOW_MS = 3_600_000;

/** Pseudo-clicks of the prior (Beta α₀). */
export const PRIOR_ALPHA = 1;
/** The catalogue's click rate before there is data: Beta(1, 30), the README bench's prior. */
export const DEFAULT_BASE_RATE = 1 / 31;
/** Weight of DEFAULT_BASE_RATE in the base-rate estimate, in impressions. */
export const BASE_RATE_PSEUDO_IMPRESSIONS = 1000;
/** Bounds of β₀: a rate near 0 or 1 must not make the prior absurdly strong or weak. */
const MIN_PRIOR_BETA = 1;
const MAX_PRIOR_BETA = 10_000;

/** Event types the bandit counts: an exposure, and the reward it looks for. */
export const IMPRESSION_TYPE = 'impression';
export const CLICK_TYPE = 'click';

export interface ArmCounts {
  impressions: number;
  clicks: number;
}

export interface BetaParams {
  alpha: number;
  beta: number;
}

/** One counted event, as a shard gets it. */
export interface Outcome {
  /** The event id, for the shard's dedupe window. */
  id: string;
  item: string;
  click: boolean;
}

export interface RecordReport {
  counted: number;
  /** Outcomes whose event id the shard had already counted. */
  duplicate: number;
}

/** Decayed counts of the asked items (in their order) and of the whole shard. */
export interface ShardCounts {
  impressions: number[];
  clicks: number[];
  total: ArmCounts;
}

/** Counts as of time `at` (epoch ms). */
export interface StoredCounts extends ArmCounts {
  at: number;
}

/** The counts as of `now`, halved per HALF_LIFE_MS over the whole DECAY_STEP_MS since `at`. */
export function decayed(stored: StoredCounts | undefined, now: number): StoredCounts {
  if (stored === undefined) return { impressions: 0, clicks: 0, at: now };
  const elapsed = Math.floor(Math.max(0, now - stored.at) / DECAY_STEP_MS) * DECAY_STEP_MS;
  const factor = 0.5 ** (elapsed / HALF_LIFE_MS);
  return { impressions: stored.impressions * factor, clicks: stored.clicks * factor, at: stored.at + elapsed };
}

/** The prior at the base rate of `total`, shrunk toward DEFAULT_BASE_RATE (see the top of the file). */
export function basePrior(total: ArmCounts): BetaParams {
  const rate = (total.clicks + DEFAULT_BASE_RATE * BASE_RATE_PSEUDO_IMPRESSIONS) / (total.impressions + BASE_RATE_PSEUDO_IMPRESSIONS);
  const beta = rate > 0 ? PRIOR_ALPHA * (1 - rate) / rate : MAX_PRIOR_BETA;
  return { alpha: PRIOR_ALPHA, beta: Math.min(MAX_PRIOR_BETA, Math.max(MIN_PRIOR_BETA, beta)) };
}

/** The prior with no data: Beta(1, 30). */
export const DEFAULT_PRIOR: BetaParams = basePrior({ impressions: 0, clicks: 0 });

export function posterior(counts: ArmCounts, prior: BetaParams): BetaParams {
  return { alpha: prior.alpha + counts.clicks, beta: prior.beta + Math.max(0, counts.impressions - counts.clicks) };
}

/** BANDIT_SHARDS, or DEFAULT_SHARDS when it is not a whole number in [1, MAX_SHARDS]. */
export function shardCount(env: Env): number {
  const n = Number(env.BANDIT_SHARDS);
  return Number.isInteger(n) && n >= 1 && n <= MAX_SHARDS ? n : DEFAULT_SHARDS;
}

export function shardOf(itemId: string, shards: number): number {
  return hashString(itemId, SHARD_SEED) % shards;
}

function shardName(shards: number, shard: number): string {
  return `bandit/${shards}/${shard}`;
}

function shardStub(env: Env, shards: number, shard: number): DurableObjectStub<BanditShard> {
  return env.BANDIT.get(env.BANDIT.idFromName(shardName(shards, shard)));
}

/** The shard object that keeps `itemId`'s counts. */
export function shardFor(env: Env, itemId: string): DurableObjectStub<BanditShard> {
  const shards = shardCount(env);
  return shardStub(env, shards, shardOf(itemId, shards));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class DeadlinePassed extends Error {}

/** `work`, or a DeadlinePassed rejection after `ms`; the work itself goes on. */
async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlinePassed(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

type ArmRow = { item: string; impressions: number; clicks: number; at: number };

/** One shard of the exploration state: decayed impressions and clicks per item, in SQLite. */
export class BanditShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // `total` holds one row (item ''), the shard's own decayed totals, for the base rate.
    this.sql.exec('CREATE TABLE IF NOT EXISTS arms (item TEXT PRIMARY KEY, impressions REAL NOT NULL, clicks REAL NOT NULL, at INTEGER NOT NULL)');
    this.sql.exec('CREATE INDEX IF NOT EXISTS arms_at ON arms (at)');
    this.sql.exec('CREATE TABLE IF NOT EXISTS total (item TEXT PRIMARY KEY, impressions REAL NOT NULL, clicks REAL NOT NULL, at INTEGER NOT NULL)');
    this.sql.exec('CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL)');
    this.sql.exec('CREATE INDEX IF NOT EXISTS seen_at ON seen (at)');
  }

  /** Counts the outcomes (each event id once per DEDUPE_WINDOW_MS), in one transaction. */
  addOutcomes(outcomes: readonly Outcome[], now: number = Date.now()): RecordReport {
    return this.ctx.storage.transactionSync(() => {
      this.sql.exec('DELETE FROM seen WHERE at < ?', now - DEDUPE_WINDOW_MS);
      this.sql.exec('DELETE FROM arms WHERE at < ?', now - FORGET_AFTER_MS);
      const delta = new Map<string, ArmCounts>();
      let duplicate = 0;
      for (const { id, item, click } of outcomes) {
        if (this.sql.exec('SELECT 1 AS hit FROM seen WHERE id = ?', id).toArray().length > 0) {
          duplicate++;
          continue;
        }
        this.sql.exec('INSERT INTO seen (id, at) VALUES (?, ?)', id, now);
        const d = delta.get(item) ?? { impressions: 0, clicks: 0 };
        if (click) d.clicks++;
        else d.impressions++;
        delta.set(item, d);
      }
      const sum = { impressions: 0, clicks: 0 };
      for (const [item, d] of delta) {
        this.add('arms', item, d, now);
        sum.impressions += d.impressions;
        sum.clicks += d.clicks;
      }
      if (delta.size > 0) this.add('total', '', sum, now);
      return { counted: outcomes.length - duplicate, duplicate };
    });
  }

  /** The decayed counts of `items` (zeros for an item never counted) and of the whole shard. */
  readCounts(items: readonly string[], now: number = Date.now()): ShardCounts {
    const byItem = new Map<string, ArmCounts>();
    for (let i = 0; i < items.length; i += SQL_PARAMS) {
      const part = items.slice(i, i + SQL_PARAMS);
      const rows = this.sql.exec<ArmRow>(`SELECT item, impressions, clicks, at FROM arms WHERE item IN (${part.map(() => '?').join(', ')})`, ...part);
      for (const row of rows) byItem.set(row.item, decayed(row, now));
    }
    const total = this.sql.exec<ArmRow>("SELECT item, impressions, clicks, at FROM total WHERE item = ''").toArray()[0];
    return {
      impressions: items.map((item) => byItem.get(item)?.impressions ?? 0),
      clicks: items.map((item) => byItem.get(item)?.clicks ?? 0),
      total: decayed(total, now),
    };
  }

  private add(table: 'arms' | 'total', item: string, d: ArmCounts, now: number): void {
    const row = this.sql.exec<ArmRow>(`SELECT item, impressions, clicks, at FROM ${table} WHERE item = ?`, item).toArray()[0];
    const base = decayed(row, now);
    this.sql.exec(
      `INSERT INTO ${table} (item, impressions, clicks, at) VALUES (?, ?, ?, ?)
       ON CONFLICT(item) DO UPDATE SET impressions = excluded.impressions, clicks = excluded.clicks, at = excluded.at`,
      item, base.impressions + d.impressions, base.clicks + d.clicks, base.at,
    );
  }
}

/** The impressions and clicks among `events` (already validated and deduplicated), by shard. */
export function outcomesByShard(events: readonly Event[], shards: number): Map<number, Outcome[]> {
  const byShard = new Map<number, Outcome[]>();
  for (const e of events) {
    if (e.type !== IMPRESSION_TYPE && e.type !== CLICK_TYPE) continue;
    const shard = shardOf(e.itemId, shards);
    const list = byShard.get(shard) ?? [];
    list.push({ id: e.id, item: e.itemId, click: e.type === CLICK_TYPE });
    byShard.set(shard, list);
  }
  return byShard;
}

/** What POST /v1/events did to the exploration state. */
export interface BanditUpdate {
  counted: number;
  /** Why some counts may be missing; the events themselves are kept and forwarded regardless. */
  warning?: string;
}

/** Sends the events' impressions and clicks to their shards, one call per shard; never throws. */
export async function recordOutcomes(env: Env, events: readonly Event[]): Promise<BanditUpdate> {
  const shards = shardCount(env);
  const failures: string[] = [];
  let counted = 0;
  await Promise.all([...outcomesByShard(events, shards)].map(async ([shard, outcomes]) => {
    try {
      counted += (await withDeadline(shardStub(env, shards, shard).addOutcomes(outcomes), WRITE_TIMEOUT_MS)).counted;
    } catch (err) {
      failures.push(`shard ${shard}: ${messageOf(err)}`);
    }
  }));
  if (failures.length === 0) return { counted };
  const warning = `exploration counts of ${failures.length} bandit shard(s) not updated (${failures[0] ?? ''}); the events are kept and forwarded to the core`;
  console.warn(warning);
  return { counted, warning };
}

interface Cached extends ArmCounts {
  readAt: number;
}

/** Counts this isolate read, by item, least recently read first; and each shard's totals. */
const itemCache = new Map<string, Cached>();
const totalCache = new Map<string, Cached>();

/** Bumped whenever the caches above change: a posterior computed from them before is out of date. */
let cacheGeneration = 0;

function remember(item: string, counts: Cached): void {
  cacheGeneration++;
  itemCache.delete(item);
  itemCache.set(item, counts);
  for (const oldest of itemCache.keys()) {
    if (itemCache.size <= MAX_CACHED_ITEMS) break;
    itemCache.delete(oldest);
  }
}

export interface Posteriors {
  /** Beta α per asked item, in order. */
  alpha: Float64Array;
  /** Beta β per asked item. */
  beta: Float64Array;
  prior: BetaParams;
  /** Set when some items got the prior because their shard could not be read. */
  warning?: string;
}

export interface ReadContext {
  env: Env;
  now: number;
  /** Where a read past its deadline finishes, to fill the cache for the next request. */
  waitUntil(promise: Promise<unknown>): void;
}

interface PosteriorMemo {
  posteriors: Posteriors;
  /** cacheGeneration when they were computed. */
  generation: number;
  /** When the earliest of the counts they came from needs reading again. */
  expiresAt: number;
  shards: number;
  cacheMs: number;
}

/**
 * The last answer per `items` array: a hit asks for the same cached slate's items again and again,
 * and while none of their counts changed or aged out, the answer is the same.
 */
const posteriorMemo = new WeakMap<readonly string[], PosteriorMemo>();

/**
 * Beta posteriors of `items` from their shards: one call per shard not covered by this isolate's
 * fresh cache, in parallel, within BANDIT_TIMEOUT_MS. Never throws: an item whose shard failed or
 * was late gets its last cached counts, or the prior. A failed shard sets the warning. A late one
 * only logs: its read goes on in the background and fills the cache for the next request, which is
 * how a cold isolate (or objects just woken) gets its first counts without holding up a request.
 * The same `items` array asked again gets the same answer (the same arrays: read them, never write
 * them) until one of its counts changes or is due for a re-read.
 */
export async function readPosteriors(items: readonly string[], ctx: ReadContext): Promise<Posteriors> {
  const { env, now } = ctx;
  const shards = shardCount(env);
  const cacheMs = msVar(env.BANDIT_CACHE_MS, DEFAULT_CACHE_MS);
  const timeoutMs = msVar(env.BANDIT_TIMEOUT_MS, DEFAULT_READ_TIMEOUT_MS);
  const memo = posteriorMemo.get(items);
  if (memo !== undefined && memo.generation === cacheGeneration && now < memo.expiresAt && memo.shards === shards && memo.cacheMs === cacheMs) {
    return memo.posteriors;
  }
  const toRead = new Map<number, string[]>();
  for (const item of items) {
    const cached = itemCache.get(item);
    if (cached !== undefined && now - cached.readAt < cacheMs) continue;
    const shard = shardOf(item, shards);
    toRead.set(shard, [...(toRead.get(shard) ?? []), item]);
  }
  let missed = 0;
  let stale = 0;
  const failures: string[] = [];
  const late: number[] = [];
  await Promise.all([...toRead].map(async ([shard, shardItems]) => {
    const read = shardStub(env, shards, shard).readCounts(shardItems).then((got) => {
      shardItems.forEach((item, i) => remember(item, { impressions: got.impressions[i] ?? 0, clicks: got.clicks[i] ?? 0, readAt: now }));
      totalCache.set(shardName(shards, shard), { ...got.total, readAt: now });
      cacheGeneration++;
    });
    try {
      await withDeadline(read, timeoutMs);
    } catch (err) {
      if (err instanceof DeadlinePassed) {
        late.push(shard);
        ctx.waitUntil(read.catch((e: unknown) => console.warn(`bandit shard ${shard}: ${messageOf(e)}`)));
        return;
      }
      failures.push(`shard ${shard}: ${messageOf(err)}`);
      for (const item of shardItems) {
        if (itemCache.has(item)) stale++;
        else missed++;
      }
    }
  }));
  if (late.length > 0) console.warn(`bandit shard(s) ${late.join(', ')} did not answer within ${timeoutMs} ms; their items explored with the counts cached here, else the prior`);

  const pooled = { impressions: 0, clicks: 0 };
  for (const [name, t] of totalCache) {
    if (!name.startsWith(`bandit/${shards}/`)) continue;
    pooled.impressions += t.impressions;
    pooled.clicks += t.clicks;
  }
  const prior = basePrior(pooled);
  const alpha = new Float64Array(items.length);
  const beta = new Float64Array(items.length);
  // The answer stands until the first of its cached counts is due for a re-read (or a read changes them).
  let expiresAt = failures.length === 0 && late.length === 0 ? Infinity : -Infinity;
  items.forEach((item, i) => {
    const cached = itemCache.get(item);
    const p = posterior(cached ?? { impressions: 0, clicks: 0 }, prior);
    alpha[i] = p.alpha;
    beta[i] = p.beta;
    expiresAt = Math.min(expiresAt, cached === undefined ? -Infinity : cached.readAt + cacheMs);
  });
  if (failures.length === 0) {
    const posteriors = { alpha, beta, prior };
    if (now < expiresAt) posteriorMemo.set(items, { posteriors, generation: cacheGeneration, expiresAt, shards, cacheMs });
    return posteriors;
  }
  const warning = `exploration state of ${failures.length} of ${toRead.size} bandit shard(s) unavailable (${failures[0] ?? ''}); `
    + `${missed} item(s) explored with the prior${stale > 0 ? `, ${stale} with counts cached earlier` : ''}`;
  return { alpha, beta, prior, warning };
}
