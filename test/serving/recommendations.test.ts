// The serving path end to end, in process: data the project generates is imported into a core's
// catalog, two models are trained from it with `kestrel train --from-bus`, and a core with
// --models answers /v1/recommendations, /v1/candidates, /similar, /popular and /metrics over HTTP,
// picks up new events per request, hides hidden items after a refresh, and swaps models live.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import type { Event } from '../../core/domain/event.ts';
import { decodeSlate, SLATE_CONTENT_TYPE, slateFromJson } from '../../core/domain/slate.ts';
import { openRegistry, VERSIONS_DIR } from '../../core/models/index.ts';
import { dropMilvusCollections, milvusClient, openMilvusIndex } from '../../core/retrieval/milvus-index.ts';
import { openRuntime } from '../../core/runtime.ts';
import type { CoreRuntime } from '../../core/runtime.ts';
import { startCore } from '../../core/server.ts';
import type { RunningCore } from '../../core/server.ts';
import { DEFAULT_ENGINE_CONFIG, parseEngineConfig, ServingHost } from '../../core/serving/index.ts';
import { EnginePool } from '../../core/serving/engine-pool.ts';
import type { RecommendResponse } from '../../core/serving/index.ts';
import type { ServedFeatures } from '../../core/serving/engine.ts';
import { DEFAULT_EVENT_TYPES } from '../../core/domain/event-types.ts';
import { writeDataset } from '../../training/data/write.ts';
import { captureConsole } from '../support/console.ts';

const root = mkdtempSync(join(tmpdir(), 'kestrel-serving-'));
const generated = join(root, 'generated');
const dataDir = join(root, 'core');
const models = join(root, 'models');
let runtime: CoreRuntime;
let core: RunningCore;
let events: Event[] = [];
const versions: string[] = [];

const get = async <T>(path: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${core.url}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: (text.startsWith('{') ? JSON.parse(text) : text) as T };
};

/** Users with the most positive events in the generated data. */
function activeUsers(count: number): string[] {
  const tally = new Map<string, number>();
  for (const e of events) if (e.type !== 'impression') tally.set(e.userId, (tally.get(e.userId) ?? 0) + 1);
  return [...tally].sort((a, b) => b[1] - a[1]).slice(0, count).map(([u]) => u);
}

function consumedBy(user: string): Set<string> {
  return new Set(events.filter((e) => e.userId === user && e.type !== 'impression').map((e) => e.itemId));
}

beforeAll(async () => {
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  await writeDataset(generated, { users: 200, items: 150, events: 15_000, seed: 11, clusters: 5, zipf: 1, driftShare: 0.1, newItemShare: 0.05 }, { format: 'jsonl' });
  events = readFileSync(join(generated, 'events.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Event);
  captureConsole();
  expect(await main(['import', '--data', dataDir, generated])).toBe(0);
  expect(await main(['train', '--from-bus', '--data', dataDir, '--out', models, '--epochs', '3'])).toBe(0);
  // A second version, staged but not current: the hot-swap test makes it current.
  expect(await main(['train', '--from-bus', '--data', dataDir, '--out', models, '--epochs', '2', '--seed', '7', '--no-promote'])).toBe(0);
  const registry = await openRegistry(models);
  const current = await registry.current();
  versions.push(current ?? '', ...(await registry.list()).filter((v) => v !== current));
  runtime = await openRuntime({ dataDir, log: () => undefined, serving: { models, modelPollMs: 0, refreshMs: 0 } });
  core = await startCore({ port: 0, version: 'test', services: runtime.services, readiness: runtime.readiness, log: () => undefined, metrics: runtime.metrics });
}, 300_000);

afterAll(async () => {
  await core?.close();
  await runtime?.close();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('serving recommendations from the current model', () => {
  it('recommends n unseen, visible items to a known user, with sources and a request id', async () => {
    expect(versions).toHaveLength(2);
    expect((await get('/readyz')).status).toBe(200);
    for (const user of activeUsers(3)) {
      const { status, body } = await get<RecommendResponse>(`/v1/recommendations/${user}?n=10`);
      expect(status).toBe(200);
      expect(body.mode).toBe('personal');
      expect(body.modelVersion).toBe(versions[0]);
      expect(body.requestId).toMatch(/.+/);
      expect(body.items).toHaveLength(10);
      expect(new Set(body.items.map((i) => i.id)).size).toBe(10);
      const seen = consumedBy(user);
      for (const item of body.items) {
        expect(seen.has(item.id), `${item.id} was already consumed by ${user}`).toBe(false);
        expect(item.sources.length).toBeGreaterThan(0);
      }
      expect(Object.keys(body.sources)).toEqual(expect.arrayContaining(['two-tower', 'item-item', 'co-visitation', 'content', 'trending', 'fresh']));
      expect(body.sources['two-tower']?.candidates).toBeGreaterThan(0);
    }
  });

  it('gives a user the engine has never seen popular, trending and fresh items', async () => {
    const { status, body } = await get<RecommendResponse>('/v1/recommendations/someone-new?n=5');
    expect(status).toBe(200);
    expect(body.mode).toBe('anonymous');
    expect(body.items).toHaveLength(5);
    expect(body.items.every((i) => i.sources.some((s) => ['trending', 'popular', 'fresh'].includes(s)))).toBe(true);
  });

  it('filters by category and explains the ranker features on request', async () => {
    const user = activeUsers(1)[0] ?? '';
    const any = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=20`)).body;
    const category = any.items.flatMap((i) => i.categories)[0];
    expect(category).toBeDefined();
    const { body } = await get<RecommendResponse>(`/v1/recommendations/${user}?n=5&category=${encodeURIComponent(category ?? '')}&explain=true`);
    expect(body.items.length).toBeGreaterThan(0);
    for (const item of body.items) {
      expect(item.categories).toContain(category);
      expect(item.explain?.features).toHaveProperty('externalScore');
      expect(Object.keys(item.explain?.contributions ?? {})).toHaveLength(Object.keys(item.explain?.features ?? {}).length);
      expect(item.explain?.retrieval).toHaveProperty('fusion');
    }
    const other = any.items.flatMap((i) => i.categories).find((c) => c !== category) ?? '';
    const banned = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=20&excludeCategory=${encodeURIComponent(other)}`)).body;
    expect(banned.items.length).toBeGreaterThan(0);
    expect(banned.items.some((i) => i.categories.includes(other))).toBe(false);
    const excluded = body.items[0]?.id ?? '';
    const without = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=5&category=${encodeURIComponent(category ?? '')}&exclude=${encodeURIComponent(excluded)}`)).body;
    expect(without.items.map((i) => i.id)).not.toContain(excluded);
  });

  it('answers requests made at once as it answers them one at a time', async () => {
    // Started together, requests interleave at every await, each with its own working arrays
    // (core/serving/scratch.ts): were any shared, one request's rows, fused slots or MMR
    // embeddings would be overwritten by another's before it read them.
    const engine = runtime.serving?.host.engine;
    expect(engine).toBeDefined();
    if (engine === undefined) return;
    const users = activeUsers(12);
    const answer = (user: string, k: number) => (k % 3 === 2
      ? engine.candidates(user, { n: 30, requestId: 'slate' }).then((slate) => ({ ...slate, createdAt: 0 }))
      : engine.recommend(user, { n: 8, requestId: 'once', explain: k % 3 === 0 }).then(({ response }) => response.items));
    const alone: unknown[] = [];
    for (const [k, user] of users.entries()) alone.push(await answer(user, k));
    const together = await Promise.all(users.map((user, k) => answer(user, k)));
    expect(together).toEqual(alone);
    expect(alone.every((a) => (Array.isArray(a) ? a.length > 0 : true))).toBe(true);
  });

  it('filters by item attributes, and says how to write a predicate', async () => {
    const user = activeUsers(1)[0] ?? '';
    const items = readFileSync(join(generated, 'items.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { id: string; attributes: { brand: string; price: number } });
    const brand = items[0]?.attributes.brand ?? '';
    const byId = new Map(items.map((i) => [i.id, i]));
    const { status, body } = await get<RecommendResponse>(`/v1/recommendations/${user}?n=10&where=${encodeURIComponent(`brand:${brand}`)}`);
    expect(status).toBe(200);
    expect(body.items.length).toBeGreaterThan(0);
    for (const item of body.items) expect(byId.get(item.id)?.attributes.brand).toBe(brand);
    const price = items.find((i) => i.attributes.brand === brand)?.attributes.price ?? 0;
    const both = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=10&where=${encodeURIComponent(`brand:${brand},price:${price}`)}`)).body;
    for (const item of both.items) expect(byId.get(item.id)?.attributes).toMatchObject({ brand, price });
    const bad = await get<{ error: { message: string } }>(`/v1/recommendations/${user}?where=brand`);
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
    expect(bad.body.error.message + JSON.stringify(bad.body)).toContain('name:value');
  });

  it('stops recommending an item as soon as the user consumed it, before any refresh', async () => {
    const user = activeUsers(2)[1] ?? '';
    const first = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=5`)).body.items[0]?.id ?? '';
    const post = await fetch(`${core.url}/v1/events`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: `serving-test-${user}`, type: 'purchase', userId: user, itemId: first, timestamp: Date.now() }),
    });
    expect(post.status).toBe(200);
    await runtime.projector.drained();
    const after = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=5`)).body;
    expect(after.items.map((i) => i.id)).not.toContain(first);
  });

  it('computes the user-tower vector again once a new event changes the history', async () => {
    const user = activeUsers(3)[2] ?? '';
    const twoTower = async (): Promise<Map<string, number>> => {
      const { body } = await get<RecommendResponse>(`/v1/recommendations/${user}?n=50&explain=true`);
      return new Map(body.items.flatMap((i) => {
        const score = i.explain?.retrieval['two-tower'];
        return score === undefined ? [] : [[i.id, score] as [string, number]];
      }));
    };
    const before = await twoTower();
    // Asked again with nothing new: the same vector, so the same inner products.
    expect(await twoTower()).toEqual(before);
    const [clicked] = [...before.keys()];
    const post = await fetch(`${core.url}/v1/events`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: `vector-test-${user}`, type: 'click', userId: user, itemId: clicked, timestamp: Date.now() }),
    });
    expect(post.status).toBe(200);
    await runtime.projector.drained();
    const after = await twoTower();
    const common = [...after.keys()].filter((id) => before.has(id));
    expect(common.length).toBeGreaterThan(0);
    for (const id of common) expect(after.get(id), id).not.toBe(before.get(id));
  });

  it('never recommends an item hidden since the snapshot, once refreshed', async () => {
    const user = activeUsers(3)[2] ?? '';
    const top = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=3`)).body.items[0]?.id ?? '';
    const patch = await fetch(`${core.url}/v1/items/${top}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hidden: true }) });
    expect(patch.status).toBe(200);
    await runtime.serving?.host.refreshNow();
    for (const u of activeUsers(20)) {
      const { body } = await get<RecommendResponse>(`/v1/recommendations/${u}?n=20`);
      expect(body.items.map((i) => i.id)).not.toContain(top);
    }
    const popular = (await get<{ items: { id: string }[] }>('/v1/popular?n=200')).body;
    expect(popular.items.map((i) => i.id)).not.toContain(top);
  });

  it('hands the edge a slate, as JSON and in the binary codec', async () => {
    const user = activeUsers(1)[0] ?? '';
    const json = await get<unknown>(`/v1/candidates/${user}?n=50`);
    expect(json.status).toBe(200);
    const slate = slateFromJson(json.body);
    expect(slate.userId).toBe(user);
    expect(slate.modelVersion).toBe(versions[0]);
    expect(slate.candidates).toHaveLength(50);
    expect(slate.candidates.every((c) => c.embedding.length === slate.dim)).toBe(true);
    const scores = slate.candidates.map((c) => c.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const res = await fetch(`${core.url}/v1/candidates/${user}?n=50`, { headers: { accept: SLATE_CONTENT_TYPE } });
    expect(res.headers.get('content-type')).toBe(SLATE_CONTENT_TYPE);
    const binary = decodeSlate(new Uint8Array(await res.arrayBuffer()));
    expect(binary.candidates.map((c) => c.item)).toEqual(slate.candidates.map((c) => c.item));
  });

  it('answers similar and popular items, and says what is unknown', async () => {
    const item = events.find((e) => e.type !== 'impression')?.itemId ?? '';
    const similar = await get<{ items: { id: string; sources: string[] }[] }>(`/v1/items/${item}/similar?n=5`);
    expect(similar.status).toBe(200);
    expect(similar.body.items).toHaveLength(5);
    expect(similar.body.items.map((i) => i.id)).not.toContain(item);
    expect((await get('/v1/items/no-such-item/similar')).status).toBe(404);
    const popular = await get<{ items: { id: string; categories: string[] }[] }>('/v1/popular?n=5');
    expect(popular.body.items).toHaveLength(5);
    const category = popular.body.items[0]?.categories[0] ?? '';
    const inCategory = await get<{ items: { categories: string[] }[] }>(`/v1/popular?n=5&category=${encodeURIComponent(category)}`);
    expect(inCategory.body.items.every((i) => i.categories.includes(category))).toBe(true);
    const unknown = await get<{ error: { message: string } }>('/v1/popular?category=no-such-category');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain('no-such-category');
  });

  it('refuses bad parameters with a message that says what to fix', async () => {
    const zero = await get<{ error: { message: string; details: { path: string }[] } }>('/v1/recommendations/u1?n=0');
    expect(zero.status).toBeGreaterThanOrEqual(400);
    expect(zero.status).toBeLessThan(500);
    expect(JSON.stringify(zero.body)).toContain('n');
    expect((await get('/v1/candidates/u1?n=100000')).status).toBeLessThan(500);
    expect((await get('/v1/candidates/u1?n=100000')).status).toBeGreaterThanOrEqual(400);
  });

  it('exports per-stage latency, candidates per source and the model version on /metrics', async () => {
    const { status, body } = await get<string>('/metrics');
    expect(status).toBe(200);
    for (const stage of ['retrieval:two-tower', 'features', 'ranking', 'reranking', 'total']) {
      expect(body).toContain(`kestrel_stage_duration_seconds_count{stage="${stage}"}`);
    }
    expect(body).toMatch(/kestrel_retrieval_candidates_total\{source="two-tower"\} [1-9]/);
    expect(body).toContain(`kestrel_model_info{version="${versions[0]}"} 1`);
    expect(body).toMatch(/kestrel_http_requests_total\{route="GET \/v1\/recommendations\/:userId",status="200"\} [1-9]/);
    expect(body).toMatch(/kestrel_http_requests_total\{route="GET \/v1\/popular",status="404"\} 1/);
    expect(body).toContain('kestrel_http_request_duration_seconds_count{route="GET /v1/candidates/:userId"}');
  });

  it('logs the features of every served item under the request id', async () => {
    const user = activeUsers(1)[0] ?? '';
    const { body } = await get<RecommendResponse>(`/v1/recommendations/${user}?n=4`);
    const log = runtime.services.serving?.featureLog;
    await log?.flush();
    const dir = join(dataDir, 'served');
    expect(existsSync(dir)).toBe(true);
    const lines = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').trimEnd().split('\n'));
    const record = lines.map((l) => JSON.parse(l) as { requestId: string; items: { item: string; dense: number[] }[] }).find((r) => r.requestId === body.requestId);
    expect(record?.items.map((i) => i.item)).toEqual(body.items.map((i) => i.id));
    expect(record?.items[0]?.dense).toHaveLength(14);
  });

  it('erases a user from serving: no snapshot history, no trained id row, no served-features records', async () => {
    const user = activeUsers(5)[4] ?? '';
    const before = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=5`)).body;
    expect(before.mode).toBe('personal');
    await runtime.services.serving?.featureLog?.flush();
    const erase = await get<{ removed: Record<string, number> }>(`/v1/users/${user}`, { method: 'DELETE' });
    expect(erase.status).toBe(200);
    expect(erase.body.removed.servingSnapshot).toBeGreaterThan(0);
    expect(erase.body.removed.servedFeatureLog).toBeGreaterThan(0);
    const after = (await get<RecommendResponse>(`/v1/recommendations/${user}?n=5`)).body;
    expect(after.mode).toBe('anonymous');
    await runtime.services.serving?.featureLog?.flush();
    const dir = join(dataDir, 'served');
    const records = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').trimEnd().split('\n')).filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { userId: string; requestId: string });
    expect(records.filter((r) => r.userId === user).map((r) => r.requestId)).toEqual([after.requestId]);
    // Still so once the background refresh has rebuilt the snapshot without them.
    await runtime.serving?.host.refreshNow(true);
    expect((await get<RecommendResponse>(`/v1/recommendations/${user}?n=5`)).body.mode).toBe('anonymous');
  });

  it('swaps in a newly current model while requests are in flight', async () => {
    const user = activeUsers(1)[0] ?? '';
    const registry = await openRegistry(models);
    const inFlight = Array.from({ length: 8 }, () => get<RecommendResponse>(`/v1/recommendations/${user}?n=10`));
    await registry.rollback(versions[1] ?? '', 'serving test: hot-swap');
    await runtime.serving?.host.checkNow();
    const before = await Promise.all(inFlight);
    expect(before.every((r) => r.status === 200 && r.body.items.length === 10)).toBe(true);
    const after = await get<RecommendResponse>(`/v1/recommendations/${user}?n=10`);
    expect(after.status).toBe(200);
    expect(after.body.modelVersion).toBe(versions[1]);
    expect((await get<string>('/metrics')).body).toContain(`kestrel_model_info{version="${versions[1]}"} 1`);
  });
});

describe('serving on Milvus', () => {
  it('recommends what the embedded index does, from item vectors in a real Milvus collection', async () => {
    const address = process.env.MILVUS_ADDRESS ?? '127.0.0.1:19530';
    const milvus = await ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx',
      index: { kind: 'milvus', address, collectionPrefix: `kestrel_test_${process.pid}`, dropOnClose: true },
      // A generous deadline: this compares answers, not latency (bench/suites/serve.ts measures that).
      config: { ...DEFAULT_ENGINE_CONFIG, sourceTimeoutMs: 10_000 }, modelPollMs: 0, refreshMs: 0, log: () => undefined,
    });
    try {
      const embedded = runtime.serving?.host.engine;
      const engine = milvus.engine;
      expect(engine?.version).toBe(embedded?.version);
      expect(engine?.index.kind).toBe('milvus');
      // Both hosts read the same catalog; the embedded one is refreshed to the same state.
      await runtime.serving?.host.refreshNow(true);
      for (const user of activeUsers(4)) {
        const a = await engine?.recommend(user, { n: 10, requestId: 'milvus' });
        const b = await embedded?.recommend(user, { n: 10, requestId: 'embedded' });
        expect(a?.response.sources['two-tower']?.error).toBeUndefined();
        expect(a?.response.sources['two-tower']?.candidates).toBeGreaterThan(0);
        expect(a?.response.items.map((i) => i.id)).toEqual(b?.response.items.map((i) => i.id));
        // Attribute predicates pushed down to Milvus answer as the embedded index does.
        const brand = { brand: ['b1', 'b2', 'b3'] };
        const c = await engine?.recommend(user, { n: 10, requestId: 'milvus-attr', attributes: brand });
        const d = await embedded?.recommend(user, { n: 10, requestId: 'embedded-attr', attributes: brand });
        expect(c?.response.items.length).toBeGreaterThan(0);
        expect(c?.response.items.map((i) => i.id)).toEqual(d?.response.items.map((i) => i.id));
      }
    } finally {
      await milvus.close();
    }
  }, 120_000);
});

describe('Milvus failing while the core serves', () => {
  it('answers two-tower from the exact scores, and skips the failing search after three failures', async () => {
    const address = process.env.MILVUS_ADDRESS ?? '127.0.0.1:19530';
    const prefix = `kestrel_fail_${process.pid}`;
    const milvus = await ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx',
      index: { kind: 'milvus', address, collectionPrefix: prefix }, config: { ...DEFAULT_ENGINE_CONFIG, sourceTimeoutMs: 10_000 },
      modelPollMs: 0, refreshMs: 0, log: () => undefined,
    });
    try {
      const version = milvus.status().version ?? '';
      await runtime.serving?.host.refreshNow(true);
      // The collection goes away under the core: every search now fails on the real server.
      await dropMilvusCollections(address, [`${prefix}_${version.replace(/[^A-Za-z0-9_]/g, '_')}`]);
      // The proxy may answer from its cache for a moment after the drop.
      const index = milvus.engine?.index;
      const probe = new Float32Array(milvus.engine?.snapshot.dim ?? 1).fill(0.1);
      await expect.poll(() => index?.search(probe, 1).then(() => 'answers', () => 'fails'), { timeout: 30_000, interval: 250 }).toBe('fails');
      // Users served personally (a test above erases some of the most active).
      const users: string[] = [];
      for (const user of activeUsers(30)) {
        if (users.length < 5 && (await runtime.serving?.host.engine?.recommend(user, { n: 1, requestId: 'mode' }))?.response.mode === 'personal') users.push(user);
      }
      expect(users).toHaveLength(5);
      for (const [k, user] of users.entries()) {
        const got = (await milvus.engine?.recommend(user, { n: 10, requestId: `fail-${k}` }))?.response;
        const want = (await runtime.serving?.host.engine?.recommend(user, { n: 10, requestId: `embedded-${k}` }))?.response;
        const report = got?.sources['two-tower'];
        expect(report?.fallback).toBe('exact scores of every item');
        expect(report?.candidates).toBeGreaterThan(0);
        if (k < 3) expect(report?.error).not.toMatch(/^skipped/);
        else expect(report?.error).toMatch(/^skipped after \d+ failures in a row \(the last: .+\); tried again in \d+ s$/);
        // The exact top n is what the embedded index's requests take too.
        expect(got?.items.map((i) => i.id)).toEqual(want?.items.map((i) => i.id));
      }
    } finally {
      await milvus.close();
      await dropMilvusCollections(address, [`${prefix}_${(milvus.status().version ?? '').replace(/[^A-Za-z0-9_]/g, '_')}`]).catch(() => undefined);
    }
  }, 120_000);
});

describe('Milvus not answering', () => {
  it('keeps the core up without a model, says what to do once, and keeps trying', async () => {
    // A port nothing listens on: the SDK's connection handshake fails at once.
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    const logs: string[] = [];
    const host = await ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx',
      index: { kind: 'milvus', address: `127.0.0.1:${port}` }, config: DEFAULT_ENGINE_CONFIG, modelPollMs: 50, refreshMs: 0,
      log: (line) => logs.push(line),
    });
    try {
      // Several polls' worth: every one tries again and fails the same way.
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(host.engine).toBeUndefined();
      expect(host.status().error).toContain(`Milvus at 127.0.0.1:${port} does not answer`);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toContain('npx kestrel infra up milvus');
      expect(logs[0]).toContain('trying again every 0.05 s');
    } finally {
      await host.close();
    }
  });
});

describe('model versions on Milvus', () => {
  it("drops the collections of the registry's retired versions after a swap, keeping the serving and the replaced one", async () => {
    const address = process.env.MILVUS_ADDRESS ?? '127.0.0.1:19530';
    const prefix = `kestrel_swap_${process.pid}`;
    const registry = await openRegistry(models);
    const serving = (await registry.current()) ?? '';
    const other = versions.find((v) => v !== serving) ?? '';
    // A third version of this registry (a copy of a trained one), whose collection a replica made earlier.
    const retired = `20000101T000000Z-${process.pid.toString(16).padStart(8, '0').slice(-8)}`;
    cpSync(join(models, VERSIONS_DIR, serving), join(models, VERSIONS_DIR, retired), { recursive: true });
    const name = (v: string) => `${prefix}_${v.replace(/[^A-Za-z0-9_]/g, '_')}`;
    const stale = await openMilvusIndex({ address, collection: name(retired), dim: 4 });
    await stale.close();
    const logs: string[] = [];
    const host = await ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx',
      index: { kind: 'milvus', address, collectionPrefix: prefix }, modelPollMs: 0, refreshMs: 0, log: (line) => logs.push(line),
      config: DEFAULT_ENGINE_CONFIG,
    });
    const collections = async () => {
      const client = milvusClient({ address, logLevel: 'error' });
      try {
        return new Set((await client.showCollections()).data.map((c) => c.name).filter((n) => n.startsWith(`${prefix}_`)));
      } finally {
        await client.closeConnection();
      }
    };
    try {
      expect(host.engine?.version).toBe(serving);
      await registry.rollback(other, 'serving test: drop retired collections');
      await host.checkNow();
      expect(host.engine?.version).toBe(other);
      await expect.poll(async () => (await collections()).has(name(retired)), { timeout: 30_000, interval: 250 }).toBe(false);
      expect(await collections()).toEqual(new Set([name(serving), name(other)]));
      expect(logs.join('\n')).toContain(`dropped the Milvus collections of retired models: ${name(retired)}`);
    } finally {
      await host.close();
      await registry.rollback(serving, 'serving test: restore');
      rmSync(join(models, VERSIONS_DIR, retired), { recursive: true, force: true });
      await dropMilvusCollections(address, [name(serving), name(other), name(retired)]);
    }
  }, 180_000);
});

describe('engine settings', () => {
  it('merges sources by quota when configured, taking at most each quota', async () => {
    const quotas = { 'two-tower': 6, 'item-item': 0, 'co-visitation': 0, content: 0, trending: 4, fresh: 0, popular: 0 };
    const host = await ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx', index: { kind: 'hnsw' },
      config: { ...DEFAULT_ENGINE_CONFIG, fusion: 'quota', quotas, mmrLambda: 1 }, modelPollMs: 0, refreshMs: 0, log: () => undefined,
    });
    try {
      const user = activeUsers(1)[0] ?? '';
      const { response } = await host.engine?.recommend(user, { n: 20, requestId: 'quota' }) ?? { response: undefined };
      expect(Object.keys(response?.sources ?? {}).sort()).toEqual(['trending', 'two-tower']);
      // Distinct items from two lists capped at 6 and 4.
      expect(response?.items.length).toBeLessThanOrEqual(10);
      expect(response?.items.length).toBeGreaterThanOrEqual(6);
      for (const item of response?.items ?? []) expect(item.sources.some((s) => s === 'two-tower' || s === 'trending')).toBe(true);
    } finally {
      await host.close();
    }
  });

  it('persists the embedded index per model version and reopens it without re-inserting', async () => {
    const open = () => ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx', index: { kind: 'hnsw' },
      config: DEFAULT_ENGINE_CONFIG, modelPollMs: 0, refreshMs: 0, log: () => undefined,
    });
    const user = activeUsers(1)[0] ?? '';
    const first = await open();
    const version = first.status().version ?? '';
    const before = await first.engine?.recommend(user, { n: 10, requestId: 'a' });
    await first.close();
    expect(existsSync(join(dataDir, 'index', version))).toBe(true);
    const second = await open();
    try {
      const status = second.status();
      expect(status.index?.restored).toBe(status.snapshot?.items);
      const after = await second.engine?.recommend(user, { n: 10, requestId: 'b' });
      expect(after?.response.items.map((i) => i.id)).toEqual(before?.response.items.map((i) => i.id));
    } finally {
      await second.close();
    }
  });

  it('scores only the candidates of a large catalog, from the embeddings\' moments, and serves the same', async () => {
    const host = await ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx', index: { kind: 'hnsw' },
      config: { ...DEFAULT_ENGINE_CONFIG, exactScoresUpTo: 0 }, modelPollMs: 0, refreshMs: 0, log: () => undefined,
    });
    try {
      expect(host.engine?.snapshot.moments).toBeDefined();
      expect(runtime.serving?.host.engine?.snapshot.moments).toBeUndefined();
      await runtime.serving?.host.refreshNow(true);
      for (const user of activeUsers(5)) {
        const moments = (await host.engine?.recommend(user, { n: 10, requestId: 'm', explain: true }))?.response;
        const exact = (await runtime.serving?.host.engine?.recommend(user, { n: 10, requestId: 'e', explain: true }))?.response;
        expect(moments?.items.map((i) => i.id)).toEqual(exact?.items.map((i) => i.id));
        moments?.items.forEach((item, k) => {
          const other = exact?.items[k];
          expect(item.score).toBeCloseTo(other?.score ?? Number.NaN, 4);
          expect(item.explain?.features.externalScore).toBeCloseTo(other?.explain?.features.externalScore ?? Number.NaN, 4);
          expect(item.explain?.features.coVisitationScore).toBeCloseTo(other?.explain?.features.coVisitationScore ?? Number.NaN, 4);
        });
      }
    } finally {
      await host.close();
    }
  });

  it('leaves an engine thread\'s embedded index empty while the catalog is scored whole, and fills it when not', async () => {
    const follower = (exactScoresUpTo?: number) => ServingHost.open({
      registryRoot: models, dataDir, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx', index: { kind: 'hnsw' },
      config: { ...DEFAULT_ENGINE_CONFIG, ...(exactScoresUpTo !== undefined ? { exactScoresUpTo } : {}) }, modelPollMs: 0, refreshMs: 0, follower: true, log: () => undefined,
    });
    await runtime.serving?.host.refreshNow(true);
    const main = runtime.serving?.host.engine;
    const whole = await follower();
    const walking = await follower(0);
    try {
      expect(whole.status().index?.held).toBe(0);
      const items = walking.status().snapshot?.items ?? 0;
      expect(items).toBeGreaterThan(0);
      expect(walking.status().index?.held).toBe(items);
      for (const user of activeUsers(3)) {
        const request = { n: 10, requestId: 'f' };
        const want = (await main?.recommend(user, request))?.response.items.map((i) => i.id);
        expect((await whole.engine?.recommend(user, request))?.response.items.map((i) => i.id)).toEqual(want);
        // The walk over the graph may order the tail of two-tower's list differently: the top is the same.
        expect((await walking.engine?.recommend(user, request))?.response.items.length).toBe(want?.length);
      }
      // A refresh keeps it empty while the catalog is still scored whole.
      await whole.refreshNow(true);
      expect(whole.status().index?.held).toBe(0);
    } finally {
      await whole.close();
      await walking.close();
    }
  });

  it('answers on engine threads as the main thread\'s engine does; stage timings and erasures reach across', async () => {
    const stages: string[] = [];
    const timer = { stage: (stage: string) => void stages.push(stage), candidates: () => undefined, sourceError: () => undefined };
    const pool = new EnginePool({
      registryRoot: models, dataDir, catalogPath: join(dataDir, 'catalog.db'), eventTypes: DEFAULT_EVENT_TYPES, ranker: 'onnx',
      index: { kind: 'hnsw' }, config: DEFAULT_ENGINE_CONFIG, modelPollMs: 0, refreshMs: 0,
    }, 2, timer, () => undefined);
    try {
      const deadline = Date.now() + 120_000;
      while (pool.ready < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(pool.ready).toBe(2);
      const main = runtime.serving?.host.engine;
      // The threads read the catalog as it is now; the main engine's snapshot is brought to the same state.
      await runtime.serving?.host.refreshNow(true);
      const request = { n: 10, requestId: 'pool', explain: true };
      // As JSON, as the route sends and logs them (−0 reads back as 0).
      const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
      for (const user of activeUsers(3)) {
        // Two at once: one on each thread (the least busy gets the next).
        const answers = await Promise.all([pool.recommend(user, request), pool.recommend(user, request)]);
        const local = await main?.recommend(user, request);
        for (const answer of answers) {
          const { items } = JSON.parse(answer?.body ?? '{}') as RecommendResponse;
          expect(items).toEqual(json(local?.response.items));
          // The served line arrives as bytes (transferred from the thread): one JSON line and its newline.
          const line = new TextDecoder().decode(answer?.served.bytes);
          expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n')).toBe(true);
          expect((JSON.parse(line) as ServedFeatures).items).toEqual(json(local?.served.items));
          expect(answer?.served.at).toBeTypeOf('number');
        }
        const slate = await pool.candidates(user, { n: 50, requestId: 'slate' });
        expect(slate?.candidates).toEqual((await main?.candidates(user, { n: 50, requestId: 'slate' }))?.candidates);
      }
      expect(stages).toContain('ranking');
      expect(stages).toContain('total');
      // GDPR: once erased, every thread serves the user as the main engine does after forgetting them.
      const user = activeUsers(12)[11] ?? '';
      const before = await pool.recommend(user, request);
      const at = Date.now();
      pool.eraseUser(user, at);
      main?.forget(user, at);
      const local = await main?.recommend(user, request);
      expect(local?.response.items).not.toEqual((JSON.parse(before?.body ?? '{}') as RecommendResponse).items);
      const answers = await Promise.all([pool.recommend(user, request), pool.recommend(user, request)]);
      for (const answer of answers) expect((JSON.parse(answer?.body ?? '{}') as RecommendResponse).items).toEqual(json(local?.response.items));
    } finally {
      await pool.close();
    }
  }, 180_000);

  it('serves /v1/recommendations from engine threads, unready until every thread has loaded', async () => {
    // A copy of the data folder, so this core's bus and catalog are its own.
    runtime.catalog.db.pragma('wal_checkpoint(TRUNCATE)');
    const copy = join(root, 'core-threads');
    cpSync(dataDir, copy, { recursive: true, filter: (source) => !source.endsWith(`${join('events', 'LOCK')}`) });
    const threaded = await openRuntime({ dataDir: copy, log: () => undefined, serving: { models, modelPollMs: 0, refreshMs: 0, engineThreads: 1, featureLog: false } });
    const server = await startCore({ port: 0, version: 'test', services: threaded.services, readiness: threaded.readiness, log: () => undefined, metrics: threaded.metrics });
    try {
      const readiness: string[] = [];
      const deadline = Date.now() + 120_000;
      for (;;) {
        const res = await fetch(`${server.url}/readyz`);
        readiness.push(`${res.status} ${await res.text()}`);
        if (res.status === 200 || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(readiness.at(-1)).toMatch(/^200/);
      // The thread loads after the main host: /readyz said so until then.
      expect(readiness[0]).toMatch(/^503.*0 of 1 engine threads have a model loaded/);
      const user = activeUsers(1)[0] ?? '';
      const res = await fetch(`${server.url}/v1/recommendations/${user}?n=5`);
      expect(res.status).toBe(200);
      const body = await res.json() as RecommendResponse;
      expect(body.items).toHaveLength(5);
      const local = await threaded.serving?.host.engine?.recommend(user, { n: 5, requestId: 'local' });
      expect(body.items).toEqual(local?.response.items);
      // The thread's stage timings reach this core's /metrics (the local call above adds one more).
      expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/kestrel_stage_duration_seconds_count\{stage="total"\} 2\b/);
    } finally {
      await server.close();
      await threaded.close();
    }
  }, 180_000);

  it('reads a serving config and says which setting is wrong', () => {
    expect(parseEngineConfig({ quotas: { content: 5 }, fusion: 'quota', mmrLambda: 0.5, rules: { maxPerCategory: 2 } }, 'f.json')).toMatchObject({
      quotas: { content: 5, 'two-tower': DEFAULT_ENGINE_CONFIG.quotas['two-tower'] }, fusion: 'quota', mmrLambda: 0.5, rules: { maxPerCategory: 2 },
    });
    expect(() => parseEngineConfig({ mmrLambda: 2 }, 'f.json')).toThrow('f.json: mmrLambda must be a number from 0 to 1');
    expect(() => parseEngineConfig({ quota: {} }, 'f.json')).toThrow("f.json: 'quota' is not an engine setting");
    expect(() => parseEngineConfig({ quotas: { content: -1 } }, 'f.json')).toThrow('quotas.content must be a number ≥ 0');
    expect(() => parseEngineConfig({ fusion: 'borda' }, 'f.json')).toThrow("fusion must be 'rrf' or 'quota'");
  });
});
