// GET /v1/recommendations/{userId} in the Worker, inside workerd, against a real core that
// test/edge/core-setup.ts trained and started: the cache paths (core → edge-cache, stale and
// revalidated), the core going away (stale slate, popular fallback, empty fallback with a warning),
// A/B arms and their settings, input validation, and that the WASM re-rank in the answer is the
// TypeScript reference's order on the same slate and seed. Each test uses its own users, so the
// shared `caches.default` of the isolate does not couple them. Behaviour only, never timings.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import { assignArm } from '../../core/domain/ab.ts';
import type { Experiment } from '../../core/domain/ab.ts';
import { rerank } from '../../core/domain/rerank.ts';
import { decodeSlate, encodeSlate, SLATE_CONTENT_TYPE } from '../../core/domain/slate.ts';
import type { Slate } from '../../core/domain/slate.ts';
import { app } from '../../edge/app.ts';
import { DEFAULT_ARM, DEFAULT_EXPLORE_SHARE, DEFAULT_MMR_LAMBDA } from '../../edge/experiments.ts';
import { recommendationsJson } from '../../edge/recommend.ts';
import type { RecommendationsResponse } from '../../edge/recommend.ts';
import { forgetRememberedSlates, popularKey, readSlate, slateKey, writeSlate } from '../../edge/slate-cache.ts';
import { rerankSlate, slateRerankInput, slateRerankOptions } from '../../edge/slate-rerank.ts';

const coreUrl = inject('coreUrl');
const deadCoreUrl = inject('deadCoreUrl');
const users = inject('users');

/** A generous deadline: the tests assert what is served, not how fast (a test's core may be cold). */
const TEST_TIMEOUT_MS = '20000';

interface Answer<T> {
  status: number;
  body: T;
}

/** Calls the Worker with `overrides` on top of wrangler.toml's vars, and waits for its background work. */
async function edge<T = RecommendationsResponse>(path: string, overrides: Partial<Env> = {}, init: RequestInit = {}): Promise<Answer<T>> {
  const ctx = createExecutionContext();
  const request = new Request(`https://edge.test${path}`, init);
  const res = await app.request(request, undefined, { ...env, CORE_URL: coreUrl, CORE_TIMEOUT_MS: TEST_TIMEOUT_MS, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: await res.json<T>() };
}

function user(i: number): string {
  const u = users[i];
  if (u === undefined) throw new Error(`the dataset has fewer than ${i + 1} active users`);
  return u;
}

async function coreSlate(userId: string): Promise<{ slate: Slate; bytes: Uint8Array }> {
  const res = await fetch(`${coreUrl}/v1/candidates/${encodeURIComponent(userId)}?n=500`, { headers: { accept: SLATE_CONTENT_TYPE } });
  expect(res.status).toBe(200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { slate: decodeSlate(bytes), bytes };
}

async function corePopular(n: number): Promise<string[]> {
  const res = await fetch(`${coreUrl}/v1/popular?n=${n}`);
  expect(res.status).toBe(200);
  return (await res.json<{ items: { id: string }[] }>()).items.map((i) => i.id);
}

/** An entry for (user, default arm) fetched long enough ago to be past its TTL. */
async function writeExpired(userId: string, slate: Slate): Promise<void> {
  const bytes = encodeSlate(slate);
  await writeSlate(caches.default, slateKey(userId, DEFAULT_ARM), bytes, slate, Date.now() - (slate.ttlSeconds + 60) * 1000);
}

describe('GET /v1/recommendations/{userId} at the edge', () => {
  it('fetches the slate from the core on a miss, then serves it from the edge cache', async () => {
    const u = user(0);
    const first = await edge(`/v1/recommendations/${u}?n=20`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ userId: u, arm: DEFAULT_ARM, served_from: 'core' });
    expect(first.body.warning).toBeUndefined();
    expect(first.body.items).toHaveLength(20);
    expect(new Set(first.body.items.map((i) => i.id)).size).toBe(20);

    const { slate } = await coreSlate(u);
    expect(first.body.modelVersion).toBe(slate.modelVersion);
    const slateIds = new Set(slate.candidates.map((c) => c.item));
    for (const item of first.body.items) {
      expect(slateIds.has(item.id), `${item.id} is not in the core's slate`).toBe(true);
      expect(Number.isFinite(item.score)).toBe(true);
      expect(Array.isArray(item.categories)).toBe(true);
    }
    // round(0.1 · 20) slots explore by default.
    expect(first.body.items.filter((i) => i.explored)).toHaveLength(Math.round(DEFAULT_EXPLORE_SHARE * 20));

    const second = await edge(`/v1/recommendations/${u}?n=20`);
    expect(second.body).toMatchObject({ served_from: 'edge-cache', modelVersion: first.body.modelVersion, arm: DEFAULT_ARM });
    expect(second.body.requestId).not.toBe(first.body.requestId);
    expect(second.body.items).toHaveLength(20);
    for (const item of second.body.items) expect(slateIds.has(item.id)).toBe(true);

    // A smaller n re-ranks the same cached slate.
    const three = await edge(`/v1/recommendations/${u}?n=3`);
    expect(three.body.served_from).toBe('edge-cache');
    expect(three.body.items).toHaveLength(3);
  });

  it('serves a fresh slate from the isolate memory without the Cache API, and reads the Cache API once it is gone from memory', async () => {
    const u = user(8);
    expect((await edge(`/v1/recommendations/${u}?n=5`)).body.served_from).toBe('core');
    // Gone from the Cache API (evicted, say) but still decoded in this isolate: still a hit.
    expect(await caches.default.delete(slateKey(u, DEFAULT_ARM))).toBe(true);
    const fromMemory = await edge(`/v1/recommendations/${u}?n=5`);
    expect(fromMemory.body).toMatchObject({ served_from: 'edge-cache' });
    expect(fromMemory.body.items).toHaveLength(5);
    // Forgotten by the isolate too: a miss, fetched from the core again.
    forgetRememberedSlates();
    expect((await edge(`/v1/recommendations/${u}?n=5`)).body.served_from).toBe('core');
    // Expired in memory: the Cache API entry is what decides (here, one written as expired → stale).
    const { slate } = await coreSlate(u);
    await writeExpired(u, slate);
    expect((await edge(`/v1/recommendations/${u}?n=5`)).body.served_from).toBe('stale');
  });

  it('answers with the WASM re-rank that equals the TypeScript reference on the cached slate and the request seed', async () => {
    const u = user(1);
    await edge(`/v1/recommendations/${u}?n=30`);
    const hit = await edge(`/v1/recommendations/${u}?n=30`);
    expect(hit.body.served_from).toBe('edge-cache');
    const cached = await readSlate(caches.default, slateKey(u, DEFAULT_ARM), Date.now());
    if (cached === undefined) throw new Error('the slate is not in the cache');
    const { slate } = cached;
    const reference = rerank(slateRerankInput(slate), slateRerankOptions({
      k: 30, mmrLambda: DEFAULT_MMR_LAMBDA, exploreShare: DEFAULT_EXPLORE_SHARE, requestId: hit.body.requestId,
    }));
    expect(hit.body.items.map((i) => i.id)).toEqual(Array.from(reference.order, (i) => slate.candidates[i]?.item));
    expect(hit.body.items.map((i) => i.explored)).toEqual(Array.from(reference.explored, (e) => e === 1));
    expect(hit.body.items.map((i) => i.score)).toEqual(Array.from(reference.order, (i) => slate.candidates[i]?.score));
  });

  it('writes the answer as JSON.stringify would, with the items a slate shares between answers', async () => {
    const u = user(1);
    const { slate } = await coreSlate(u);
    const settings = { k: 25, mmrLambda: DEFAULT_MMR_LAMBDA, exploreShare: 0.2, requestId: 'r-1' };
    const first = await rerankSlate(slate, settings);
    const again = await rerankSlate(slate, { ...settings, requestId: 'r-2' });
    // The same candidate placed the same way is the same frozen object in both answers.
    const byKey = new Map(first.map((item) => [`${item.id}/${item.explored}`, item]));
    expect(again.some((item) => byKey.get(`${item.id}/${item.explored}`) === item)).toBe(true);
    expect(Object.isFrozen(first[0])).toBe(true);
    const bodies: RecommendationsResponse[] = [
      { userId: u, items: first, requestId: 'r-1', arm: 'a "quoted" arm', experiment: 'exp/ü', modelVersion: slate.modelVersion, served_from: 'edge-cache' },
      { userId: u, items: again.slice().reverse(), requestId: 'r-2', arm: DEFAULT_ARM, modelVersion: slate.modelVersion, served_from: 'stale', warning: 'line\nbreak; \u2028 and \\; a field that looks like "items":0' },
      { userId: u, items: [{ id: 'popular-1', score: 0.5, categories: ['c'], explored: false }], requestId: 'r-3', arm: DEFAULT_ARM, modelVersion: null, served_from: 'fallback', warning: 'core down' },
      { userId: u, items: [], requestId: 'r-4', arm: DEFAULT_ARM, modelVersion: null, served_from: 'fallback' },
    ];
    for (const body of bodies) {
      for (let twice = 0; twice < 2; twice++) expect(JSON.parse(recommendationsJson(body))).toEqual(JSON.parse(JSON.stringify(body)));
    }
  });

  it('serves an expired slate as stale, revalidates it in the background, then serves the new one', async () => {
    const u = user(2);
    const { slate } = await coreSlate(u);
    // A recognisably old entry: another model version, only the first 25 candidates.
    const old: Slate = { ...slate, modelVersion: 'an-older-model', candidates: slate.candidates.slice(0, 25) };
    await writeExpired(u, old);
    const stale = await edge(`/v1/recommendations/${u}?n=20`);
    expect(stale.body).toMatchObject({ served_from: 'stale', modelVersion: 'an-older-model' });
    const oldIds = new Set(old.candidates.map((c) => c.item));
    expect(stale.body.items.every((i) => oldIds.has(i.id))).toBe(true);

    // The background revalidation (waited for by `edge`) stored the core's slate.
    const refreshed = await readSlate(caches.default, slateKey(u, DEFAULT_ARM), Date.now());
    expect(refreshed?.fresh).toBe(true);
    expect(refreshed?.slate.modelVersion).toBe(slate.modelVersion);
    expect(refreshed?.slate.candidates.length).toBe(slate.candidates.length);
    const next = await edge(`/v1/recommendations/${u}?n=20`);
    expect(next.body).toMatchObject({ served_from: 'edge-cache', modelVersion: slate.modelVersion });
  });

  describe('with the core down', () => {
    const down = { CORE_URL: deadCoreUrl, CORE_TIMEOUT_MS: '2000' };

    it('still serves a cached user: fresh from the edge cache, expired as stale (and keeps the entry)', async () => {
      const fresh = user(3);
      const warm = await edge(`/v1/recommendations/${fresh}?n=10`);
      expect(warm.body.served_from).toBe('core');
      const hit = await edge(`/v1/recommendations/${fresh}?n=10`, down);
      expect(hit.body).toMatchObject({ served_from: 'edge-cache', modelVersion: warm.body.modelVersion });
      expect(hit.body.items).toHaveLength(10);

      const expired = user(4);
      const { slate } = await coreSlate(expired);
      await writeExpired(expired, slate);
      for (let i = 0; i < 2; i++) {
        const stale = await edge(`/v1/recommendations/${expired}?n=10`, down);
        expect(stale.status).toBe(200);
        expect(stale.body).toMatchObject({ served_from: 'stale', modelVersion: slate.modelVersion });
        expect(stale.body.items).toHaveLength(10);
      }
    });

    it('gives an uncached user the popular list this location cached while the core was up', async () => {
      // Any answer from the core refreshes the location's popular list when it has none.
      await edge(`/v1/recommendations/${user(5)}?n=5`);
      const res = await edge('/v1/recommendations/never-seen-at-this-edge?n=10', down);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ served_from: 'fallback', arm: DEFAULT_ARM, userId: 'never-seen-at-this-edge' });
      expect(res.body.warning).toMatch(/core is unreachable.*popular list cached/);
      expect(res.body.items.map((i) => i.id)).toEqual(await corePopular(10));
      expect(res.body.items.every((i) => !i.explored)).toBe(true);
      expect(typeof res.body.modelVersion).toBe('string');
      expect(res.body.requestId).toMatch(/.+/);
    });

    it('answers 200 with an empty list and a warning when nothing at all is cached', async () => {
      // Another colo, where nothing was cached. `colo` is set by Cloudflare on incoming requests;
      // RequestInit's cf type only lists what a subrequest may set, hence the cast.
      const init = { cf: { colo: 'XYZ' } } as RequestInit;
      await caches.default.delete(popularKey('XYZ'));
      const res = await edge('/v1/recommendations/nobody-cached?n=10', down, init);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ served_from: 'fallback', items: [], modelVersion: null, arm: DEFAULT_ARM });
      expect(res.body.warning).toMatch(/core is unreachable.*no popular list is cached/);
    });
  });

  describe('A/B arms', () => {
    const experiment: Experiment = {
      id: 'rerank-2026',
      arms: [
        { name: 'relevance', weight: 1, params: { mmrLambda: 1, exploreShare: 0 } },
        { name: 'explore', weight: 1, params: { exploreShare: 0.5 } },
      ],
    };
    const EXPERIMENTS = JSON.stringify([experiment]);

    /** A user in `arm`: an active one when there is one, else a made-up id (the core serves those too). */
    function userInArm(arm: string): string {
      const known = users.slice(6).find((u) => assignArm(u, experiment).arm === arm);
      if (known !== undefined) return known;
      for (let i = 0; ; i++) if (assignArm(`ab-probe-${i}`, experiment).arm === arm) return `ab-probe-${i}`;
    }

    it.each([
      ['relevance', 0],
      ['explore', 5],
    ])('assigns arm %s deterministically and applies its settings (%i explored of 10)', async (arm, explored) => {
      const u = userInArm(arm);
      const res = await edge(`/v1/recommendations/${u}?n=10`, { EXPERIMENTS });
      expect(res.body).toMatchObject({ arm, experiment: experiment.id, served_from: 'core' });
      expect(res.body.items).toHaveLength(10);
      expect(res.body.items.filter((i) => i.explored)).toHaveLength(explored);
      if (arm === 'relevance') {
        // λ = 1 and no exploration: pure core-score order.
        const scores = res.body.items.map((i) => i.score);
        expect(scores).toEqual([...scores].sort((a, b) => b - a));
      }
      // The slate is cached per (user, experiment/arm), apart from the user's default-arm entry.
      expect(await readSlate(caches.default, slateKey(u, `${experiment.id}/${arm}`), Date.now())).toBeDefined();
      expect(await readSlate(caches.default, slateKey(u, DEFAULT_ARM), Date.now())).toBeUndefined();
      const again = await edge(`/v1/recommendations/${u}?n=10`, { EXPERIMENTS });
      expect(again.body).toMatchObject({ arm, served_from: 'edge-cache' });
    });

    it('treats a cached slate of another model version than the arm pins as a miss', async () => {
      const u = user(0);
      const pinned = JSON.stringify([{ id: 'pin', arms: [{ name: 'pinned', weight: 1, params: { modelVersion: 'not-the-current-model' } }] }]);
      const { slate } = await coreSlate(u);
      await writeSlate(caches.default, slateKey(u, 'pin/pinned'), encodeSlate(slate), slate, Date.now());
      const res = await edge(`/v1/recommendations/${u}?n=5`, { EXPERIMENTS: pinned });
      expect(res.body).toMatchObject({ arm: 'pinned', served_from: 'core', modelVersion: slate.modelVersion });
      expect(res.body.warning).toContain('pins model not-the-current-model');
    });

    it('serves the default arm with a warning when EXPERIMENTS is malformed', async () => {
      const res = await edge(`/v1/recommendations/${user(1)}?n=5`, { EXPERIMENTS: '[{"id":"x","arms":[{"name":"a","weight":1,"params":{"mmrLambda":3}}]}]' });
      expect(res.status).toBe(200);
      expect(res.body.arm).toBe(DEFAULT_ARM);
      expect(res.body.warning).toContain('EXPERIMENTS[0].arms[0].params.mmrLambda must be a number in [0, 1], got 3');
    });
  });

  describe('input validation', () => {
    it.each(['0', '501', 'abc', '2.5', '-1', ''])('rejects n=%s with a 400 that names n', async (n) => {
      const res = await edge<{ error: { code: string; message: string; details: { path: string }[] } }>(`/v1/recommendations/${user(0)}?n=${n}`);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.message).toContain('n must be a whole number from 1 to 500');
      expect(res.body.error.details[0]?.path).toBe('n');
    });

    it('rejects a user id the core would not accept', async () => {
      const bad = await edge<{ error: { code: string; message: string } }>('/v1/recommendations/a%20b');
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatchObject({ code: 'invalid_request' });
      expect(bad.body.error.message).toContain('has characters other than');
      const long = await edge<{ error: { message: string } }>(`/v1/recommendations/${'x'.repeat(257)}`);
      expect(long.status).toBe(400);
      expect(long.body.error.message).toContain('over the limit of 256');
    });

    it('defaults n to 20', async () => {
      const res = await edge(`/v1/recommendations/${user(3)}`);
      expect(res.status).toBe(200);
      expect(res.body.items).toHaveLength(20);
    });
  });
});
