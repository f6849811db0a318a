// POST /v1/events in the Worker, inside workerd, against the real core test/edge/core-setup.ts
// started: events the edge accepts reach the core (read back through the core's own API: the user
// the events name exists there, and re-sending the events directly is answered `duplicate`); with
// the core down they stay in the session's outbox and are delivered by the retry alarm once it is
// back; an item clicked in session moves similar items up on the next recommendations; invalid
// entries get per-entry errors without holding up the valid ones. Users 0–5 belong to
// recommend.test.ts; the event tests use users 6–9 and fresh ids. Behaviour only, never timings.
import { createExecutionContext, env, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import { assignArm } from '../../core/domain/ab.ts';
import type { Experiment } from '../../core/domain/ab.ts';
import { rerank } from '../../core/domain/rerank.ts';
import type { Event } from '../../core/domain/event.ts';
import { app } from '../../edge/app.ts';
import type { ApiErrorBody, EventsResponse } from '../../edge/events.ts';
import { chooseArm } from '../../edge/experiments.ts';
import type { RecommendationsResponse } from '../../edge/recommend.ts';
import { sessionRerankInput } from '../../edge/recommend.ts';
import type { SessionState } from '../../edge/session.ts';
import { forgetSession, keepSession, keptSession } from '../../edge/session-memory.ts';
import { readSlate, slateKey } from '../../edge/slate-cache.ts';
import { slateRerankOptions } from '../../edge/slate-rerank.ts';
import { waitForCoreUser } from './core-users.ts';

const coreUrl = inject('coreUrl');
const deadCoreUrl = inject('deadCoreUrl');
const users = inject('users');

const TEST_TIMEOUT_MS = '20000';
/** How long a test waits for the core's projector to store what the bus took (not asserted on). */
/** One arm, relevance order and no exploration: the order depends on the scores alone. */
const EXPERIMENTS = JSON.stringify([{ id: 'session', arms: [{ name: 'relevance', weight: 1, params: { mmrLambda: 1, exploreShare: 0 } }] }]);

interface Answer<T> {
  status: number;
  body: T;
}

async function edge<T>(path: string, overrides: Partial<Env> = {}, init: RequestInit = {}): Promise<Answer<T>> {
  const ctx = createExecutionContext();
  const res = await app.request(new Request(`https://edge.test${path}`, init), undefined, { ...env, CORE_URL: coreUrl, CORE_TIMEOUT_MS: TEST_TIMEOUT_MS, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: await res.json<T>() };
}

function postEvents<T = EventsResponse>(body: unknown, overrides: Partial<Env> = {}): Promise<Answer<T>> {
  return edge<T>('/v1/events', overrides, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function user(i: number): string {
  const u = users[i];
  if (u === undefined) throw new Error(`the dataset has fewer than ${i + 1} active users`);
  return u;
}

function freshId(what: string): string {
  return `edge-${what}-${crypto.randomUUID()}`;
}

function event(userId: string, itemId: string, type = 'click', extra: Partial<Event> = {}): Event {
  return { id: freshId('event'), type, userId, itemId, timestamp: Date.now(), ...extra };
}

async function popularItems(n: number): Promise<string[]> {
  const res = await fetch(`${coreUrl}/v1/popular?n=${n}`);
  expect(res.status).toBe(200);
  return (await res.json<{ items: { id: string }[] }>()).items.map((i) => i.id);
}


/** The core's answer per event when sent again directly: `duplicate` means it already had it. */
async function coreStatuses(events: Event[]): Promise<string[]> {
  const res = await fetch(`${coreUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
  expect(res.ok).toBe(true);
  return (await res.json<{ results: { status: string }[] }>()).results.map((r) => r.status);
}

function session(userId: string): DurableObjectStub<SessionState> {
  return env.SESSIONS.get(env.SESSIONS.idFromName(userId));
}

describe('POST /v1/events at the edge', () => {
  it('keeps the events in the session and forwards them to the core', async () => {
    const u = freshId('user');
    const [a, b] = await popularItems(2);
    if (a === undefined || b === undefined) throw new Error('the core has fewer than 2 popular items');
    const events = [event(u, a, 'impression'), event(u, a, 'click'), event(u, b, 'impression')];
    const res = await postEvents({ events });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 3, duplicate: 0, rejected: 0, delivery: { delivered: 3, pending: 0 } });
    expect(res.body.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted']);

    expect(await waitForCoreUser(coreUrl, u)).toBe(200);
    expect(await coreStatuses(events)).toEqual(['duplicate', 'duplicate', 'duplicate']);

    const stub = session(u);
    expect((await stub.recent()).map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(await stub.pending()).toEqual([]);
    expect((await stub.snapshot()).shown).toEqual({ [a]: 1, [b]: 1 });
  });

  it('tags each event with the A/B arm its user is served, and keeps an arm the client set', async () => {
    const experiment: Experiment = { id: 'events-exp', arms: [{ name: 'red', weight: 1 }, { name: 'blue', weight: 1 }] };
    const u = freshId('user');
    const [a] = await popularItems(1);
    if (a === undefined) throw new Error('the core has no popular items');
    const plain = event(u, a, 'impression', { context: { page: 'home' } });
    const own = event(u, a, 'click', { context: { arm: 'client-arm' } });
    const res = await postEvents({ events: [plain, own] }, { EXPERIMENTS: JSON.stringify([experiment]) });
    expect(res.status).toBe(200);
    const recent = await session(u).recent();
    expect(recent.map((e) => e.context)).toEqual([
      { page: 'home', arm: assignArm(u, experiment).arm, experiment: 'events-exp' },
      { arm: 'client-arm' },
    ]);
    // Without experiments the arm is the default one.
    const bare = event(freshId('user'), a, 'impression');
    await postEvents({ events: [bare] });
    expect((await session(bare.userId).recent())[0]?.context).toEqual({ arm: 'default' });
  });

  it('accepts one event on its own, and counts a repeated id in one request as a duplicate', async () => {
    const u = freshId('user');
    const [item] = await popularItems(1);
    if (item === undefined) throw new Error('the core has no popular items');
    const one = event(u, item, 'view');
    const single = await postEvents(one);
    expect(single.status).toBe(200);
    expect(single.body).toMatchObject({ accepted: 1, results: [{ index: 0, id: one.id, status: 'accepted' }] });

    const again = event(u, item, 'click');
    const twice = await postEvents({ events: [again, again] });
    expect(twice.status).toBe(200);
    expect(twice.body).toMatchObject({ accepted: 1, duplicate: 1 });
    expect(twice.body.results.map((r) => r.status)).toEqual(['accepted', 'duplicate']);
    expect((await session(u).recent()).map((e) => e.id)).toEqual([one.id, again.id]);
  });

  it('reports invalid events one by one and keeps the valid ones', async () => {
    const u = freshId('user');
    const [item] = await popularItems(1);
    if (item === undefined) throw new Error('the core has no popular items');
    const good = [event(u, item, 'view'), event(u, item, 'click')];
    const missingUser: Record<string, unknown> = { ...event(u, item), userId: undefined };
    const res = await postEvents({
      events: [
        good[0],
        missingUser,
        event(u, item, 'teleport'),
        event(u, item, 'click', { timestamp: Date.now() + 7 * 86_400_000 }),
        { ...event(u, item), colour: 'red' },
        good[1],
      ],
    });
    expect(res.status).toBe(207);
    expect(res.body).toMatchObject({ accepted: 2, rejected: 4, delivery: { delivered: 2, pending: 0 } });
    expect(res.body.results.map((r) => r.status)).toEqual(['accepted', 'rejected', 'rejected', 'rejected', 'rejected', 'accepted']);
    const errorsOf = (i: number) => res.body.results[i]?.errors ?? [];
    expect(errorsOf(1).map((e) => e.path)).toContain('events[1].userId');
    expect(errorsOf(2)[0]?.message).toMatch(/^events\[2\]\.type "teleport" is not a configured event type/);
    expect(errorsOf(3)[0]?.message).toMatch(/^events\[3\]\.timestamp .*more than 24h in the future/);
    expect(errorsOf(4)[0]?.path).toMatch(/^events\[4\]/);

    expect(await waitForCoreUser(coreUrl, u)).toBe(200);
    expect(await coreStatuses(good)).toEqual(['duplicate', 'duplicate']);
    expect((await session(u).recent()).map((e) => e.id)).toEqual(good.map((e) => e.id));
  });

  it('answers a bad single event, a bad envelope and malformed JSON in the core error shape', async () => {
    const single = await postEvents<ApiErrorBody>({ id: 'e1', type: 'click', userId: 'u', timestamp: Date.now() });
    expect(single.status).toBe(400);
    expect(single.body.error.code).toBe('invalid_request');
    expect(single.body.error.details?.map((d) => d.path)).toContain('itemId');

    const all = await postEvents<EventsResponse>({ events: [{ id: 'x' }] });
    expect(all.status).toBe(422);
    expect(all.body).toMatchObject({ accepted: 0, rejected: 1 });

    const empty = await postEvents<ApiErrorBody>({ events: [] });
    expect(empty.status).toBe(422);
    expect(empty.body.error.message).toMatch(/events is empty/);

    const malformed = await edge<ApiErrorBody>('/v1/events', {}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"events": [' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('malformed_json');
  });

  it('keeps events in the outbox while the core is down and delivers them on a later alarm', async () => {
    const u = freshId('user');
    const [a, b] = await popularItems(2);
    if (a === undefined || b === undefined) throw new Error('the core has fewer than 2 popular items');
    const events = [event(u, a, 'click'), event(u, b, 'purchase')];
    const res = await postEvents({ events }, { CORE_URL: deadCoreUrl });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 2, delivery: { delivered: 0, pending: 2 } });
    expect(res.body.delivery.warning).toMatch(/kept and retried/);

    const stub = session(u);
    expect((await stub.pending()).map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(await runInDurableObject(stub, (_: SessionState, state) => state.storage.getAlarm())).not.toBeNull();
    // A retry while the core is still down keeps them, and sets the next alarm.
    await runDurableObjectAlarm(stub);
    expect((await stub.pending()).map((e) => e.id)).toEqual(events.map((e) => e.id));
    const state = await runInDurableObject(stub, async (_: SessionState, s) => ({ alarm: await s.storage.getAlarm(), attempt: await s.storage.get<number>('attempt') }));
    expect(state.alarm).not.toBeNull();
    expect(state.attempt).toBeGreaterThanOrEqual(2);
    expect((await fetch(`${coreUrl}/v1/users/${encodeURIComponent(u)}`)).status).toBe(404);
    // The next retry is due in ~2 s; a loaded machine could let it fire by itself in the middle of
    // what follows. Pushed out, it runs only when the test runs it.
    await runInDurableObject(stub, (_: SessionState, s) => s.storage.setAlarm(Date.now() + 600_000));

    // The core is back: an event recorded now waits with the others for the scheduled retry
    // (the client is not made to wait on a core just found down), and the alarm delivers all three.
    const later = event(u, a, 'view');
    const queued = await postEvents({ events: [later] });
    expect(queued.status).toBe(200);
    expect(queued.body).toMatchObject({ accepted: 1, delivery: { delivered: 0, pending: 3 } });
    await runDurableObjectAlarm(stub);
    expect(await stub.pending()).toEqual([]);
    expect(await runInDurableObject(stub, (_: SessionState, s) => s.storage.getAlarm())).toBeNull();
    expect(await waitForCoreUser(coreUrl, u)).toBe(200);
    expect(await coreStatuses([...events, later])).toEqual(['duplicate', 'duplicate', 'duplicate']);
  });
});

describe('the session in GET /v1/recommendations', () => {
  it('moves items similar to one clicked in session up on the next request', async () => {
    const u = user(6);
    const before = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=500`, { EXPERIMENTS });
    expect(before.status).toBe(200);
    const cached = await readSlate(caches.default, slateKey(u, chooseArm(u, EXPERIMENTS).cacheKey), Date.now());
    if (cached === undefined) throw new Error('the slate was not cached');
    const { slate } = cached;
    const orderBefore = before.body.items.map((i) => i.id);
    expect(orderBefore).toHaveLength(slate.candidates.length);

    // Click an item from the lower half; its nearest neighbours in embedding space should rise.
    const clicked = slate.candidates.find((c) => c.item === orderBefore[Math.floor(orderBefore.length * 0.75)]);
    if (clicked === undefined) throw new Error('the clicked item is not in the slate');
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, d) => s + v * (y[d] ?? 0), 0);
    const neighbours = slate.candidates
      .filter((c) => c.item !== clicked.item)
      .map((c) => ({ id: c.item, sim: dot(c.embedding, clicked.embedding) }))
      .sort((x, y) => y.sim - x.sim)
      .slice(0, 10)
      .map((c) => c.id);

    const posted = await postEvents({ events: [event(u, clicked.item, 'click')] }, { EXPERIMENTS });
    expect(posted.status).toBe(200);
    const snapshot = await session(u).snapshot();
    expect(snapshot.interest).toHaveLength(slate.dim);

    const after = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=500`, { EXPERIMENTS });
    expect(after.body.served_from).toBe('edge-cache');
    const orderAfter = after.body.items.map((i) => i.id);
    const rankSum = (order: string[]) => neighbours.reduce((s, id) => s + order.indexOf(id), 0);
    expect(rankSum(orderAfter)).toBeLessThan(rankSum(orderBefore));
    expect(orderAfter.indexOf(clicked.item)).toBeLessThan(orderBefore.indexOf(clicked.item));

    // And the answer is the TypeScript reference's re-rank with the session's signals.
    const reference = rerank(sessionRerankInput(slate, snapshot), slateRerankOptions({ k: 500, mmrLambda: 1, exploreShare: 0, requestId: after.body.requestId }));
    expect(orderAfter).toEqual(Array.from(reference.order, (i) => slate.candidates[i]?.item));
  });

  it('reuses the session it read for SESSION_CACHE_MS: another isolate\'s events show once that has passed, or at once with 0', async () => {
    const u = user(8);
    const keep = { EXPERIMENTS, SESSION_CACHE_MS: '60000' };
    const first = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=50`, keep);
    expect(first.status).toBe(200);
    const cached = await readSlate(caches.default, slateKey(u, chooseArm(u, EXPERIMENTS).cacheKey), Date.now());
    if (cached === undefined) throw new Error('the slate was not cached');
    const { slate } = cached;
    const clicked = slate.candidates[slate.candidates.length - 1];
    if (clicked === undefined) throw new Error('empty slate');
    const rerankedWith = (snapshot: { interest: number[] | null; shown: Record<string, number> }, requestId: string) =>
      Array.from(rerank(sessionRerankInput(slate, snapshot), slateRerankOptions({ k: 50, mmrLambda: 1, exploreShare: 0, requestId })).order, (i) => slate.candidates[i]?.item);

    // A click recorded straight on the object, as through another isolate: this one does not see it.
    const report = await session(u).record([{ event: event(u, clicked.item, 'click'), embedding: Array.from(clicked.embedding) }], coreUrl);
    expect(report.snapshot.interest).toHaveLength(slate.dim);
    const kept = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=50`, keep);
    expect(kept.body.items.map((i) => i.id)).toEqual(rerankedWith({ interest: null, shown: {} }, kept.body.requestId));
    // Reading the object on every request sees it.
    const read = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=50`, { EXPERIMENTS, SESSION_CACHE_MS: '0' });
    expect(read.body.items.map((i) => i.id)).toEqual(rerankedWith(report.snapshot, read.body.requestId));
    expect(read.body.items.map((i) => i.id)).not.toEqual(kept.body.items.map((i) => i.id));
  });

  it('keeps the newer of a session read and a session write, for SESSION_CACHE_MS', () => {
    const u = freshId('user');
    const older = { interest: null, shown: { a: 1 } };
    const newer = { interest: null, shown: { a: 2 } };
    keepSession(u, newer, 1_000);
    // A read that started before the write this isolate kept does not replace it.
    keepSession(u, older, 900);
    expect(keptSession(u, 1_500, 1_000)).toBe(newer);
    expect(keptSession(u, 2_000, 1_000)).toBeUndefined();
    forgetSession(u);
    expect(keptSession(u, 1_001, 1_000)).toBeUndefined();
  });

  it('lowers an item the session was already shown', async () => {
    const u = user(7);
    const before = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=20`, { EXPERIMENTS });
    const top = before.body.items[0]?.id;
    if (top === undefined) throw new Error('no recommendations');
    const impressions = Array.from({ length: 30 }, () => event(u, top, 'impression'));
    expect((await postEvents({ events: impressions }, { EXPERIMENTS })).status).toBe(200);
    expect((await session(u).snapshot()).shown[top]).toBe(30);
    const after = await edge<RecommendationsResponse>(`/v1/recommendations/${u}?n=20`, { EXPERIMENTS });
    const rankAfter = after.body.items.findIndex((i) => i.id === top);
    expect(rankAfter === -1 || rankAfter > 0).toBe(true);
  });
});
