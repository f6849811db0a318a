// ItemStore and UserStore on SQLite: CRUD, merge patches, cursor pagination, filters, batches,
// schema versioning. Each test opens its own database file in a temporary folder.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { Item, ItemInput } from '../../core/domain/catalog.ts';
import type { Page } from '../../core/catalog/ports.ts';
import { DEFAULT_CHECKPOINT_PAGES, openSqliteCatalog, SCHEMA_VERSION } from '../../core/catalog/sqlite/index.ts';
import type { SqliteCatalog } from '../../core/catalog/sqlite/index.ts';

const root = await mkdtemp(join(tmpdir(), 'kestrel-catalog-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
function open(now?: () => number): SqliteCatalog {
  return openSqliteCatalog(join(root, `db-${n++}.sqlite`), now === undefined ? {} : { now });
}

const item = (i: number, extra: Partial<ItemInput> = {}): ItemInput => ({
  id: `item-${String(i).padStart(5, '0')}`,
  categories: [`c${i % 5}`, `c${i % 5}/s${i % 3}`],
  tags: [`t${i % 7}`],
  text: `item number ${i}`,
  attributes: { price: i * 1.5, brand: `b${i % 4}`, onSale: i % 2 === 0 },
  publishedAt: 1_700_000_000_000 + i,
  ...extra,
});

async function allPages<T>(list: (cursor: string | undefined) => Promise<Page<T>>, between?: (page: number) => Promise<void>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (let page = 0; ; page++) {
    const p = await list(cursor);
    out.push(...p.rows);
    if (p.next === undefined) return out;
    cursor = p.next;
    await between?.(page);
  }
}

describe('SQLite catalog: items', () => {
  it('creates, reads, replaces, patches (attributes merge), deletes and counts', async () => {
    let clock = 1_000;
    const cat = open(() => clock);
    try {
      expect(await cat.items.upsert(item(1))).toEqual({ id: 'item-00001', outcome: 'created' });
      const got = await cat.items.get('item-00001');
      expect(got).toEqual<Item>({
        id: 'item-00001', categories: ['c1', 'c1/s1'], tags: ['t1'], text: 'item number 1',
        attributes: { price: 1.5, brand: 'b1', onSale: false }, publishedAt: 1_700_000_000_001,
        hidden: false, stub: false, createdAt: 1_000, updatedAt: 1_000,
      });
      clock = 2_000;
      // PUT semantics: what is left out takes its default.
      expect(await cat.items.upsert({ id: 'item-00001', categories: ['x'] })).toEqual({ id: 'item-00001', outcome: 'updated' });
      expect(await cat.items.get('item-00001')).toMatchObject({ categories: ['x'], tags: [], text: '', attributes: {}, publishedAt: 2_000, createdAt: 1_000, updatedAt: 2_000 });
      expect((await cat.items.list({ category: 'c1' })).rows).toEqual([]);
      expect((await cat.items.list({ category: 'x' })).rows.map((i) => i.id)).toEqual(['item-00001']);

      await cat.items.upsert(item(2));
      clock = 3_000;
      const patched = await cat.items.patch('item-00002', { attributes: { price: 9, color: 'red' }, hidden: true });
      expect(patched).toMatchObject({ attributes: { price: 9, brand: 'b2', onSale: true, color: 'red' }, hidden: true, categories: ['c2', 'c2/s2'], updatedAt: 3_000 });
      expect(await cat.items.patch('nope', { hidden: true })).toBeUndefined();

      expect(await cat.items.count()).toBe(2);
      expect(await cat.items.delete('item-00002')).toBe(true);
      expect(await cat.items.delete('item-00002')).toBe(false);
      expect(await cat.items.get('item-00002')).toBeUndefined();
      expect(await cat.items.count()).toBe(1);
      // No orphan join rows.
      expect(cat.db.prepare('SELECT count(*) AS n FROM item_categories WHERE item_id = ?').get('item-00002')).toEqual({ n: 0 });
      await expect(cat.items.upsert({ id: '' })).rejects.toThrow(/non-empty string/);
    } finally {
      cat.close();
    }
  });

  it('upserts 10,000 items in one call, reporting created and then updated per id', async () => {
    const cat = open();
    try {
      const items = Array.from({ length: 10_000 }, (_, i) => item(i));
      const t0 = performance.now();
      const first = await cat.items.upsertMany(items);
      const ms = performance.now() - t0;
      console.log(`upsertMany 10,000 items: ${ms.toFixed(0)} ms`);
      expect(first).toHaveLength(10_000);
      expect(first.every((r, i) => r.outcome === 'created' && r.id === items[i]?.id)).toBe(true);
      const second = await cat.items.upsertMany(items.slice(0, 10).concat([item(10_000)]));
      expect(second.map((r) => r.outcome)).toEqual([...Array<string>(10).fill('updated'), 'created']);
      expect(await cat.items.count()).toBe(10_001);
      expect((await cat.items.list({ category: 'c3', limit: 10_000 })).rows).toHaveLength(2_000);
    } finally {
      cat.close();
    }
  });

  it('a batch is one transaction: a bad row rolls the whole call back', async () => {
    const cat = open();
    try {
      await expect(cat.items.upsertMany([item(1), { id: '' }])).rejects.toThrow(/non-empty/);
      expect(await cat.items.count()).toBe(0);
    } finally {
      cat.close();
    }
  });

  it('pages cover every row exactly once in id order while rows are inserted between pages', async () => {
    const cat = open();
    try {
      // Even ids now, odd ids (on both sides of the cursor) while paging.
      await cat.items.upsertMany(Array.from({ length: 500 }, (_, i) => item(i * 2)));
      const seen = await allPages((cursor) => cat.items.list(cursor === undefined ? { limit: 37 } : { cursor, limit: 37 }), async (page) => {
        await cat.items.upsertMany(Array.from({ length: 10 }, (_, k) => item((page * 10 + k) * 2 + 1)));
      });
      const ids = seen.map((i) => i.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort()).toEqual(ids);
      for (let i = 0; i < 500; i++) expect(ids).toContain(item(i * 2).id);
      expect((await cat.items.list({ limit: 1 })).next).toMatch(/^[A-Za-z0-9_-]+$/);
      await expect(cat.items.list({ limit: 0 })).rejects.toThrow(/limit 0 is out of range/);
      await expect(cat.items.list({ cursor: 'not a cursor!' })).rejects.toThrow(/pass the 'next'/);
    } finally {
      cat.close();
    }
  });

  it('filters by category and leaves hidden items out on request, with pagination', async () => {
    const cat = open();
    try {
      await cat.items.upsertMany(Array.from({ length: 100 }, (_, i) => item(i, { hidden: i % 10 === 0 })));
      const inC2 = await allPages((cursor) => cat.items.list({ category: 'c2', limit: 7, ...(cursor === undefined ? {} : { cursor }) }));
      expect(inC2.map((i) => i.id)).toEqual(Array.from({ length: 20 }, (_, k) => item(k * 5 + 2).id));
      const visible = await allPages((cursor) => cat.items.list({ category: 'c0', visibleOnly: true, limit: 3, ...(cursor === undefined ? {} : { cursor }) }));
      expect(visible.map((i) => i.id)).toEqual(Array.from({ length: 20 }, (_, k) => k * 5).filter((i) => i % 10 !== 0).map((i) => item(i).id));
      expect((await cat.items.list({ visibleOnly: true, limit: 1_000 })).rows).toHaveLength(90);
      // The category filter is an index lookup, not a scan of items.
      const plan = cat.db.prepare(`EXPLAIN QUERY PLAN SELECT i.* FROM item_categories c JOIN items i ON i.id = c.item_id
        WHERE c.category = ? AND c.item_id > ? ORDER BY c.item_id LIMIT ?`).all('c2', '', 10) as { detail: string }[];
      expect(plan.map((p) => p.detail).join('\n')).not.toMatch(/SCAN i\b|SCAN items/);
    } finally {
      cat.close();
    }
  });
});

describe('SQLite catalog: users', () => {
  it('creates, reads, merges, lists, deletes and counts', async () => {
    let clock = 5;
    const cat = open(() => clock);
    try {
      const res = await cat.users.upsertMany([{ id: 'u1', attributes: { country: 'DE' } }, { id: 'u2' }, { id: 'u1', attributes: { country: 'FR' } }]);
      expect(res.map((r) => r.outcome)).toEqual(['created', 'created', 'updated']);
      expect(await cat.users.get('u1')).toEqual({ id: 'u1', attributes: { country: 'FR' }, createdAt: 5, updatedAt: 5 });
      clock = 6;
      expect(await cat.users.patch('u1', { attributes: { age: 30, vip: true } })).toEqual({ id: 'u1', attributes: { country: 'FR', age: 30, vip: true }, createdAt: 5, updatedAt: 6 });
      expect(await cat.users.upsert({ id: 'u3' })).toEqual({ id: 'u3', outcome: 'created' });
      const all = await allPages((cursor) => cat.users.list({ limit: 2, ...(cursor === undefined ? {} : { cursor }) }));
      expect(all.map((u) => u.id)).toEqual(['u1', 'u2', 'u3']);
      expect(await cat.users.delete('u2')).toBe(true);
      expect(await cat.users.count()).toBe(2);
      expect(await cat.users.patch('u2', {})).toBeUndefined();
    } finally {
      cat.close();
    }
  });
});

describe('SQLite catalog: schema', () => {
  it('opens in WAL mode with the current schema version, reopens without migrating again, and refuses a newer file', () => {
    const path = join(root, 'schema.sqlite');
    const cat = openSqliteCatalog(path);
    expect(cat.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(cat.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(cat.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    cat.close();
    openSqliteCatalog(path).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => openSqliteCatalog(path)).toThrow(/newer than this Kestrel's/);
  });

  it('migrates a version-1 file: the unused interactions-by-item index goes, the events stay', async () => {
    const path = join(root, 'schema-v1.sqlite');
    const cat = openSqliteCatalog(path);
    await cat.interactions.append([{ id: 'e1', type: 'view', userId: 'u1', itemId: 'i1', timestamp: 1 }]);
    cat.close();
    // What a file written by the first schema looks like.
    const raw = new Database(path);
    raw.exec('CREATE INDEX interactions_item ON interactions (item_id)');
    raw.pragma('user_version = 1');
    raw.close();
    const migrated = openSqliteCatalog(path);
    try {
      expect(migrated.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(migrated.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'interactions'").pluck().all())
        .toEqual(expect.arrayContaining(['interactions_user_time']));
      expect(migrated.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'interactions_item'").pluck().get()).toBe(0);
      expect((await migrated.interactions.userEvents('u1')).map((e) => e.id)).toEqual(['e1']);
    } finally {
      migrated.close();
    }
  });

  it('checkpoints the WAL after the configured number of pages', () => {
    const dflt = openSqliteCatalog(join(root, 'checkpoint-default.sqlite'));
    const set = openSqliteCatalog(join(root, 'checkpoint-set.sqlite'), { checkpointPages: 16_000 });
    try {
      expect(dflt.db.pragma('wal_autocheckpoint', { simple: true })).toBe(DEFAULT_CHECKPOINT_PAGES);
      expect(set.db.pragma('wal_autocheckpoint', { simple: true })).toBe(16_000);
    } finally {
      dflt.close();
      set.close();
    }
  });

  it('works in memory', async () => {
    const cat = openSqliteCatalog(':memory:');
    await cat.items.upsert({ id: 'a' });
    expect(await cat.items.count()).toBe(1);
    cat.close();
  });
});
