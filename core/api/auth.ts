// API keys (issue 3, "Auth"): `Authorization: Bearer <key>`, scopes `read` and `write` (write
// implies read). GET and HEAD need `read`; every other method needs `write`. Keys are compared by
// their SHA-256 digest, so a lookup's timing says nothing about how much of a key matched.
import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { ApiError } from './errors.ts';

export type Scope = 'read' | 'write';

export interface ApiKey {
  key: string;
  scopes: Scope[];
  /** Who holds it; shown in logs, never the key itself. */
  name?: string;
}

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

/** Shortest key accepted from config: a guessable key is no key. */
export const MIN_KEY_LENGTH = 16;

/** Checks a parsed `{ keys: [...] }` config; throws an Error that says what to fix. */
export function parseApiKeys(config: unknown, source: string): ApiKey[] {
  const keys = (config as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error(`${source}: expected { "keys": [{ "key": "...", "scopes": ["read", "write"], "name": "..." }] }`);
  return keys.map((entry: unknown, i) => {
    const { key, scopes, name } = (entry ?? {}) as { key?: unknown; scopes?: unknown; name?: unknown };
    if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH) {
      throw new Error(`${source}: keys[${i}].key must be a string of at least ${MIN_KEY_LENGTH} characters`);
    }
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => s === 'read' || s === 'write')) {
      throw new Error(`${source}: keys[${i}].scopes must be a non-empty array of "read" and "write"`);
    }
    if (name !== undefined && typeof name !== 'string') throw new Error(`${source}: keys[${i}].name must be a string`);
    return name === undefined ? { key, scopes: scopes as Scope[] } : { key, scopes: scopes as Scope[], name };
  });
}

const scopeOf = (method: string): Scope => (method === 'GET' || method === 'HEAD' ? 'read' : 'write');

/** Middleware for the `/v1` routes: 401 without a known key, 403 without the method's scope. */
export function requireApiKey(keys: readonly ApiKey[]): MiddlewareHandler {
  const byDigest = new Map(keys.map((k) => [digest(k.key), k]));
  return async (c, next) => {
    const header = c.req.header('authorization');
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) {
      throw new ApiError(401, 'unauthenticated', 'send an API key as "Authorization: Bearer <key>"');
    }
    const key = byDigest.get(digest(match[1]));
    if (key === undefined) throw new ApiError(401, 'unauthenticated', 'the API key is not known; check the key the server was configured with');
    const needed = scopeOf(c.req.method);
    if (!key.scopes.includes(needed) && !(needed === 'read' && key.scopes.includes('write'))) {
      throw new ApiError(403, 'forbidden', `${c.req.method} ${c.req.path} needs an API key with the '${needed}' scope; this key has ${key.scopes.join(', ')}`);
    }
    await next();
  };
}
