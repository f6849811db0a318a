// The exploration state of the edge (edge/bandit.ts), inside workerd, against the real core that
// test/edge/core-setup.ts started: impressions and clicks posted to POST /v1/events move an item's
// Beta posterior (and a client retry does not move it twice), counts decay with their half-life,
// an item that gets clicked is explored far more often than one that is shown and ignored, the
// recommendation path re-ranks with the posteriors it reads, and a broken bandit binding costs a
// warning, never recommendations or events on their way to the core, while a shard that is only
// late costs nothing the next request sees. Users are made-up ids (the core serves those too);
// bandit state is per test file. Behaviour only, never timings.
//
// The broken binding is a real one of the wrong class (SESSIONS in place of BANDIT): its objects
// answer every bandit call with workerd's own RPC error, as a shard that cannot serve would. With
// a local object, whether a 0 ms deadline passes before the answer is a race, so the late-shard
// test asserts what holds either way.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { rerank } from '../../core/domain/rerank.ts';
import { app } from '../../edge/app.ts';
import { basePrior, DECAY_STEP_MS, DEFAULT_PRIOR, HALF_LIFE_MS, readPosteriors, shardFor, shardOf } from '../../edge/bandit.ts';
import type { EventsResponse } from '../../edge/events.ts';
import { chooseArm } from '../../edge/experiments.ts';
import type { RecommendationsResponse } from '../../edge/recommend.ts';
import { sessionRerankInput } from '../../edge/recommend.ts';
import { readSlate, slateKey } from '../../edge/slate-cache.ts';
import { slateRerankOptions } from '../../edge/slate-rerank.ts';
import { waitForCoreUser } from './core-users.ts';

const coreUrl = inject('coreUrl');

/** Every read goes to the shards, and waits for them: what is asserted is the state, not a race. */
const BANDIT_VARS: Partial<Env> = { BANDIT_CACHE_MS: '0', BANDIT_TIMEOUT_MS: '20000' };
const EXPLORE_SHARE = 0.25;
const EXPERIMENTS = JSON.stringify([{ id: 'bandit', arms: [{ name: 'explore', weight: 1, params: { mmrLambda: 1, exploreShare: EXPLORE_SHARE } }] }]);
/** How long a test waits for the core's projector to store what the bus took (not asserted on). */

interface Answer<T> {
  status: number;
  body: T;
}

async function edge<T>(path: string, overrides: Partial<Env> = {}, init: RequestInit = {}): Promise<Answer<T>> {
  const ctx = createExecutionContext();
  const vars = { ...env, CORE_URL: coreUrl, CORE_TIMEOUT_MS: '20000', EXPERIMENTS, ...BANDIT_VARS, ...overrides };
  const res = await app.request(new Request(`https://edge.test${path}`, init), undefined, vars, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: await res.json<T>() };
}

function postEvents(events: Event[], overrides: Partial<Env> = {}): Promise<Answer<EventsResponse>> {
  return edge<EventsResponse>('/v1/events', overrides, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
}

function freshId(what: string): string {
  return `bandit-${what}-${crypto.randomUUID()}`;
}

function events(userId: string, itemId: string, type: string, count: number): Event[] {
  return Array.from({ length: count }, () => ({ id: freshId('event'), type, userId, itemId, timestamp: Date.now() }));
}

async function popularItems(n: number): Promise<string[]> {
  const res = await fetch(`${coreUrl}/v1/popular?n=${n}`);
  expect(res.status).toBe(200);
  return (await res.json<{ items: { id: string }[] }>()).items.map((i) => i.id);
}

async function counts(item: string): Promise<{ impressions: number; clicks: number }> {
  const got = await shardFor(env, item).readCounts([item]);
  return { impressions: got.impressions[0] ?? NaN, clicks: got.clicks[0] ?? NaN };
}

function noBackground(): (p: Promise<unknown>) => void {
  return (p) => void p.catch(() => undefined);
}


describe('the bandit state at the edge', () => {
  it('starts every item at the Beta(1, 30) prior and spreads items over the shards', () => {
    expect(DEFAULT_PRIOR.alpha).toBe(1);
    expect(DEFAULT_PRIOR.beta).toBeCloseTo(30, 9);
    // A catalogue that clicks 1 in 11 moves the prior toward Beta(1, 10) as impressions pile up.
    expect(basePrior({ impressions: 1e6, clicks: 1e6 / 11 }).beta).toBeCloseTo(10, 1);
    const perShard = new Array<number>(16).fill(0);
    for (let i = 0; i < 1600; i++) perShard[shardOf(`item-${i}`, 16)] = (perShard[shardOf(`item-${i}`, 16)] ?? 0) + 1;
    expect(Math.min(...perShard)).toBeGreaterThan(60);
    expect(Math.max(...perShard)).toBeLessThan(140);
  });

  it('counts posted impressions and clicks into the item posterior, once per event id', async () => {
    const u = freshId('user');
    const [a, b] = await popularItems(2);
    if (a === undefined || b === undefined) throw new Error('the core has fewer than 2 popular items');
    const [beforeA, beforeB] = [await counts(a), await counts(b)];

    const posted = [...events(u, a, 'impression', 20), ...events(u, a, 'click', 5), ...events(u, b, 'impression', 10), ...events(u, b, 'view', 3)];
    const res = await postEvents(posted);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: posted.length, delivery: { delivered: posted.length, pending: 0 } });
    expect(res.body.warning).toBeUndefined();

    const [afterA, afterB] = [await counts(a), await counts(b)];
    // Decay over the test's milliseconds is below 1e-6 of a count.
    expect(afterA.impressions - beforeA.impressions).toBeCloseTo(20, 3);
    expect(afterA.clicks - beforeA.clicks).toBeCloseTo(5, 3);
    expect(afterB.impressions - beforeB.impressions).toBeCloseTo(10, 3);
    // A view is not a click (it follows one): b has no new clicks.
    expect(afterB.clicks - beforeB.clicks).toBeCloseTo(0, 3);

    // A client retry of the same request is answered, forwarded and deduplicated, not counted again.
    const retry = await postEvents(posted);
    expect(retry.status).toBe(200);
    expect((await counts(a)).impressions).toBeCloseTo(afterA.impressions, 3);

    const read = await readPosteriors([a, b], { env: { ...env, ...BANDIT_VARS }, now: Date.now(), waitUntil: noBackground() });
    expect(read.warning).toBeUndefined();
    expect(read.alpha[0]).toBeCloseTo(read.prior.alpha + afterA.clicks, 3);
    expect(read.beta[0]).toBeCloseTo(read.prior.beta + afterA.impressions - afterA.clicks, 3);
    expect(read.alpha[1]).toBeCloseTo(read.prior.alpha + afterB.clicks, 3);
    expect(read.beta[1]).toBeCloseTo(read.prior.beta + afterB.impressions - afterB.clicks, 3);
  });

  it('halves the counts of an item every half-life', async () => {
    const item = freshId('item');
    const stub = shardFor(env, item);
    const t0 = Date.now();
    const outcomes = [
      ...Array.from({ length: 8 }, () => ({ id: freshId('event'), item, click: false })),
      ...Array.from({ length: 4 }, () => ({ id: freshId('event'), item, click: true })),
    ];
    expect(await stub.addOutcomes(outcomes, t0)).toEqual({ counted: 12, duplicate: 0 });
    expect(await stub.readCounts([item], t0)).toMatchObject({ impressions: [8], clicks: [4] });
    const later = await stub.readCounts([item], t0 + HALF_LIFE_MS);
    expect(later.impressions[0]).toBeCloseTo(4, 9);
    expect(later.clicks[0]).toBeCloseTo(2, 9);
    // Decay goes in whole hours: reads within the hour agree exactly.
    expect(await stub.readCounts([item], t0 + DECAY_STEP_MS - 1)).toMatchObject({ impressions: [8], clicks: [4] });
    // New counts add to what is left: 4 + 1 impressions one half-life on, and decay on from there.
    await stub.addOutcomes([{ id: freshId('event'), item, click: false }], t0 + HALF_LIFE_MS + 1000);
    expect((await stub.readCounts([item], t0 + HALF_LIFE_MS + 1000)).impressions[0]).toBeCloseTo(5, 9);
    expect((await stub.readCounts([item], t0 + 2 * HALF_LIFE_MS)).impressions[0]).toBeCloseTo(2.5, 9);
  });

  it('explores an item that gets clicked far more often than one that is shown and ignored', async () => {
    const u = freshId('user');
    const first = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=20`);
    expect(first.status).toBe(200);
    const cached = await readSlate(caches.default, slateKey(u, chooseArm(u, EXPERIMENTS).cacheKey), Date.now());
    if (cached === undefined) throw new Error('the slate was not cached');
    const { slate } = cached;
    // The two least relevant candidates: never among the relevance picks, only exploration shows them.
    const byScore = [...slate.candidates].sort((x, y) => x.score - y.score);
    const [clicked, ignored] = [byScore[0]?.item, byScore[1]?.item];
    if (clicked === undefined || ignored === undefined) throw new Error('the slate has fewer than 2 candidates');

    const viewer = freshId('user');
    const res = await postEvents([
      ...events(viewer, clicked, 'impression', 200), ...events(viewer, clicked, 'click', 80),
      ...events(viewer, ignored, 'impression', 200),
    ]);
    expect(res.status).toBe(200);
    expect(res.body.warning).toBeUndefined();

    const items = slate.candidates.map((c) => c.item);
    const posteriors = await readPosteriors(items, { env: { ...env, ...BANDIT_VARS }, now: Date.now(), waitUntil: noBackground() });
    expect(posteriors.warning).toBeUndefined();
    const empty = { interest: null, shown: {} };
    const input = sessionRerankInput(slate, empty, posteriors);
    const SEEDS = 200;
    const explored = new Map<string, number>();
    for (let s = 0; s < SEEDS; s++) {
      const result = rerank(input, slateRerankOptions({ k: 20, mmrLambda: 1, exploreShare: EXPLORE_SHARE, requestId: `seed-${s}` }));
      result.order.forEach((index, position) => {
        const item = items[index];
        if (result.explored[position] === 1 && item !== undefined) explored.set(item, (explored.get(item) ?? 0) + 1);
      });
    }
    const [clickedShare, ignoredShare] = [(explored.get(clicked) ?? 0) / SEEDS, (explored.get(ignored) ?? 0) / SEEDS];
    // 5 exploration slots among ~85 candidates: an untouched item gets about 1 in 17.
    expect(clickedShare).toBeGreaterThan(0.9);
    expect(ignoredShare).toBeLessThan(0.02);

    // The Worker re-ranks with the same posteriors: its answer is the reference's for its request id.
    const answer = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=20`);
    expect(answer.body.served_from).toBe('edge-cache');
    expect(answer.body.warning).toBeUndefined();
    const served = await readPosteriors(items, { env: { ...env, ...BANDIT_VARS }, now: Date.now(), waitUntil: noBackground() });
    const reference = rerank(sessionRerankInput(slate, empty, served), slateRerankOptions({ k: 20, mmrLambda: 1, exploreShare: EXPLORE_SHARE, requestId: answer.body.requestId }));
    expect(answer.body.items.map((i) => i.id)).toEqual(Array.from(reference.order, (i) => items[i]));
    expect(answer.body.items.filter((i) => i.explored).map((i) => i.id)).toContain(clicked);
  });

  it('answers the same items array from memory while its counts are fresh, and anew once they are read again', async () => {
    const items = [freshId('item'), freshId('item')];
    const vars = { ...env, BANDIT_CACHE_MS: '60000', BANDIT_TIMEOUT_MS: '20000' };
    const t0 = Date.now();
    const first = await readPosteriors(items, { env: vars, now: t0, waitUntil: noBackground() });
    expect(first.warning).toBeUndefined();
    expect(Array.from(first.alpha)).toEqual([first.prior.alpha, first.prior.alpha]);

    // Four clicks on the first item after that read: within BANDIT_CACHE_MS this isolate answers
    // from what it read (the very same arrays), past it the shard is read again.
    const clicks = Array.from({ length: 4 }, () => ({ id: freshId('event'), item: items[0] ?? '', click: true }));
    expect((await shardFor(env, items[0] ?? '').addOutcomes(clicks)).counted).toBe(4);
    const again = await readPosteriors(items, { env: vars, now: t0 + 1000, waitUntil: noBackground() });
    expect(again).toBe(first);
    // Another array of the same ids is not the kept one: it is computed (from the same cached counts).
    const copy = await readPosteriors([...items], { env: vars, now: t0 + 1000, waitUntil: noBackground() });
    expect(copy).not.toBe(first);
    expect(Array.from(copy.alpha)).toEqual(Array.from(first.alpha));

    const later = await readPosteriors(items, { env: vars, now: t0 + 60_000, waitUntil: noBackground() });
    expect(later.warning).toBeUndefined();
    expect(Array.from(later.alpha)).toEqual([later.prior.alpha + 4, later.prior.alpha]);
  });

  describe('with a bandit binding that cannot serve', () => {
    const broken: Partial<Env> = { BANDIT: env.SESSIONS as unknown as Env['BANDIT'] };

    it('serves counts an earlier read cached, including one that finished after its deadline', async () => {
      const items = [freshId('item'), freshId('item')];
      for (const [i, item] of items.entries()) {
        // 10 impressions; 0 clicks on the first item, 3 on the second.
        const outcomes = Array.from({ length: 10 + 3 * i }, (_, j) => ({ id: freshId('event'), item, click: j >= 10 }));
        expect((await shardFor(env, item).addOutcomes(outcomes)).counted).toBe(outcomes.length);
      }
      // A 0 ms deadline: the read may answer in time or finish in the background; either way there
      // is no warning, and the counts land in the isolate's cache.
      const background: Promise<unknown>[] = [];
      const cacheForAMinute = { BANDIT_CACHE_MS: '60000' };
      const late = await readPosteriors(items, { env: { ...env, ...cacheForAMinute, BANDIT_TIMEOUT_MS: '0' }, now: Date.now(), waitUntil: (p) => background.push(p) });
      expect(late.warning).toBeUndefined();
      await Promise.all(background);

      const cached = await readPosteriors(items, { env: { ...env, ...broken, ...cacheForAMinute }, now: Date.now(), waitUntil: noBackground() });
      expect(cached.warning).toBeUndefined();
      expect(Array.from(cached.alpha)).toEqual([cached.prior.alpha, cached.prior.alpha + 3]);
      expect(Array.from(cached.beta)).toEqual([cached.prior.beta + 10, cached.prior.beta + 7]);
    });

    it('still recommends, exploring with the prior, and says so', async () => {
      const u = freshId('user');
      const res = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=20`, broken);
      expect(res.status).toBe(200);
      expect(res.body.served_from).toBe('core');
      expect(res.body.items).toHaveLength(20);
      expect(res.body.items.filter((i) => i.explored)).toHaveLength(Math.round(EXPLORE_SHARE * 20));
      expect(res.body.warning).toMatch(/exploration state of \d+ of \d+ bandit shard\(s\) unavailable/);
    });

    it('still accepts the events and forwards them to the core, with a warning', async () => {
      const u = freshId('user');
      const [item] = await popularItems(1);
      if (item === undefined) throw new Error('the core has no popular items');
      const posted = [...events(u, item, 'impression', 2), ...events(u, item, 'click', 1)];
      const before = await counts(item);
      const res = await postEvents(posted, broken);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ accepted: 3, delivery: { delivered: 3, pending: 0 } });
      expect(res.body.warning).toMatch(/not updated.*kept and forwarded to the core/);
      const after = await counts(item);
      expect(after.impressions).toBeCloseTo(before.impressions, 3);
      expect(after.clicks).toBeCloseTo(before.clicks, 3);
      expect(await waitForCoreUser(coreUrl, u)).toBe(200);
      const again = await fetch(`${coreUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: posted }) });
      expect((await again.json<{ results: { status: string }[] }>()).results.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    });
  });
});
