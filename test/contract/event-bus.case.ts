// The EventBus contract (core/events/bus.ts), run against every adapter, like Hono's
// router/common.case.test.ts: each adapter's test file calls runEventBusContract with a factory.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import type { Delivery, EventBus, Subscription } from '../../core/events/bus.ts';
import { frameTexts } from '../../core/events/log/segment-log.ts';

export type ContractCase =
  | 'publish-consume' | 'per-user-order' | 'two-groups' | 'resume' | 'batch-10k' | 'round-trip' | 'framed';

export interface EventBusContract {
  name: string;
  /**
   * Opens a bus on the storage named `storage` (a folder, a topic): the same name opens the same
   * storage again, so a case can close a bus and reopen it.
   */
  newBus: (storage: string) => Promise<EventBus>;
  /** Cases not to run, each with the reason. */
  skip?: Partial<Record<ContractCase, string>>;
  /** How long a case may wait for deliveries. */
  timeoutMs?: number;
}

/** Event `seq` of user `user` in a stream over `users` users. */
export function makeEvent(run: string, i: number, users: number): Event {
  const user = i % users;
  return {
    id: `${run}-${i}`,
    type: 'click',
    userId: `user-${user}`,
    itemId: `item-${i % 97}`,
    timestamp: 1_700_000_000_000 + i,
    value: Math.floor(i / users),
  };
}

/** Gathers what a subscription delivers, and wakes whoever waits for a count. */
class Collected {
  readonly deliveries: Delivery[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];

  push(batch: readonly Delivery[]): void {
    this.deliveries.push(...batch);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.deliveries.length < w.n) return true;
      w.resolve();
      return false;
    });
  }

  atLeast(n: number, timeoutMs: number): Promise<void> {
    if (this.deliveries.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} deliveries (got ${this.deliveries.length})`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }

  ids(): string[] {
    return this.deliveries.map((d) => d.event.id);
  }
}

/** Subscribes `group`, collecting everything (and committing each batch when `commit`). */
async function consume(bus: EventBus, group: string, commit = true): Promise<{ got: Collected; sub: Subscription }> {
  const got = new Collected();
  let sub: Subscription | undefined;
  const pendingCommits: Delivery[][] = [];
  sub = await bus.subscribe({
    group,
    onBatch: async (batch) => {
      if (commit) {
        if (sub === undefined) pendingCommits.push([...batch]);
        else await sub.commit(batch);
      }
      got.push(batch);
    },
  });
  for (const batch of pendingCommits) await sub.commit(batch);
  return { got, sub };
}

/** After the expected count arrived, a short wait in which a duplicate would show up. */
const SETTLE_MS = 1_500;
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

async function publishInBatches(bus: EventBus, events: readonly Event[], batchSize: number): Promise<void> {
  for (let i = 0; i < events.length; i += batchSize) await bus.publish(events.slice(i, i + batchSize));
}

function userSequences(deliveries: readonly Delivery[]): Map<string, string[]> {
  const byUser = new Map<string, string[]>();
  for (const { event } of deliveries) {
    const ids = byUser.get(event.userId) ?? [];
    ids.push(event.id);
    byUser.set(event.userId, ids);
  }
  return byUser;
}

export function runEventBusContract({ name, newBus, skip = {}, timeoutMs = 120_000 }: EventBusContract): void {
  const run = randomUUID().slice(0, 8);
  const testTimeout = timeoutMs * 2;
  const test = (c: ContractCase, title: string, fn: () => Promise<void>) => {
    const reason = skip[c];
    if (reason !== undefined) it.skip(`${title} (skipped: ${reason})`, fn);
    else it(title, { timeout: testTimeout }, fn);
  };

  describe(`EventBus contract: ${name}`, () => {
    test('publish-consume', 'publish resolves after the events are stored; a new group receives every one of them once', async () => {
      const bus = await newBus(`pc-${run}`);
      try {
        const events = Array.from({ length: 300 }, (_, i) => makeEvent(`pc-${run}`, i, 7));
        await publishInBatches(bus, events, 100);
        await bus.publish([]);
        const { got, sub } = await consume(bus, `g-pc-${run}`);
        await got.atLeast(events.length, timeoutMs);
        await settle();
        await sub.close();
        expect(got.ids().sort()).toEqual(events.map((e) => e.id).sort());
      } finally {
        await bus.close();
      }
    });

    test('per-user-order', 'keeps each user\'s order across many users and batches, also for events published while consuming', async () => {
      const bus = await newBus(`order-${run}`);
      try {
        const users = 200;
        const events = Array.from({ length: 4_000 }, (_, i) => makeEvent(`order-${run}`, i, users));
        const { got, sub } = await consume(bus, `g-order-${run}`);
        // Concurrent publishes (not awaited one by one) still keep per-user order: calls are
        // ordered as they were made.
        await Promise.all(Array.from({ length: 20 }, (_, b) => bus.publish(events.slice(b * 200, (b + 1) * 200))));
        await got.atLeast(events.length, timeoutMs);
        await settle();
        await sub.close();
        expect(got.deliveries).toHaveLength(events.length);
        const want = userSequences(events.map((event) => ({ event, partition: 0, offset: 0, next: 0 })));
        expect(userSequences(got.deliveries)).toEqual(want);
        // Within a partition, offsets increase.
        const last = new Map<number, number>();
        for (const d of got.deliveries) {
          expect(d.offset).toBeGreaterThan(last.get(d.partition) ?? -1);
          expect(d.next).toBeGreaterThan(d.offset);
          last.set(d.partition, d.offset);
        }
      } finally {
        await bus.close();
      }
    });

    test('two-groups', 'two groups are independent: what one commits does not move the other', async () => {
      const bus = await newBus(`groups-${run}`);
      try {
        const events = Array.from({ length: 500 }, (_, i) => makeEvent(`groups-${run}`, i, 11));
        await publishInBatches(bus, events, 250);
        const a = await consume(bus, `g-a-${run}`);
        await a.got.atLeast(events.length, timeoutMs);
        await a.sub.close();
        const b = await consume(bus, `g-b-${run}`, false);
        await b.got.atLeast(events.length, timeoutMs);
        await settle();
        await b.sub.close();
        expect(a.got.ids().sort()).toEqual(events.map((e) => e.id).sort());
        expect(b.got.ids().sort()).toEqual(events.map((e) => e.id).sort());
      } finally {
        await bus.close();
      }
    });

    test('resume', 'a group resumes after its last commit across close and reopen: nothing lost, nothing repeated', async () => {
      const storage = `resume-${run}`;
      const group = `g-resume-${run}`;
      const before = Array.from({ length: 600 }, (_, i) => makeEvent(storage, i, 13));
      const after = Array.from({ length: 400 }, (_, i) => makeEvent(storage, 600 + i, 13));
      const processedFirst = 250;

      let bus = await newBus(storage);
      const first: Delivery[] = [];
      let enough: () => void = () => undefined;
      const reached = new Promise<void>((resolve) => { enough = resolve; });
      let sub: Subscription | undefined;
      try {
        await publishInBatches(bus, before, 100);
        // Processes `processedFirst` events, ignores everything after them (it is "about to
        // crash") and commits exactly what it processed, batch by batch.
        sub = await bus.subscribe({
          group,
          onBatch: async (batch) => {
            const take = batch.slice(0, Math.max(0, processedFirst - first.length));
            if (take.length === 0) return;
            first.push(...take);
            if (sub === undefined) throw new Error('delivery before subscribe resolved');
            await sub.commit(take);
            if (first.length >= processedFirst) enough();
          },
        });
        await reached;
        await sub.close();
      } finally {
        await bus.close();
      }

      bus = await newBus(storage);
      try {
        await publishInBatches(bus, after, 100);
        const second = await consume(bus, group);
        const total = before.length + after.length;
        await second.got.atLeast(total - processedFirst, timeoutMs);
        await settle();
        await second.sub.close();
        expect(second.got.deliveries).toHaveLength(total - processedFirst);
        const all = [...first.map((d) => d.event.id), ...second.got.ids()];
        expect(new Set(all).size).toBe(total);
        expect(all.sort()).toEqual([...before, ...after].map((e) => e.id).sort());
        expect(userSequences([...first, ...second.got.deliveries])).toEqual(
          userSequences([...before, ...after].map((event) => ({ event, partition: 0, offset: 0, next: 0 }))),
        );
      } finally {
        await bus.close();
      }
    });

    test('batch-10k', 'publishes one batch of 10,000 events and delivers all of them', async () => {
      const bus = await newBus(`big-${run}`);
      try {
        const events = Array.from({ length: 10_000 }, (_, i) => makeEvent(`big-${run}`, i, 1_000));
        await bus.publish(events);
        const { got, sub } = await consume(bus, `g-big-${run}`);
        await got.atLeast(events.length, timeoutMs);
        await settle();
        await sub.close();
        expect(got.deliveries).toHaveLength(events.length);
        expect(new Set(got.ids()).size).toBe(events.length);
      } finally {
        await bus.close();
      }
    });

    test('round-trip', 'every Event field comes back as it went in, optional ones and context included', async () => {
      const bus = await newBus(`rt-${run}`);
      try {
        const full: Event = {
          id: `rt-${run}-full`, type: 'purchase', userId: 'ü-1 ✓', itemId: 'item/42', value: 19.99,
          timestamp: 1_764_000_000_123, requestId: 'req-7', position: 3,
          context: { device: 'mobile', locale: 'de-DE', page: 2, ratio: 0.5, emoji: '🦅' },
        };
        const bare: Event = { id: `rt-${run}-bare`, type: 'view', userId: 'u2', itemId: 'i2', timestamp: 0 };
        const negative: Event = { id: `rt-${run}-neg`, type: 'dislike', userId: 'u2', itemId: 'i3', value: -1, timestamp: 1, position: 0 };
        await bus.publish([full, bare, negative]);
        const { got, sub } = await consume(bus, `g-rt-${run}`);
        await got.atLeast(3, timeoutMs);
        await settle();
        await sub.close();
        const byId = new Map(got.deliveries.map((d) => [d.event.id, d.event]));
        expect(got.deliveries).toHaveLength(3);
        expect(byId.get(full.id)).toEqual(full);
        expect(byId.get(bare.id)).toEqual(bare);
        expect(byId.get(negative.id)).toEqual(negative);
      } finally {
        await bus.close();
      }
    });

    test('framed', 'publishFramed (where the bus has it) delivers what publish would, in each user\'s order across both', async () => {
      const bus = await newBus(`framed-${run}`);
      try {
        const { publishFramed } = bus;
        if (publishFramed === undefined) return;
        const events = Array.from({ length: 600 }, (_, i) => makeEvent(`framed-${run}`, i, 13));
        events[5] = { ...(events[5] as Event), context: { emoji: '🦅', page: 2 }, requestId: 'r-1', position: 4 };
        const framed = async (batch: Event[]): Promise<void> => {
          const frames = frameTexts(batch.map((e) => JSON.stringify(e)));
          const records = Buffer.concat(frames);
          let end = 0;
          await publishFramed.call(bus, records, frames.map((f) => (end += f.length)), batch.map((e) => e.userId));
        };
        // Halves by turns: a user's events go through both calls, and keep their order.
        for (let b = 0; b < 6; b++) {
          const batch = events.slice(b * 100, (b + 1) * 100);
          await (b % 2 === 0 ? framed(batch) : bus.publish(batch));
        }
        const frames = frameTexts([JSON.stringify(events[0])]);
        const torn = Buffer.concat(frames);
        await expect(publishFramed.call(bus, torn, [torn.length - 1], ['user-0'])).rejects.toThrow(/not one framed record/);
        const { got, sub } = await consume(bus, `g-framed-${run}`);
        await got.atLeast(events.length, timeoutMs);
        await settle();
        await sub.close();
        expect(got.deliveries).toHaveLength(events.length);
        expect(userSequences(got.deliveries)).toEqual(userSequences(events.map((event) => ({ event, partition: 0, offset: 0, next: 0 }))));
        expect(got.deliveries.find((d) => d.event.id === events[5]?.id)?.event).toEqual(events[5]);
      } finally {
        await bus.close();
      }
    });
  });
}
