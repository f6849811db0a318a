// The catalog projector against the real embedded log bus (core/events/log), in temporary
// folders: at-least-once delivery plus idempotent insert gives each event once; restarts,
// createUnknown, erasure with replays, and a rebuild of the SQLite file from the log.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { openLogBus } from '../../core/events/log/index.ts';
import { eraseUser } from '../../core/catalog/erase.ts';
import { createProjector, DEFAULT_PROJECTOR_GROUP, logPositions } from '../../core/catalog/projector.ts';
import type { ProjectorOptions } from '../../core/catalog/projector.ts';
import { openAppendWorker } from '../../core/catalog/sqlite/append-worker.ts';
import { openSqliteCatalog } from '../../core/catalog/sqlite/index.ts';
import type { SqliteCatalog } from '../../core/catalog/sqlite/index.ts';

const root = await mkdtemp(join(tmpdir(), 'kestrel-projector-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
const fresh = (name: string): string => join(root, `${name}-${n++}`);

const T0 = 1_700_000_000_000;
function events(run: string, count: number, users = 17, items = 41, from = 0): Event[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return { id: `${run}-${i}`, type: i % 5 === 0 ? 'purchase' : 'click', userId: `u${i % users}`, itemId: `i${i % items}`, timestamp: T0 + i };
  });
}

type LogBus = Awaited<ReturnType<typeof openLogBus>>;

async function project(bus: LogBus, cat: SqliteCatalog, options: Partial<ProjectorOptions> = {}) {
  const projector = createProjector({ bus, store: cat.interactions, positions: logPositions(bus), ...options });
  await projector.start();
  await projector.drained();
  await projector.stop();
  return projector.totals;
}

/** Everything the projector derives, in a stable order, for comparing two databases. */
function dump(cat: SqliteCatalog): Record<string, unknown[]> {
  const q = (sql: string): unknown[] => cat.db.prepare(sql).all();
  return {
    interactions: q('SELECT id, type, user_id, item_id, value, timestamp, request_id, position, context FROM interactions ORDER BY id'),
    itemCounts: q('SELECT * FROM item_counts ORDER BY item_id, type'),
    users: q('SELECT * FROM users ORDER BY id'),
    items: q('SELECT * FROM items ORDER BY id'),
    erased: q('SELECT * FROM erased_users ORDER BY user_id'),
  };
}

/** item_counts must always equal a recount of the interactions. */
function expectCountsConsistent(cat: SqliteCatalog): void {
  const recount = cat.db.prepare('SELECT item_id, type, count(*) AS count FROM interactions GROUP BY item_id, type ORDER BY item_id, type').all();
  expect(cat.db.prepare('SELECT item_id, type, count FROM item_counts ORDER BY item_id, type').all()).toEqual(recount);
}

describe('catalog projector on the embedded log bus', () => {
  it('stores each event once despite duplicates, commits offsets, and re-applies nothing after a restart', async () => {
    const dir = fresh('bus');
    let bus = await openLogBus(dir);
    const cat = openSqliteCatalog(join(root, `db-${n++}.sqlite`));
    try {
      const first = events('r', 3_000);
      // Every 10th event is sent again in a later batch (a client retry).
      for (let b = 0; b < 3_000; b += 500) await bus.publish(first.slice(b, b + 500));
      await bus.publish(first.filter((_, i) => i % 10 === 0));
      const totals = await project(bus, cat);
      expect(totals).toMatchObject({ inserted: 3_000, duplicates: 300, erased: 0, unknown: 0, createdUsers: 17, createdItems: 41 });
      expect(await cat.interactions.count()).toBe(3_000);
      expect(cat.db.prepare('SELECT count(DISTINCT id) AS n FROM interactions').get()).toEqual({ n: 3_000 });
      expect(await bus.log.committed(DEFAULT_PROJECTOR_GROUP)).toBe(bus.log.end);
      expectCountsConsistent(cat);

      // Reopen the bus (a process restart): the group resumes after its commit.
      await bus.close();
      bus = await openLogBus(dir);
      const second = events('r', 1_000, 17, 41, 3_000);
      await bus.publish(second);
      await bus.publish(first.slice(0, 50));
      const again = await project(bus, cat);
      expect(again).toMatchObject({ inserted: 1_000, duplicates: 50 });
      expect(again.inserted + again.duplicates).toBe(1_050); // nothing from before the commit came back
      expect(await cat.interactions.count()).toBe(4_000);
      expectCountsConsistent(cat);
      // Already caught up: drained() resolves at once on a fresh start.
      expect(await project(bus, cat)).toMatchObject({ batches: 0, inserted: 0 });
    } finally {
      await bus.close();
      cat.close();
    }
  });

  it('a batch that fails to store is not committed and is delivered again', async () => {
    const errors: unknown[] = [];
    const bus = await openLogBus(fresh('bus'), { onError: (e) => errors.push(e) });
    const cat = openSqliteCatalog(':memory:');
    try {
      await bus.publish(events('f', 100));
      cat.close();
      const broken = createProjector({ bus, store: cat.interactions, positions: logPositions(bus), group: 'g' });
      await broken.start();
      await expect(broken.drained()).rejects.toThrow(/not open/);
      await broken.stop();
      expect(errors).toHaveLength(1);
      expect(await bus.log.committed('g')).toBeUndefined();
      const cat2 = openSqliteCatalog(':memory:');
      expect(await project(bus, cat2, { group: 'g' })).toMatchObject({ inserted: 100 });
      cat2.close();
    } finally {
      await bus.close();
    }
  });

  it('createUnknown on creates users and stub items; off drops events naming unknown ones', async () => {
    const bus = await openLogBus(fresh('bus'));
    const on = openSqliteCatalog(':memory:');
    const off = openSqliteCatalog(':memory:');
    try {
      await off.users.upsert({ id: 'u0' });
      await off.items.upsertMany([{ id: 'i0', categories: ['c'] }, { id: 'i1' }]);
      await bus.publish(events('cu', 100, 4, 5));
      expect(await project(bus, on, { group: 'on' })).toMatchObject({ inserted: 100, createdUsers: 4, createdItems: 5 });
      expect(await on.items.get('i3')).toMatchObject({ stub: true, hidden: false, categories: [] });
      // u0 with i0 or i1: events i = 0 mod 4 and i mod 5 in {0, 1}.
      const want = Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 4 === 0 && i % 5 <= 1).length;
      expect(await project(bus, off, { group: 'off', createUnknown: false })).toMatchObject({ inserted: want, unknown: 100 - want, createdUsers: 0, createdItems: 0 });
      expect(await off.users.count()).toBe(1);
      expect(await off.items.count()).toBe(2);
    } finally {
      await bus.close();
      on.close();
      off.close();
    }
  });

  it('erasure: gone from tables and counts, and neither a replay under a new group nor a rebuild of the file brings it back', async () => {
    const bus = await openLogBus(fresh('bus'));
    const path = join(root, `erase-${n++}.sqlite`);
    let cat = openSqliteCatalog(path);
    try {
      await bus.publish(events('e', 2_000, 10, 30));
      await project(bus, cat);
      const u3 = (await cat.interactions.userEvents('u3', { limit: 10_000 })).length;
      expect(u3).toBe(200);
      const report = await eraseUser('u3', { users: cat.users, interactions: cat.interactions, bus, now: () => T0 + 1_000_000 });
      expect(report.removed).toEqual({ profile: 1, events: 200 });
      expect(await cat.interactions.count()).toBe(1_800);
      expectCountsConsistent(cat);
      const before = dump(cat);
      expect(JSON.stringify(before.interactions)).not.toContain('"u3"');

      // The live projector sees the erasure record: nothing changes.
      await project(bus, cat);
      expect(dump(cat)).toEqual(before);
      // Replay from offset 0 under a new group: u3's events are refused by the tombstone.
      const replay = await project(bus, cat, { group: 'replay' });
      expect(replay).toMatchObject({ inserted: 0, erased: 200, duplicates: 1_800, erasures: 1 });
      expect(dump(cat)).toEqual(before);
      expectCountsConsistent(cat);

      // Lose the SQLite file and rebuild it from the whole log: the same contents.
      cat.close();
      for (const suffix of ['', '-wal', '-shm']) await rm(`${path}${suffix}`, { force: true });
      cat = openSqliteCatalog(path);
      expect(await cat.interactions.count()).toBe(0);
      const rebuilt = await project(bus, cat, { group: 'rebuild' });
      expect(rebuilt).toMatchObject({ erasures: 1 });
      expect(dump(cat)).toEqual(before);
      expect(await cat.users.get('u3')).toBeUndefined();
    } finally {
      await bus.close();
      cat.close();
    }
  });

  it('rebuild without erasures: delete the file, re-project the whole log, same contents', async () => {
    const bus = await openLogBus(fresh('bus'), { segmentBytes: 256 * 1024 });
    const path = join(root, `rebuild-${n++}.sqlite`);
    let cat = openSqliteCatalog(path);
    try {
      const all = events('rb', 20_000, 300, 500).map((e, i) => (i % 3 === 0 ? { ...e, value: i / 7, requestId: `req-${i >> 4}`, position: i % 16, context: { device: 'web', page: i % 4 } } : e));
      for (let b = 0; b < all.length; b += 1_000) await bus.publish(all.slice(b, b + 1_000));
      await bus.publish(all.slice(0, 777));
      await project(bus, cat);
      const before = dump(cat);
      expect(before.interactions).toHaveLength(20_000);
      cat.close();
      for (const suffix of ['', '-wal', '-shm']) await rm(`${path}${suffix}`, { force: true });
      cat = openSqliteCatalog(path);
      await project(bus, cat, { group: 'rebuild' });
      expect(dump(cat)).toEqual(before);
      expect((await cat.interactions.userEvents('u3', { limit: 1 }))[0]).toEqual(all.filter((e) => e.userId === 'u3').at(-1));
    } finally {
      await bus.close();
      cat.close();
    }
  });

  it('in a worker thread: each event once, offsets committed, nothing re-applied after a restart, API writes alongside without SQLITE_BUSY', async () => {
    const dir = fresh('bus');
    const path = join(root, `worker-${n++}.sqlite`);
    let bus = await openLogBus(dir);
    const cat = openSqliteCatalog(path);
    let writer = openAppendWorker(path);
    try {
      const first = events('w', 20_000, 300, 500);
      for (let b = 0; b < first.length; b += 1_000) await bus.publish(first.slice(b, b + 1_000));
      await bus.publish(first.filter((_, i) => i % 10 === 0));
      const projector = createProjector({ bus, store: writer, positions: logPositions(bus) });
      await projector.start();
      // The API's item writes on the main connection while the worker writes interactions.
      let upserts = 0;
      let writing = true;
      const api = (async () => {
        while (writing) {
          await cat.items.upsertMany(Array.from({ length: 50 }, (_, k) => ({ id: `api-${upserts}-${k}`, categories: ['c'] })));
          upserts++;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      await projector.drained();
      writing = false;
      await api;
      await projector.stop();
      expect(upserts).toBeGreaterThan(0);
      expect(projector.totals).toMatchObject({ inserted: 20_000, duplicates: 2_000, createdUsers: 300, createdItems: 500 });
      expect(await cat.interactions.count()).toBe(20_000);
      expect(cat.db.prepare('SELECT count(DISTINCT id) AS n FROM interactions').get()).toEqual({ n: 20_000 });
      expect(await cat.items.count()).toBe(500 + upserts * 50);
      expect(await bus.log.committed(DEFAULT_PROJECTOR_GROUP)).toBe(bus.log.end);
      expectCountsConsistent(cat);

      // Restart the bus and the worker: the group resumes after its commit.
      await writer.close();
      await bus.close();
      bus = await openLogBus(dir);
      writer = openAppendWorker(path);
      await bus.publish(events('w', 500, 300, 500, 20_000));
      await bus.publish(first.slice(0, 20));
      const again = await project(bus, cat, { store: writer });
      expect(again).toMatchObject({ inserted: 500, duplicates: 20 });
      expect(await cat.interactions.count()).toBe(20_500);

      // Erasure through the main connection, its record applied by the worker in log order.
      await eraseUser('u3', { users: cat.users, interactions: cat.interactions, bus, now: () => T0 + 1_000_000 });
      await bus.publish(first.filter((e) => e.userId === 'u3').slice(0, 5));
      expect(await project(bus, cat, { store: writer })).toMatchObject({ inserted: 0, erased: 5, erasures: 1 });
      expect(await cat.interactions.userEvents('u3')).toEqual([]);
      expectCountsConsistent(cat);
    } finally {
      await writer.close();
      await bus.close();
      cat.close();
    }
  });

  it('drained() without positions says what to pass', async () => {
    const bus = await openLogBus(fresh('bus'));
    try {
      const cat = openSqliteCatalog(':memory:');
      const projector = createProjector({ bus, store: cat.interactions });
      await expect(projector.drained()).rejects.toThrow(/logPositions\(bus\)/);
      cat.close();
    } finally {
      await bus.close();
    }
  });
});
