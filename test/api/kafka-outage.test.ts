// POST /v1/events on a core whose bus is Kafka, while Kafka goes away and comes back (issue 3). The
// core reaches the shared broker only through a TCP proxy this test cuts and restores (the
// runtime's `kafka.connectVia`), so the broker itself keeps running for everyone else.
// Afterwards every event the API accepted is stored exactly once in the catalog's interactions,
// each user's events in the order they were sent; nothing the API rejected is stored. /readyz is
// 503 while accepted events wait in the spool (the 'event-bus' check; the bus learns Kafka is gone
// only when a send fails, so with nothing published since the cut it still says ready), and 200
// again once the spool drained.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CuttableProxy } from '../support/cuttable-proxy.ts';
import { openTestCore } from './harness.ts';
import type { TestCore } from './harness.ts';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const topic = `kestrel-api-outage-${randomUUID().slice(0, 8)}`;
const startTopic = `kestrel-api-start-outage-${randomUUID().slice(0, 8)}`;
const USERS = 20;
const BATCH = 100;
/** Every event's time: an hour ago plus its sequence number, so time order is send order. */
const BASE_MS = Date.now() - 3_600_000;
/** How long Kafka stays unreachable while the API keeps taking events. */
const CUT_MS = 8_000;
const proxy = CuttableProxy.forTestBroker();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await proxy.listen();
});

afterAll(async () => {
  await proxy.close();
  const admin = new Kafka({ clientId: 'kestrel-api-outage-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, startTopic], timeout: 30_000 }).catch(() => undefined);
  await admin.disconnect();
});

interface EntryResult { index: number; id?: string; status: 'accepted' | 'duplicate' | 'rejected' }
interface BatchBody { accepted: number; duplicate: number; rejected: number; results: EntryResult[] }

/** Sends events in order; remembers which ids the API accepted and which it rejected. */
class Ingest {
  next = 0;
  /** Valid events sent: the API must accept every one. */
  valid = 0;
  readonly accepted: { id: string; userId: string }[] = [];
  readonly rejected: string[] = [];

  constructor(readonly core: TestCore) {}

  /** `BATCH` valid events round-robin over the users, plus `invalid` the API must reject. */
  async batch(invalid = 0): Promise<number> {
    const events: Record<string, unknown>[] = [];
    for (let i = 0; i < BATCH; i++) {
      const n = this.next++;
      this.valid++;
      events.push({ id: `o-${n}`, type: 'view', userId: `u${n % USERS}`, itemId: `i${n % 37}`, timestamp: BASE_MS + n });
    }
    for (let k = 0; k < invalid; k++) {
      const n = this.next++;
      // Unconfigured type; a user that exists and a time in range, so only the type is wrong.
      events.splice(k * 7, 0, { id: `bad-${n}`, type: 'teleport', userId: `u${n % USERS}`, itemId: 'i1', timestamp: BASE_MS + n });
    }
    const res = await this.core.call('POST', '/v1/events', { events });
    const body = await res.json() as BatchBody;
    if (res.status !== 200 && res.status !== 207) throw new Error(`POST /v1/events answered ${res.status}: ${JSON.stringify(body)}`);
    for (const r of body.results) {
      const sent = events[r.index] as { id: string; userId: string };
      if (r.status === 'accepted') this.accepted.push({ id: sent.id, userId: sent.userId });
      else if (r.status === 'rejected') this.rejected.push(sent.id);
    }
    return res.status;
  }
}

/** Per user, the ids in `rows`' order. */
function perUser(rows: readonly { id: string; userId: string }[]): Map<string, string[]> {
  const byUser = new Map<string, string[]>();
  for (const { id, userId } of rows) byUser.set(userId, [...(byUser.get(userId) ?? []), id]);
  return byUser;
}

async function readyz(core: TestCore): Promise<{ status: number; body: { status: string; checks: { name: string; ok: boolean; reason?: string }[] } }> {
  const res = await core.call('GET', '/readyz');
  return { status: res.status, body: await res.json() as { status: string; checks: { name: string; ok: boolean; reason?: string }[] } };
}

describe('POST /v1/events on Kafka while the broker is unreachable', () => {
  it('stores every accepted event once, in per-user order, after Kafka returns; /readyz is unready while events wait in the spool', { timeout: 120_000 }, async () => {
    const core = await openTestCore({ kafka: { brokers: [`127.0.0.1:${proxy.port}`], topic, connectVia: proxy.address } });
    const ingest = new Ingest(core);
    try {
      expect((await readyz(core)).status).toBe(200);
      for (let b = 0; b < 3; b++) expect(await ingest.batch()).toBe(200);

      // The cut lands while a request is being handled (before or during its send to Kafka).
      const inFlight = ingest.batch();
      proxy.cut();
      expect(await inFlight).toBe(200);
      // Long enough for the projector's consumer to lose its connections and give up retrying.
      for (let b = 0, cutAt = Date.now(); b < 3 || Date.now() - cutAt < CUT_MS; b++) {
        expect(await ingest.batch(b === 1 ? 3 : 0)).toBe(b === 1 ? 207 : 200);
        await sleep(200);
      }
      expect(core.runtime.services.bus).toHaveProperty('spooling', true);

      const whileCut = await readyz(core);
      expect(whileCut.status).toBe(503);
      expect(whileCut.body.checks.find((c) => c.name === 'event-bus')).toMatchObject({ ok: false, reason: expect.stringMatching(/^Kafka unreachable; \d+ bytes of accepted events wait in the local spool$/) });
      // /metrics says how much waits in the spool.
      const spooled = (text: string) => Number(/^kestrel_event_spool_bytes (\d+)$/m.exec(text)?.[1]);
      expect(spooled(await (await core.call('GET', '/metrics')).text())).toBeGreaterThan(0);
      // Some of the acknowledged events cannot have reached the catalog yet: they are in the spool.
      expect(await core.runtime.catalog.interactions.count()).toBeLessThan(ingest.accepted.length);

      proxy.restore();
      for (let b = 0; b < 3; b++) expect(await ingest.batch(b === 0 ? 2 : 0)).toBe(b === 0 ? 207 : 200);

      const accepted = ingest.accepted;
      expect(accepted).toHaveLength(ingest.valid);
      expect(ingest.rejected).toHaveLength(5);
      // Slow on purpose: the projector's consumer gives up while Kafka is away and kafkajs restarts
      // it; its new member joins the group once the old one's session (30 s) has expired.
      await expect.poll(() => core.runtime.catalog.interactions.count(), { timeout: 75_000, interval: 250 }).toBe(accepted.length);

      // Exactly once: the ids are unique in the table and are the accepted ones; in the order the
      // projector stored them (seq), each user's events are in the order they were sent.
      const rows = core.runtime.catalog.db.prepare<[], { id: string; userId: string }>('SELECT id, user_id AS userId FROM interactions ORDER BY seq').all();
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(accepted.map((e) => e.id)));
      expect(perUser(rows)).toEqual(perUser(accepted));
      for (const id of ingest.rejected) expect(rows.some((r) => r.id === id)).toBe(false);
      const u7 = await core.runtime.catalog.interactions.userEvents('u7', { limit: 1000 });
      expect(u7.map((e) => e.id).reverse()).toEqual(perUser(accepted).get('u7'));

      await expect.poll(async () => (await readyz(core)).body, { timeout: 30_000, interval: 250 }).toEqual({
        status: 'ready', checks: ['catalog', 'event-bus', 'projector'].map((name) => ({ name, ok: true })),
      });
      expect(spooled(await (await core.call('GET', '/metrics')).text())).toBe(0);
    } finally {
      await core.close();
    }
  });
});

describe('a core started while Kafka is unreachable', () => {
  it('starts, takes events into the spool, and projects them once Kafka answers', { timeout: 120_000 }, async () => {
    proxy.cut();
    const core = await openTestCore({ kafka: { brokers: [`127.0.0.1:${proxy.port}`], topic: startTopic, connectVia: proxy.address } });
    const ingest = new Ingest(core);
    try {
      const before = await readyz(core);
      expect(before.status).toBe(503);
      expect(before.body.checks.find((c) => c.name === 'event-bus')).toMatchObject({
        ok: false, reason: "Kafka unreachable; the consumer of 'catalog-projector' keeps trying to connect",
      });
      for (let b = 0; b < 3; b++) expect(await ingest.batch(b === 1 ? 2 : 0)).toBe(b === 1 ? 207 : 200);
      expect(core.runtime.services.bus).toHaveProperty('spooling', true);
      expect(await core.runtime.catalog.interactions.count()).toBe(0);

      proxy.restore();
      await expect.poll(() => core.runtime.catalog.interactions.count(), { timeout: 60_000, interval: 250 }).toBe(ingest.accepted.length);
      const rows = core.runtime.catalog.db.prepare<[], { id: string; userId: string }>('SELECT id, user_id AS userId FROM interactions ORDER BY seq').all();
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ingest.accepted.map((e) => e.id)));
      expect(perUser(rows)).toEqual(perUser(ingest.accepted));
      await expect.poll(async () => (await readyz(core)).body, { timeout: 30_000, interval: 250 }).toEqual({
        status: 'ready', checks: ['catalog', 'event-bus', 'projector'].map((name) => ({ name, ok: true })),
      });
    } finally {
      proxy.restore();
      await core.close();
    }
  });
});
