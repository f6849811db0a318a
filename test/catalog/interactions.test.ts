// InteractionStore on SQLite: idempotent append, queries, per-item counts, unknown users/items,
// tombstones, and erasure through eraseUser.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERASE_USER_EVENT_TYPE } from '../../core/domain/catalog.ts';
import type { Event } from '../../core/domain/event.ts';
import { eraseUser } from '../../core/catalog/erase.ts';
import { openSqliteCatalog } from '../../core/catalog/sqlite/index.ts';
import type { SqliteCatalog } from '../../core/catalog/sqlite/index.ts';

const T0 = 1_700_000_000_000;
const ev = (id: string, userId: string, itemId: string, type = 'click', timestamp = T0, extra: Partial<Event> = {}): Event =>
  ({ id, type, userId, itemId, timestamp, ...extra });

async function withCatalog(fn: (cat: SqliteCatalog) => Promise<void>): Promise<void> {
  const cat = openSqliteCatalog(':memory:');
  try {
    await fn(cat);
  } finally {
    cat.close();
  }
}

describe('SQLite InteractionStore', () => {
  it('stores an event id once: across calls and within one call, reporting duplicates', () => withCatalog(async (cat) => {
    const e = ev('e1', 'u1', 'i1', 'purchase', T0, { value: 19.99, requestId: 'r1', position: 3, context: { device: 'ios', page: 2 } });
    expect(await cat.interactions.append([e, e])).toEqual({ inserted: 1, duplicates: 1, erased: 0, unknown: 0, erasures: 0, createdUsers: 1, createdItems: 1 });
    expect(await cat.interactions.append([e, ev('e2', 'u1', 'i1')])).toMatchObject({ inserted: 1, duplicates: 1, createdUsers: 0, createdItems: 0 });
    expect(await cat.interactions.count()).toBe(2);
    expect(await cat.interactions.itemCounts('i1')).toEqual({ purchase: 1, click: 1 });
    // Round trip keeps every field, and leaves absent optional ones absent.
    const back = await cat.interactions.userEvents('u1');
    expect(back).toEqual([ev('e2', 'u1', 'i1'), e]);
    // Items created on the fly are visible stubs stamped with the event time.
    expect(await cat.items.get('i1')).toEqual({ id: 'i1', categories: [], tags: [], text: '', attributes: {}, publishedAt: T0, hidden: false, stub: true, createdAt: T0, updatedAt: T0 });
    expect(await cat.users.get('u1')).toEqual({ id: 'u1', attributes: {}, createdAt: T0, updatedAt: T0 });
    // A full upsert turns the stub into a catalog item.
    await cat.items.upsert({ id: 'i1', categories: ['books'] });
    expect(await cat.items.get('i1')).toMatchObject({ stub: false, categories: ['books'] });
  }));

  it('queries a user\'s events: latest N, time range, types', () => withCatalog(async (cat) => {
    const types = ['view', 'click', 'purchase'];
    await cat.interactions.append(Array.from({ length: 30 }, (_, i) => ev(`e${i}`, i % 2 === 0 ? 'u1' : 'u2', `i${i % 4}`, types[i % 3], T0 + i * 1_000)));
    const ids = (es: Event[]): string[] => es.map((e) => e.id);
    expect(ids(await cat.interactions.userEvents('u1', { limit: 3 }))).toEqual(['e28', 'e26', 'e24']);
    expect(ids(await cat.interactions.userEvents('u1', { from: T0 + 4_000, to: T0 + 10_000 }))).toEqual(['e8', 'e6', 'e4']);
    expect(ids(await cat.interactions.userEvents('u1', { types: ['purchase'] }))).toEqual(['e26', 'e20', 'e14', 'e8', 'e2']);
    expect(ids(await cat.interactions.userEvents('u1', { types: ['purchase', 'view'], limit: 2, from: T0 + 10_000 }))).toEqual(['e26', 'e24']);
    expect(await cat.interactions.userEvents('u1', { types: [] })).toEqual([]);
    expect(await cat.interactions.userEvents('nobody')).toEqual([]);
    await expect(cat.interactions.userEvents('u1', { limit: 0 })).rejects.toThrow(/out of range/);
  }));

  it('gives a user\'s events a read of the store did not see: stored after its last sequence number, or stamped at or after its time', () => withCatalog(async (cat) => {
    // A fresh table numbers rows from 1: the read below saw e1..e3 (sequence 3), the latest at T0 + 2 s.
    await cat.interactions.append([ev('e1', 'u1', 'i1', 'click', T0), ev('e2', 'u2', 'i1', 'click', T0 + 1_000), ev('e3', 'u1', 'i2', 'view', T0 + 2_000)]);
    const since = { seq: 3, timestamp: T0 + 2_000 };
    const ids = async (userId: string, limit = 10): Promise<string[]> => (await cat.interactions.userEventsSince(userId, since, limit)).map((e) => e.id);
    // e3 is stamped at the read's time, so it may have come after the read: it is given too.
    expect(await ids('u1')).toEqual(['e3']);
    expect(await ids('u2')).toEqual([]);
    // Stored later: newer events, and a late one stamped before the read (a replay, an import).
    await cat.interactions.append([ev('e4', 'u1', 'i3', 'click', T0 + 5_000), ev('e5', 'u1', 'i4', 'purchase', T0 - 60_000), ev('e6', 'u2', 'i3', 'click', T0 + 6_000)]);
    expect(await ids('u1')).toEqual(['e4', 'e3', 'e5']);
    expect(await ids('u1', 2)).toEqual(['e4', 'e3']);
    expect(await ids('u2')).toEqual(['e6']);
    // Whole events, as userEvents gives them.
    expect((await cat.interactions.userEventsSince('u1', since, 1))[0]).toEqual(ev('e4', 'u1', 'i3', 'click', T0 + 5_000));
    await expect(cat.interactions.userEventsSince('u1', since, 0)).rejects.toThrow(/limit 0 is out of range/);
  }));

  it('with createUnknown off, drops events naming an unknown user or item and creates nothing', () => withCatalog(async (cat) => {
    await cat.users.upsert({ id: 'known' });
    await cat.items.upsert({ id: 'book' });
    const report = await cat.interactions.append([ev('a', 'known', 'book'), ev('b', 'stranger', 'book'), ev('c', 'known', 'ghost')], { createUnknown: false });
    expect(report).toEqual({ inserted: 1, duplicates: 0, erased: 0, unknown: 2, erasures: 0, createdUsers: 0, createdItems: 0 });
    expect(await cat.users.count()).toBe(1);
    expect(await cat.items.count()).toBe(1);
    expect(await cat.interactions.itemCounts('ghost')).toEqual({});
  }));

  it('erases a user: profile, events and their share of item counts; the tombstone keeps old events out, new ones in', () => withCatalog(async (cat) => {
    await cat.users.upsert({ id: 'alice', attributes: { country: 'SE' } });
    const events = [
      ev('a1', 'alice', 'i1', 'click', T0), ev('a2', 'alice', 'i1', 'click', T0 + 1), ev('a3', 'alice', 'i2', 'purchase', T0 + 2),
      ev('b1', 'bob', 'i1', 'click', T0 + 3), ev('b2', 'bob', 'i2', 'view', T0 + 4),
    ];
    await cat.interactions.append(events);
    expect(await cat.interactions.itemCounts('i1')).toEqual({ click: 3 });
    const erasedAt = T0 + 10;
    const report = await eraseUser('alice', { users: cat.users, interactions: cat.interactions, now: () => erasedAt, hooks: { sessionCache: async () => 2 } });
    expect(report).toEqual({ userId: 'alice', erasedAt, removed: { profile: 1, events: 3, sessionCache: 2 } });
    expect(await cat.users.get('alice')).toBeUndefined();
    expect(await cat.interactions.userEvents('alice')).toEqual([]);
    expect(await cat.interactions.itemCounts('i1')).toEqual({ click: 1 });
    expect(await cat.interactions.itemCounts('i2')).toEqual({ view: 1 });
    // No row anywhere names her, except the tombstone.
    for (const [table, column] of [['interactions', 'user_id'], ['users', 'id']] as const) {
      expect(cat.db.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${column} = 'alice'`).get()).toEqual({ n: 0 });
    }
    expect(await cat.interactions.erasedAt('alice')).toBe(erasedAt);

    // Replaying the same events (as a rebuild from the log would) does not bring hers back.
    expect(await cat.interactions.append(events)).toMatchObject({ inserted: 0, erased: 3, duplicates: 2 });
    expect(await cat.users.get('alice')).toBeUndefined();
    // Coming back later is a new relationship.
    expect(await cat.interactions.append([ev('a4', 'alice', 'i1', 'click', erasedAt + 1)])).toMatchObject({ inserted: 1, createdUsers: 1 });
    expect(await cat.interactions.itemCounts('i1')).toEqual({ click: 2 });
    // Erasing again is harmless and reports what it removed this time.
    expect((await eraseUser('alice', { users: cat.users, interactions: cat.interactions, now: () => erasedAt + 5 })).removed).toEqual({ profile: 1, events: 1 });
    expect(await cat.interactions.erasedAt('alice')).toBe(erasedAt + 5);
    expect(await cat.interactions.itemCounts('i1')).toEqual({ click: 1 });
  }));

  it('applies an erasure record in order: what came before it goes, what the user did after it stays', () => withCatalog(async (cat) => {
    let clock = T0 + 100;
    const timed = openSqliteCatalog(':memory:', { now: () => clock });
    try {
      await timed.users.upsert({ id: 'carol', attributes: { plan: 'old' } });
      const erase = ev('x', 'carol', '', ERASE_USER_EVENT_TYPE, T0 + 500);
      // Out of order on purpose: c3 arrives after the erasure but is stamped before it.
      const report = await timed.interactions.append([ev('c1', 'carol', 'i1', 'click', T0 + 200), erase, ev('c2', 'carol', 'i1', 'click', T0 + 600), ev('c3', 'carol', 'i2', 'click', T0 + 300)]);
      expect(report).toMatchObject({ inserted: 2, erasures: 1, erased: 1 });
      expect((await timed.interactions.userEvents('carol')).map((e) => e.id)).toEqual(['c2']);
      expect(await timed.interactions.itemCounts('i1')).toEqual({ click: 1 });
      expect(await timed.interactions.itemCounts('i2')).toEqual({});
      expect(await timed.users.get('carol')).toMatchObject({ attributes: {}, createdAt: T0 + 600 });
      // Replaying the old record later removes nothing the user did after it, profile included.
      clock = T0 + 700;
      await timed.users.upsert({ id: 'carol', attributes: { plan: 'new' } });
      expect(await timed.interactions.append([erase])).toMatchObject({ erasures: 1 });
      expect((await timed.interactions.userEvents('carol')).map((e) => e.id)).toEqual(['c2']);
      expect(await timed.users.get('carol')).toMatchObject({ attributes: { plan: 'new' } });
    } finally {
      timed.close();
    }
    expect(await cat.interactions.count()).toBe(0);
  }));
});

// append remembers, from one batch to the next, which users and items exist and each user's
// tombstone; these would fail if it remembered past a write it did not make itself.
describe('SQLite InteractionStore append across batches', () => {
  /** Two connections to one file: the projector's (`cat`) and the API's (`api`). */
  async function withTwoConnections(fn: (cat: SqliteCatalog, api: SqliteCatalog) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'kestrel-append-memo-'));
    const cat = openSqliteCatalog(join(dir, 'catalog.db'));
    const api = openSqliteCatalog(join(dir, 'catalog.db'));
    try {
      await fn(cat, api);
    } finally {
      api.close();
      cat.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('creates a user or item again when it was deleted between batches, through either connection', () => withTwoConnections(async (cat, api) => {
    expect(await cat.interactions.append([ev('e1', 'u1', 'i1')])).toMatchObject({ createdUsers: 1, createdItems: 1 });
    expect(await cat.interactions.append([ev('e2', 'u1', 'i1')])).toMatchObject({ inserted: 1, createdUsers: 0, createdItems: 0 });
    await api.items.delete('i1');
    expect(await cat.interactions.append([ev('e3', 'u1', 'i1')])).toMatchObject({ createdUsers: 0, createdItems: 1 });
    await cat.items.delete('i1');
    expect(await cat.interactions.append([ev('e4', 'u1', 'i1')])).toMatchObject({ createdUsers: 0, createdItems: 1 });
    await api.users.delete('u1');
    expect(await cat.interactions.append([ev('e5', 'u1', 'i1')])).toMatchObject({ createdUsers: 1, createdItems: 0 });
    expect(await api.users.get('u1')).toBeDefined();
    expect(await api.items.get('i1')).toMatchObject({ stub: true });
  }));

  it('with createUnknown off, drops events of a user deleted since the last batch', () => withTwoConnections(async (cat, api) => {
    await api.users.upsert({ id: 'known' });
    await api.items.upsert({ id: 'book' });
    expect(await cat.interactions.append([ev('a', 'known', 'book')], { createUnknown: false })).toMatchObject({ inserted: 1, unknown: 0 });
    await api.users.delete('known');
    expect(await cat.interactions.append([ev('b', 'known', 'book')], { createUnknown: false })).toMatchObject({ inserted: 0, unknown: 1 });
  }));

  it('honours a tombstone another connection wrote since the last batch', () => withTwoConnections(async (cat, api) => {
    expect(await cat.interactions.append([ev('e1', 'u1', 'i1', 'click', T0)])).toMatchObject({ inserted: 1, erased: 0 });
    await api.interactions.markErased('u1', T0 + 10);
    expect(await cat.interactions.append([ev('e2', 'u1', 'i1', 'click', T0 + 5), ev('e3', 'u1', 'i1', 'click', T0 + 20)]))
      .toMatchObject({ inserted: 1, erased: 1 });
  }));

  it('forgets what a failed batch created: the rolled-back user and item are created by the next one', () => withCatalog(async (cat) => {
    // A context that cannot be written (a BigInt) throws inside the transaction, after u9 and i9 were created.
    const bad = ev('bad', 'u8', 'i8', 'click', T0, { context: { n: 1n } as unknown as Record<string, number> });
    await expect(cat.interactions.append([ev('a', 'u9', 'i9'), bad])).rejects.toThrow(/BigInt/);
    expect(await cat.users.get('u9')).toBeUndefined();
    expect(await cat.interactions.append([ev('b', 'u9', 'i9')])).toMatchObject({ inserted: 1, createdUsers: 1, createdItems: 1 });
    expect(await cat.items.get('i9')).toMatchObject({ stub: true });
  }));

  it('counts an item\'s repeated events once per type per batch, and takes an erased user\'s out in log order', () => withCatalog(async (cat) => {
    await cat.interactions.append([
      ev('a1', 'ann', 'i1', 'click', T0), ev('a2', 'ann', 'i1', 'click', T0 + 1), ev('b1', 'ben', 'i1', 'click', T0 + 2),
      ev('b2', 'ben', 'i1', 'view', T0 + 3), ev('b3', 'ben', 'i2', 'view', T0 + 4), ev('a1', 'ann', 'i1', 'click', T0),
    ]);
    expect(await cat.interactions.itemCounts('i1')).toEqual({ click: 3, view: 1 });
    // Ann clicks again, is erased, and Ben clicks after: the counts keep only Ben's.
    await cat.interactions.append([
      ev('a3', 'ann', 'i1', 'click', T0 + 5), ev('x', 'ann', '', ERASE_USER_EVENT_TYPE, T0 + 6), ev('b4', 'ben', 'i1', 'click', T0 + 7),
    ]);
    expect(await cat.interactions.itemCounts('i1')).toEqual({ click: 2, view: 1 });
    expect(await cat.interactions.itemCounts('i2')).toEqual({ view: 1 });
  }));
});
