// Step 2 of the edge request path: the user's slate, and the location's popular list, in the Cache
// API. Entries are plain Responses under synthetic URLs (the Cache API keys by URL only):
//
//   slate    https://cache.kestrel.internal/v1/slates/{armKey}/{userId}   body: the binary slate as
//            the core sent it (SLATE_CONTENT_TYPE), Cache-Control: max-age = ttl + STALE_WINDOW_S
//   popular  https://cache.kestrel.internal/v1/popular/{region}           body: the core's
//            /v1/popular JSON, Cache-Control: max-age = POPULAR_MAX_AGE_S
//
// The cache keeps an entry for its max-age; the edge decides freshness itself from headers written
// at store time: x-kestrel-fetched-at (epoch ms on the edge's clock, not the core's, so clock skew
// between tiers does not matter) and x-kestrel-ttl (the slate's ttlSeconds). An entry younger than
// its TTL is fresh; older but still held (the stale window) it can be served while revalidating or
// while the core is down. The model version is in the slate (and copied into x-kestrel-model-version
// so a pinned arm can reject an entry without decoding it).
import { decodeSlate, SLATE_CONTENT_TYPE } from '../core/domain/slate.ts';
import type { Slate } from '../core/domain/slate.ts';

const CACHE_ORIGIN = 'https://cache.kestrel.internal';
/** How long past its TTL a slate stays in the cache, to be served stale when the core is slow or down. */
export const STALE_WINDOW_S = 86_400;
/** How long the popular list of a location is kept: the last resort while the core is down. */
export const POPULAR_MAX_AGE_S = 7 * 86_400;
/** A popular list older than this is refreshed from the core on its next successful answer. */
export const POPULAR_REFRESH_S = 3_600;

export const FETCHED_AT_HEADER = 'x-kestrel-fetched-at';
export const TTL_HEADER = 'x-kestrel-ttl';
export const MODEL_VERSION_HEADER = 'x-kestrel-model-version';

export interface CachedSlate {
  slate: Slate;
  /** Epoch ms when the edge fetched it from the core. */
  fetchedAt: number;
  /** Younger than its TTL. */
  fresh: boolean;
}

export interface PopularItem {
  id: string;
  score: number;
  categories: string[];
}

export interface PopularList {
  modelVersion: string;
  items: PopularItem[];
}

export interface CachedPopular {
  popular: PopularList;
  fetchedAt: number;
}

/** Cache key of the slate of (user, arm); `armKey` is ArmChoice.cacheKey. */
export function slateKey(userId: string, armKey: string): string {
  return `${CACHE_ORIGIN}/v1/slates/${encodeURIComponent(armKey)}/${encodeURIComponent(userId)}`;
}

/** Cache key of the popular list of a region (the colo; `caches.default` is per location anyway). */
export function popularKey(region: string): string {
  return `${CACHE_ORIGIN}/v1/popular/${encodeURIComponent(region)}`;
}

function fetchedAtOf(res: Response): number | undefined {
  const at = Number(res.headers.get(FETCHED_AT_HEADER));
  return Number.isFinite(at) && at > 0 ? at : undefined;
}

/**
 * Stores the slate `bytes` (already decoded by the caller into `slate`) fetched at `fetchedAt`.
 * Written once per core answer; the same call writes an old `fetchedAt` when a test needs an expired entry.
 */
export async function writeSlate(cache: Cache, key: string, bytes: Uint8Array, slate: Slate, fetchedAt: number): Promise<void> {
  const body = bytes.slice().buffer;
  await cache.put(key, new Response(body, {
    headers: {
      'content-type': SLATE_CONTENT_TYPE,
      'cache-control': `public, max-age=${Math.ceil(slate.ttlSeconds) + STALE_WINDOW_S}`,
      [FETCHED_AT_HEADER]: String(fetchedAt),
      [TTL_HEADER]: String(slate.ttlSeconds),
      [MODEL_VERSION_HEADER]: slate.modelVersion,
    },
  }));
}

/**
 * The cached slate under `key`, fresh or stale, or undefined when there is none (or it does not
 * decode: then it is dropped, and the caller fetches a new one).
 */
export async function readSlate(cache: Cache, key: string, now: number): Promise<CachedSlate | undefined> {
  const res = await cache.match(key);
  if (res === undefined) return undefined;
  const fetchedAt = fetchedAtOf(res);
  const ttl = Number(res.headers.get(TTL_HEADER));
  try {
    if (fetchedAt === undefined || !(ttl >= 0)) throw new Error(`entry lacks ${FETCHED_AT_HEADER} or ${TTL_HEADER}`);
    const slate = decodeSlate(new Uint8Array(await res.arrayBuffer()));
    return { slate, fetchedAt, fresh: now < fetchedAt + ttl * 1000 };
  } catch (err) {
    console.warn(`dropping unreadable cached slate ${key}: ${err instanceof Error ? err.message : String(err)}`);
    await cache.delete(key);
    return undefined;
  }
}

export async function writePopular(cache: Cache, key: string, popular: PopularList, fetchedAt: number): Promise<void> {
  await cache.put(key, new Response(JSON.stringify(popular), {
    headers: {
      'content-type': 'application/json',
      'cache-control': `public, max-age=${POPULAR_MAX_AGE_S}`,
      [FETCHED_AT_HEADER]: String(fetchedAt),
    },
  }));
}

export async function readPopular(cache: Cache, key: string): Promise<CachedPopular | undefined> {
  const res = await cache.match(key);
  if (res === undefined) return undefined;
  const fetchedAt = fetchedAtOf(res);
  if (fetchedAt === undefined) return undefined;
  try {
    return { popular: popularFromJson(await res.json()), fetchedAt };
  } catch {
    await cache.delete(key);
    return undefined;
  }
}

/** Reads the core's /v1/popular body; throws naming the bad field. */
export function popularFromJson(v: unknown): PopularList {
  if (typeof v !== 'object' || v === null) throw new Error('popular list must be a JSON object');
  const { modelVersion, items } = v as { modelVersion?: unknown; items?: unknown };
  if (typeof modelVersion !== 'string') throw new Error('popular list lacks a string modelVersion');
  if (!Array.isArray(items)) throw new Error('popular list lacks an items array');
  return {
    modelVersion,
    items: items.map((it: unknown, i): PopularItem => {
      const { id, score, categories } = (typeof it === 'object' && it !== null ? it : {}) as { id?: unknown; score?: unknown; categories?: unknown };
      if (typeof id !== 'string' || typeof score !== 'number') throw new Error(`popular items[${i}] needs a string id and a number score`);
      const cats = Array.isArray(categories) ? categories.filter((c): c is string => typeof c === 'string') : [];
      return { id, score, categories: cats };
    }),
  };
}
