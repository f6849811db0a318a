// API keys and per-key rate limits at the edge, for the `/v1` routes.
//
// Keys work as the core's do (core/api/auth.ts): `Authorization: Bearer <key>`, scopes `read` and
// `write` (write implies read; GET and HEAD need read, everything else write), the same 401/403
// answers. They live in the `CONFIG` KV namespace, one entry per key, named by the SHA-256 digest
// of the key so the namespace never holds a usable key:
//
//   apikey:<sha256 hex of the key>  →  { "name": "web", "scopes": ["read", "write"] }
//
// Adding or revoking a key is a KV write, no redeploy; an isolate remembers a lookup for
// KEY_CACHE_MS (an unknown key for UNKNOWN_KEY_CACHE_MS), so a revoked key stops working within
// that plus KV's own propagation. Checking is on when REQUIRE_API_KEY is "true"; off (the local
// default, see wrangler.toml) every request is served and none is rate limited.
//
// Each key is rate limited by the Workers rate-limiting binding RATE_LIMITER (a per-location
// counter keyed by the key's digest; its limit and period are in wrangler.toml): over it, 429 with
// Retry-After. A limiter that fails lets the request through and logs: a broken counter must not
// take recommendations down.
import type { MiddlewareHandler } from 'hono';

export type Scope = 'read' | 'write';

export interface KeyRecord {
  /** Who holds it: the name logs and errors show, never the key. */
  name: string;
  scopes: Scope[];
}

/** Prefix of a key's entry in the CONFIG namespace. */
export const KEY_PREFIX = 'apikey:';
export const KEY_CACHE_MS = 60_000;
export const UNKNOWN_KEY_CACHE_MS = 10_000;
/** Seconds a client over its limit is told to wait: the limiter's period (wrangler.toml). */
export const RATE_LIMIT_PERIOD_S = 60;
/** Lookups an isolate remembers at most; the oldest go first. */
const MAX_CACHED_KEYS = 10_000;

type Lookup = { record: KeyRecord | undefined; at: number };
const cache = new Map<string, Lookup>();

export async function sha256Hex(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Reads a KV entry's JSON as a key record; throws an Error that says what is wrong with it. */
export function parseKeyRecord(json: unknown, entry: string): KeyRecord {
  const { name, scopes } = (json ?? {}) as { name?: unknown; scopes?: unknown };
  if (typeof name !== 'string' || name === '') throw new Error(`${entry}: "name" must be a non-empty string`);
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => s === 'read' || s === 'write')) {
    throw new Error(`${entry}: "scopes" must be a non-empty array of "read" and "write"`);
  }
  return { name, scopes: scopes as Scope[] };
}

async function lookUp(kv: KVNamespace, digest: string, now: number): Promise<KeyRecord | undefined> {
  const hit = cache.get(digest);
  if (hit !== undefined && now - hit.at < (hit.record === undefined ? UNKNOWN_KEY_CACHE_MS : KEY_CACHE_MS)) return hit.record;
  const entry = `${KEY_PREFIX}${digest}`;
  const json = await kv.get<unknown>(entry, 'json');
  // A malformed entry is the operator's mistake, not the client's: it counts as no key, loudly.
  let record: KeyRecord | undefined;
  if (json !== null) {
    try {
      record = parseKeyRecord(json, entry);
    } catch (err) {
      console.error(`ignoring API key entry: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (cache.size >= MAX_CACHED_KEYS) cache.delete(cache.keys().next().value as string);
  cache.set(digest, { record, at: now });
  return record;
}

/** Forgets every remembered lookup (tests, and after a key is revoked in the same isolate). */
export function forgetKeyLookups(): void {
  cache.clear();
}

export function apiKeysRequired(env: Env): boolean {
  return env.REQUIRE_API_KEY?.trim().toLowerCase() === 'true';
}

function problem(status: 401 | 403 | 429 | 503, code: string, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ error: { code, message } }, { status, headers });
}

const scopeOf = (method: string): Scope => (method === 'GET' || method === 'HEAD' ? 'read' : 'write');

/**
 * Middleware for `/v1/*`: with REQUIRE_API_KEY on, 401 without a known key, 403 without the
 * method's scope, 429 over the key's rate limit, 503 when the key store cannot be read.
 */
export function requireApiKey(): MiddlewareHandler<{ Bindings: Env }> {
  return async (c, next) => {
    if (!apiKeysRequired(c.env)) return next();
    const header = c.req.header('authorization');
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) return problem(401, 'unauthenticated', 'send an API key as "Authorization: Bearer <key>"');
    const digest = await sha256Hex(match[1]);
    let record: KeyRecord | undefined;
    try {
      record = await lookUp(c.env.CONFIG, digest, Date.now());
    } catch (err) {
      console.error(`API key lookup failed: ${err instanceof Error ? err.message : String(err)}`);
      return problem(503, 'unavailable', 'the API key store cannot be read right now; retry shortly', { 'retry-after': '1' });
    }
    if (record === undefined) return problem(401, 'unauthenticated', 'the API key is not known; check the key you were given');
    const needed = scopeOf(c.req.method);
    if (!record.scopes.includes(needed) && !(needed === 'read' && record.scopes.includes('write'))) {
      return problem(403, 'forbidden', `${c.req.method} ${c.req.path} needs an API key with the '${needed}' scope; this key has ${record.scopes.join(', ')}`);
    }
    let allowed = true;
    try {
      allowed = (await c.env.RATE_LIMITER.limit({ key: digest })).success;
    } catch (err) {
      console.error(`rate limiter failed, letting the request through: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!allowed) {
      return problem(429, 'rate_limited', `API key '${record.name}' is over its rate limit; retry after ${RATE_LIMIT_PERIOD_S} s`, { 'retry-after': String(RATE_LIMIT_PERIOD_S) });
    }
    return next();
  };
}
