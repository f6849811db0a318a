// GET /v1/recommendations/{userId} at the edge (ARCHITECTURE.md, request path): A/B arm, the cached
// slate or the core's, WASM re-rank, and the answer with where it came from:
//
//   edge-cache  a fresh slate for (user, arm) was in the Cache API
//   core        none was: fetched from the core under CORE_TIMEOUT_MS, stored with its TTL
//   stale       one past its TTL was: served at once and revalidated in the background
//               (ctx.waitUntil), or the core failed and an older slate is better than none
//   fallback    no slate and the core failed: the location's cached popular list, or an empty list;
//               always 200 with a `warning` saying why, never an error page
//
// The re-rank uses the user's session (edge/session.ts): its interest vector for the affinity term and
// its impressions per item for the shown penalty. A session that cannot be read re-ranks with the
// neutral values (and says so in `warning`) rather than failing the request. The Beta posteriors of
// the candidates' click-through for Thompson-sampling exploration come from the bandit shards
// (edge/bandit.ts), read in parallel with the session under BANDIT_TIMEOUT_MS. A shard that fails
// leaves its items at the prior (or at counts the isolate read earlier) and says so in `warning`; a
// late one does the same without the warning, and its read fills the isolate's cache for the next
// request.
//
// The popular list is refreshed in the background whenever the core has just answered and the
// cached list is missing or older than POPULAR_REFRESH_S, so it is there when the core goes away.
import type { Slate } from '../core/domain/slate.ts';
import { CoreUnavailable, coreTimeoutMs, fetchPopular, fetchSlate } from './core-client.ts';
import { chooseArm } from './experiments.ts';
import type { ArmChoice } from './experiments.ts';
import { POPULAR_REFRESH_S, popularKey, readPopular, readSlate, slateKey, writePopular, writeSlate } from './slate-cache.ts';
import type { CachedSlate } from './slate-cache.ts';
import type { RerankInput } from '../core/domain/rerank.ts';
import { readPosteriors } from './bandit.ts';
import type { SessionSnapshot } from './session.ts';
import { keepSession, keptSession, sessionCacheMs } from './session-memory.ts';
import { arraysOf, rankedItemJson, rerankSlate, slateRerankInput } from './slate-rerank.ts';
import type { CandidatePosteriors, RankedItem } from './slate-rerank.ts';

export type ServedFrom = 'edge-cache' | 'core' | 'stale' | 'fallback';

export interface RecommendationsResponse {
  userId: string;
  items: RankedItem[];
  requestId: string;
  arm: string;
  experiment?: string;
  /** Version of the model behind the items; null when nothing at all could be served. */
  modelVersion: string | null;
  served_from: ServedFrom;
  /** Why the answer is degraded (core unreachable, bad experiment config); absent when it is not. */
  warning?: string;
}

export interface RecommendContext {
  env: Env;
  /** The experiments in force (KV's entry, else the EXPERIMENTS var): what the arm is chosen from. */
  experiments: string;
  cache: Cache;
  /** ctx.waitUntil: background work that outlives the response (revalidation, cache writes). */
  waitUntil(promise: Promise<unknown>): void;
  /** Where the popular fallback is kept: the colo serving the request (asked only when that list is needed). */
  region(): string;
  now: number;
}

/** Where the items go in the answer's JSON: `items` written as this number, then replaced. */
const ITEMS_MARK = '"items":0';

/**
 * JSON.stringify(body), with each item's text from memory (slate-rerank.ts rankedItemJson): a hit's
 * items are the slate's own objects, written once (their scores' float printing was most of the cost).
 */
export function recommendationsJson(body: RecommendationsResponse): string {
  // The other fields as JSON.stringify writes them, in order; no string value can contain the mark
  // (its quotes would be escaped), so its first occurrence is the key.
  const text = JSON.stringify({ ...body, items: 0 });
  const at = text.indexOf(ITEMS_MARK);
  const { items } = body;
  let list = '';
  for (let i = 0; i < items.length; i++) list += (i === 0 ? '' : ',') + rankedItemJson(items[i] as RankedItem);
  return `${text.slice(0, at)}"items":[${list}]${text.slice(at + ITEMS_MARK.length)}`;
}

/** Keeps background work from failing loudly: a failed revalidation leaves the stale entry in place. */
function background(ctx: RecommendContext, what: string, work: Promise<unknown>): void {
  ctx.waitUntil(work.catch((err: unknown) => console.warn(`${what} failed: ${err instanceof Error ? err.message : String(err)}`)));
}

/** After the core answered: refresh the location's popular list if it is missing or old. */
async function refreshPopularIfOld(ctx: RecommendContext, timeoutMs: number): Promise<void> {
  const key = popularKey(ctx.region());
  const cached = await readPopular(ctx.cache, key);
  if (cached !== undefined && ctx.now - cached.fetchedAt < POPULAR_REFRESH_S * 1000) return;
  await writePopular(ctx.cache, key, await fetchPopular(ctx.env.CORE_URL, timeoutMs, ctx.env.CORE_API_KEY), Date.now());
}

interface FromCore {
  slate: Slate;
  /** The cache writes that follow a core answer: the slate, and the popular list when it is old. */
  stored: Promise<unknown>;
}

/** Fetches the user's slate from the core; the caller decides whether to wait for the cache writes. */
async function slateFromCore(ctx: RecommendContext, userId: string, key: string, timeoutMs: number): Promise<FromCore> {
  const { slate, bytes } = await fetchSlate(ctx.env.CORE_URL, userId, timeoutMs, ctx.env.CORE_API_KEY);
  const stored = Promise.all([
    writeSlate(ctx.cache, key, bytes, slate, Date.now()),
    // A failed popular refresh must not undo the slate write: it only logs.
    refreshPopularIfOld(ctx, timeoutMs).catch((err: unknown) => console.warn(`popular list refresh failed: ${err instanceof Error ? err.message : String(err)}`)),
  ]);
  return { slate, stored };
}

function warningsOf(...parts: (string | undefined)[]): { warning?: string } {
  const text = parts.filter((p): p is string => p !== undefined && p !== '').join('; ');
  return text === '' ? {} : { warning: text };
}

async function fallback(ctx: RecommendContext, base: Omit<RecommendationsResponse, 'items' | 'modelVersion' | 'served_from'>, n: number, reason: string, armWarning?: string): Promise<RecommendationsResponse> {
  const cached = await readPopular(ctx.cache, popularKey(ctx.region()));
  if (cached === undefined) {
    return { ...base, items: [], modelVersion: null, served_from: 'fallback', ...warningsOf(`the core is unreachable (${reason}) and no popular list is cached here; no recommendations`, armWarning) };
  }
  const items = cached.popular.items.slice(0, n).map((it): RankedItem => ({ id: it.id, score: it.score, categories: it.categories, explored: false }));
  return {
    ...base, items, modelVersion: cached.popular.modelVersion, served_from: 'fallback',
    ...warningsOf(`the core is unreachable (${reason}); serving the popular list cached at this location`, armWarning),
  };
}

/** Whether a cached slate can stand for what the arm asks: a pinned model version must match. */
function matchesArm(cached: CachedSlate | undefined, choice: ArmChoice): boolean {
  return cached !== undefined && (choice.modelVersion === undefined || cached.slate.modelVersion === choice.modelVersion);
}

export async function recommend(userId: string, n: number, ctx: RecommendContext): Promise<RecommendationsResponse> {
  const requestId = crypto.randomUUID();
  const choice = chooseArm(userId, ctx.experiments);
  const base = { userId, requestId, arm: choice.arm, ...(choice.experimentId !== undefined ? { experiment: choice.experimentId } : {}) };
  const timeoutMs = coreTimeoutMs(ctx.env.CORE_TIMEOUT_MS);
  const key = slateKey(userId, choice.cacheKey);
  // The session does not depend on the slate: its read overlaps the slate's (it never rejects).
  const sessionRead = readSession(ctx.env, userId, ctx.now);
  const cached = await readSlate(ctx.cache, key, ctx.now);

  let slate: Slate;
  let servedFrom: ServedFrom;
  let warning: string | undefined;
  if (cached !== undefined && matchesArm(cached, choice) && cached.fresh) {
    slate = cached.slate;
    servedFrom = 'edge-cache';
  } else if (cached !== undefined && matchesArm(cached, choice)) {
    slate = cached.slate;
    servedFrom = 'stale';
    background(ctx, `revalidating the slate of '${userId}'`, slateFromCore(ctx, userId, key, timeoutMs).then((r) => r.stored));
  } else {
    try {
      const fromCore = await slateFromCore(ctx, userId, key, timeoutMs);
      background(ctx, `caching the slate of '${userId}'`, fromCore.stored);
      slate = fromCore.slate;
      servedFrom = 'core';
      if (choice.modelVersion !== undefined && slate.modelVersion !== choice.modelVersion) {
        warning = `arm '${choice.arm}' pins model ${choice.modelVersion}, the core serves ${slate.modelVersion}`;
      }
    } catch (err) {
      if (!(err instanceof CoreUnavailable)) throw err;
      if (cached === undefined) return fallback(ctx, base, n, err.message, choice.warning);
      // A slate of another model version still beats the popular list while the core is down.
      slate = cached.slate;
      servedFrom = 'stale';
      warning = `the core is unreachable (${err.message}); serving a cached slate of model ${slate.modelVersion}`;
    }
  }
  const [session, posteriors] = await Promise.all([
    sessionRead,
    readPosteriors(arraysOf(slate).items, { env: ctx.env, now: ctx.now, waitUntil: (p) => ctx.waitUntil(p) }),
  ]);
  const input = sessionRerankInput(slate, session.snapshot, posteriors);
  const items = await rerankSlate(slate, { k: n, mmrLambda: choice.mmrLambda, exploreShare: choice.exploreShare, requestId }, input);
  return {
    ...base, items, modelVersion: slate.modelVersion, served_from: servedFrom,
    ...warningsOf(warning, session.warning, posteriors.warning, choice.warning),
  };
}

/**
 * The user's session: this isolate's snapshot while younger than SESSION_CACHE_MS (session-memory.ts),
 * else from their SessionState object; an empty one when it cannot be read.
 */
async function readSession(env: Env, userId: string, now: number): Promise<{ snapshot: SessionSnapshot; warning?: string }> {
  const maxAgeMs = sessionCacheMs(env);
  const kept = maxAgeMs > 0 ? keptSession(userId, now, maxAgeMs) : undefined;
  if (kept !== undefined) return { snapshot: kept };
  try {
    const snapshot = await env.SESSIONS.get(env.SESSIONS.idFromName(userId)).snapshot();
    if (maxAgeMs > 0) keepSession(userId, snapshot, now);
    return { snapshot };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { snapshot: { interest: null, shown: {} }, warning: `session state unavailable (${reason}); re-ranked without it` };
  }
}

/** The last input made per session snapshot, with the slate and posteriors it was made for. */
const sessionInputs = new WeakMap<SessionSnapshot, { slate: Slate; posteriors: CandidatePosteriors | undefined; input: RerankInput }>();

/**
 * The kernel input of slate-rerank.ts with the session's interest vector and shown counts filled
 * in, and the candidates' bandit posteriors when given (else the default prior). The same snapshot,
 * slate and posteriors objects give the same input object (a hit repeats them while its isolate
 * keeps the snapshot), whose arrays, like slateRerankInput's, are only ever read.
 */
export function sessionRerankInput(slate: Slate, session: SessionSnapshot, posteriors?: CandidatePosteriors): RerankInput {
  const last = sessionInputs.get(session);
  if (last !== undefined && last.slate === slate && last.posteriors === posteriors) return last.input;
  const input = slateRerankInput(slate, posteriors);
  // An interest vector from another model's embeddings (another dimension) does not apply.
  if (session.interest !== null && session.interest.length === slate.dim) input.interest = Float32Array.from(session.interest);
  // From the session's shown items (often none), not a lookup per candidate.
  const { indexOf } = arraysOf(slate);
  let shown: Float64Array | undefined;
  for (const [item, count] of Object.entries(session.shown)) {
    const at = indexOf.get(item);
    if (at === undefined) continue;
    shown ??= new Float64Array(slate.candidates.length);
    for (const i of at) shown[i] = count;
  }
  if (shown !== undefined) input.shown = shown;
  sessionInputs.set(session, { slate, posteriors, input });
  return input;
}
