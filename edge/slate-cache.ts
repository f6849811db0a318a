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
//
// In front of the Cache API, each isolate keeps the slates it decoded most recently in memory
// (MEMORY_BUDGET_BYTES, least recently used out first), and serves a fresh one from there without
// reading or decoding it again: on a hit, the read and the decode cost more than the re-rank. An
// entry past its TTL is not served from memory: the Cache API may hold a newer slate that another
// isolate fetched, so the read goes there.
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

/** Memory an isolate gives to decoded slates (of its 128 MB). */
export const MEMORY_BUDGET_BYTES = 32 * 2 ** 20;
/** Bytes a decoded slate takes per byte of its encoding (strings, arrays and objects): a rough bound. */
const DECODED_PER_ENCODED_BYTE = 3;

interface Remembered {
  slate: Slate;
  fetchedAt: number;
  bytes: number;
}

const memory = new Map<string, Remembered>();
let memoryBytes = 0;

function forget(key: string): void {
  const old = memory.get(key);
  if (old === undefined) return;
  memory.delete(key);
  memoryBytes -= old.bytes;
}

function remember(key: string, slate: Slate, fetchedAt: number, encodedBytes: number): void {
  forget(key);
  const bytes = encodedBytes * DECODED_PER_ENCODED_BYTE;
  if (bytes > MEMORY_BUDGET_BYTES) return;
  while (memoryBytes + bytes > MEMORY_BUDGET_BYTES) {
    const oldest = memory.keys().next().value;
    if (oldest === undefined) break;
    forget(oldest);
  }
  memory.set(key, { slate, fetchedAt, bytes });
  memoryBytes += bytes;
}

/** Drops every slate this isolate keeps in memory (tests that change the Cache API behind its back). */
export function forgetRememberedSlates(): void {
  memory.clear();
  memoryBytes = 0;
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
  remember(key, slate, fetchedAt, bytes.byteLength);
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
  const kept = memory.get(key);
  if (kept !== undefined && now < kept.fetchedAt + kept.slate.ttlSeconds * 1000) {
    // Most recently used goes last, so the oldest is evicted first.
    memory.delete(key);
    memory.set(key, kept);
    return { slate: kept.slate, fetchedAt: kept.fetchedAt, fresh: true };
  }
  const res = await cache.match(key);
  if (res === undefined) {
    forget(key);
    return undefined;
  }
  const fetchedAt = fetchedAtOf(res);
  const ttl = Number(res.headers.get(TTL_HEADER));
  try {
    if (fetchedAt === undefined || !(ttl >= 0)) throw new Error(`entry lacks ${FETCHED_AT_HEADER} or ${TTL_HEADER}`);
    const encoded = new Uint8Array(await res.arrayBuffer());
    const slate = decodeSlate(encoded);
    remember(key, slate, fetchedAt, encoded.byteLength);
    return { slate, fetchedAt, fresh: now < fetchedAt + ttl * 1000 };
  } catch (err) {
    console.warn(`dropping unreadable cached slate ${key}: ${err instanceof Error ? err.message : String(err)}`);
    forget(key);
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
