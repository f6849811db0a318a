// API keys, per-key rate limits and the run-time configuration of the CONFIG KV namespace, in the
// Worker inside workerd: keys stored by digest in KV, the core's 401/403 answers, 429 past the
// RATE_LIMITER binding's limit (wrangler.toml: 600 per 60 s), and experiments read from KV in place
// of the EXPERIMENTS var; and the edge's own key to a core that requires one (the CORE_API_KEY
// secret, bound by vitest.config.ts), for slates and for the events its sessions forward. The
// cores are test/edge/core-setup.ts's.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { assignArm } from '../../core/domain/ab.ts';
import type { Experiment } from '../../core/domain/ab.ts';
import { forgetKeyLookups, KEY_PREFIX, RATE_LIMIT_PERIOD_S, sha256Hex } from '../../edge/access.ts';
import { app } from '../../edge/app.ts';
import { EXPERIMENTS_ENTRY, forgetExperiments } from '../../edge/experiments.ts';
import type { RecommendationsResponse } from '../../edge/recommend.ts';
import { TEST_CORE_API_KEY } from './core-key.ts';
import { waitForCoreUser } from './core-users.ts';

const coreUrl = inject('coreUrl');
const keyedCoreUrl = inject('keyedCoreUrl');
const users = inject('users');
/** The limit of RATE_LIMITER in wrangler.toml. */
const LIMIT = 600;

interface ErrorBody {
  error: { code: string; message: string };
}

async function call(path: string, init: RequestInit = {}, overrides: Partial<Env> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.request(new Request(`https://edge.test${path}`, init), undefined,
    { ...env, CORE_URL: coreUrl, CORE_TIMEOUT_MS: '20000', REQUIRE_API_KEY: 'true', ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const bearer = (key: string): RequestInit => ({ headers: { authorization: `Bearer ${key}` } });

/** Stores a key as an operator would: its digest as the entry name, never the key. */
async function addKey(key: string, record: unknown): Promise<void> {
  await env.CONFIG.put(`${KEY_PREFIX}${await sha256Hex(key)}`, JSON.stringify(record));
}

afterEach(async () => {
  forgetKeyLookups();
  forgetExperiments();
  await env.CONFIG.delete(EXPERIMENTS_ENTRY);
});

describe('API keys at the edge', () => {
  it('serves without a key while REQUIRE_API_KEY is off, and says so on /healthz', async () => {
    const res = await call(`/v1/recommendations/${users[0]}?n=3`, {}, { REQUIRE_API_KEY: 'false' });
    expect(res.status).toBe(200);
    expect((await res.json<RecommendationsResponse>()).items).toHaveLength(3);
    expect((await (await call('/healthz', {}, { REQUIRE_API_KEY: 'false' })).json<{ apiKeys: string }>()).apiKeys).toBe('off');
    expect((await (await call('/healthz')).json<{ apiKeys: string }>()).apiKeys).toBe('required');
  });

  it('answers 401 without a key or with an unknown one, in the core error shape', async () => {
    const none = await call(`/v1/recommendations/${users[0]}`);
    expect(none.status).toBe(401);
    expect((await none.json<ErrorBody>()).error).toMatchObject({ code: 'unauthenticated', message: expect.stringContaining('Authorization: Bearer') });
    const unknown = await call(`/v1/recommendations/${users[0]}`, bearer('not-a-key-anyone-was-given'));
    expect(unknown.status).toBe(401);
    expect((await unknown.json<ErrorBody>()).error.message).toContain('not known');
    // Health stays open: load balancers and `kestrel start` probe it without a key.
    expect((await call('/healthz')).status).toBe(200);
  });

  it('serves a known key, and keeps its scopes: a read key cannot post events', async () => {
    await addKey('reader-key-0123456789', { name: 'reader', scopes: ['read'] });
    const ok = await call(`/v1/recommendations/${users[1]}?n=2`, bearer('reader-key-0123456789'));
    expect(ok.status).toBe(200);
    expect((await ok.json<RecommendationsResponse>()).items).toHaveLength(2);
    const post = await call('/v1/events', { method: 'POST', headers: { authorization: 'Bearer reader-key-0123456789', 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(403);
    expect((await post.json<ErrorBody>()).error.message).toContain("'write' scope");
  });

  it('treats a malformed key entry as no key', async () => {
    await addKey('broken-entry-key-0123', { scopes: ['read'] });
    expect((await call(`/v1/recommendations/${users[0]}`, bearer('broken-entry-key-0123'))).status).toBe(401);
  });

  it('stops a key past its rate limit with 429 and Retry-After, and leaves other keys alone', async () => {
    await addKey('busy-key-0123456789ab', { name: 'busy', scopes: ['read', 'write'] });
    await addKey('quiet-key-0123456789a', { name: 'quiet', scopes: ['read'] });
    // An unknown route behind the middleware: counted, then 404, without touching the core. The
    // limiter's windows are fixed (60 s): a run that straddles an edge restarts the count, so it
    // goes on for up to two windows' worth before it must have been stopped.
    let served = 0;
    let status = 404;
    while (served <= 2 * LIMIT + 1) {
      status = (await call('/v1/no-such-route', bearer('busy-key-0123456789ab'))).status;
      if (status !== 404) break;
      served++;
    }
    expect(status).toBe(429);
    expect(served).toBeGreaterThanOrEqual(LIMIT);
    const over = await call('/v1/no-such-route', bearer('busy-key-0123456789ab'));
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe(String(RATE_LIMIT_PERIOD_S));
    expect((await over.json<ErrorBody>()).error).toMatchObject({ code: 'rate_limited', message: expect.stringContaining("'busy'") });
    expect((await call('/v1/no-such-route', bearer('quiet-key-0123456789a'))).status).toBe(404);
  });
});

describe('experiments from the CONFIG namespace', () => {
  it('replace the EXPERIMENTS var when the entry exists, and the var rules again once it is gone', async () => {
    const experiment: Experiment = { id: 'kv-exp', arms: [{ name: 'left', weight: 1 }, { name: 'right', weight: 1 }] };
    const userId = users[2] ?? '';
    const fromVar: Experiment = { id: 'var-exp', arms: [{ name: 'only', weight: 1 }] };
    const overrides = { REQUIRE_API_KEY: 'false', EXPERIMENTS: JSON.stringify([fromVar]) };

    const before = await (await call(`/v1/recommendations/${userId}?n=1`, {}, overrides)).json<RecommendationsResponse>();
    expect(before).toMatchObject({ arm: 'only', experiment: 'var-exp' });

    await env.CONFIG.put(EXPERIMENTS_ENTRY, JSON.stringify([experiment]));
    forgetExperiments();
    const during = await (await call(`/v1/recommendations/${userId}?n=1`, {}, overrides)).json<RecommendationsResponse>();
    expect(during).toMatchObject({ arm: assignArm(userId, experiment).arm, experiment: 'kv-exp' });

    await env.CONFIG.delete(EXPERIMENTS_ENTRY);
    forgetExperiments();
    expect(await (await call(`/v1/recommendations/${userId}?n=1`, {}, overrides)).json<RecommendationsResponse>()).toMatchObject({ arm: 'only' });
  });

  it('serves the default arm with a warning when the KV entry is malformed', async () => {
    await env.CONFIG.put(EXPERIMENTS_ENTRY, '{ not json');
    forgetExperiments();
    const body = await (await call(`/v1/recommendations/${users[3]}?n=1`, {}, { REQUIRE_API_KEY: 'false' })).json<RecommendationsResponse>();
    expect(body.arm).toBe('default');
    expect(body.warning).toContain('not JSON');
  });
});

describe("the edge's key to the core", () => {
  const asEdge = { REQUIRE_API_KEY: 'false', CORE_URL: keyedCoreUrl };

  it('fetches slates from a core that requires a key, and falls back without the key', async () => {
    const userId = users[4] ?? '';
    const served = await (await call(`/v1/recommendations/${userId}?n=3`, {}, asEdge)).json<RecommendationsResponse>();
    expect(served).toMatchObject({ served_from: 'core' });
    expect(served.items).toHaveLength(3);

    const keyless = await (await call(`/v1/recommendations/${users[5]}?n=3`, {}, { ...asEdge, CORE_API_KEY: '' })).json<RecommendationsResponse>();
    expect(keyless.served_from).toBe('fallback');
    expect(keyless.warning).toContain('401');
  });

  it('forwards the events its sessions keep to a core that requires a key', async () => {
    const userId = `edge-key-user-${crypto.randomUUID()}`;
    const popular = await fetch(`${keyedCoreUrl}/v1/popular?n=1`, { headers: { authorization: `Bearer ${TEST_CORE_API_KEY}` } });
    const itemId = (await popular.json<{ items: { id: string }[] }>()).items[0]?.id ?? '';
    const event = { id: `edge-key-${crypto.randomUUID()}`, type: 'click', userId, itemId, timestamp: Date.now() };
    const res = await call('/v1/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) }, asEdge);
    expect(res.status).toBeLessThan(300);
    // The outbox delivers in the background (waitUntil, or the alarm): poll the core, with the key.
    expect(await waitForCoreUser(keyedCoreUrl, userId, { authorization: `Bearer ${TEST_CORE_API_KEY}` })).toBe(200);
    expect((await fetch(`${keyedCoreUrl}/v1/users/${encodeURIComponent(userId)}`)).status).toBe(401);
  });
});
