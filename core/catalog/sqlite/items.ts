// ItemStore on SQLite: one row per item plus item_categories / item_tags join rows for filters.
import type Database from 'better-sqlite3';
import type { Attributes, Item, ItemInput, ItemPatch } from '../../domain/catalog.ts';
import type { ItemListOptions, ItemStore, Page, UpsertResult } from '../ports.ts';
import { decodeCursor, encodeCursor, pageSize, parseJson } from './json.ts';

interface ItemRow {
  id: string;
  categories: string;
  tags: string;
  text: string;
  attributes: string;
  published_at: number;
  hidden: number;
  stub: number;
  created_at: number;
  updated_at: number;
}

function fromRow(r: ItemRow): Item {
  return {
    id: r.id,
    categories: parseJson<string[]>(r.categories),
    tags: parseJson<string[]>(r.tags),
    text: r.text,
    attributes: parseJson<Attributes>(r.attributes),
    publishedAt: r.published_at,
    hidden: r.hidden === 1,
    stub: r.stub === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function checkId(kind: string, id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw new Error(`${kind} id must be a non-empty string, got ${JSON.stringify(id)}`);
  return id;
}

export function sqliteItemStore(db: Database.Database, now: () => number): ItemStore {
  const s = {
    created: db.prepare<[string], { created_at: number }>('SELECT created_at FROM items WHERE id = ?'),
    insert: db.prepare(`INSERT INTO items (id, categories, tags, text, attributes, published_at, hidden, stub, created_at, updated_at)
      VALUES (@id, @categories, @tags, @text, @attributes, @published_at, @hidden, 0, @now, @now)`),
    update: db.prepare(`UPDATE items SET categories = @categories, tags = @tags, text = @text, attributes = @attributes,
      published_at = @published_at, hidden = @hidden, stub = 0, updated_at = @now WHERE id = @id`),
    dropCategories: db.prepare('DELETE FROM item_categories WHERE item_id = ?'),
    addCategory: db.prepare('INSERT OR IGNORE INTO item_categories (category, item_id) VALUES (?, ?)'),
    dropTags: db.prepare('DELETE FROM item_tags WHERE item_id = ?'),
    addTag: db.prepare('INSERT OR IGNORE INTO item_tags (tag, item_id) VALUES (?, ?)'),
    get: db.prepare<[string], ItemRow>('SELECT * FROM items WHERE id = ?'),
    delete: db.prepare('DELETE FROM items WHERE id = ?'),
    count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM items'),
    list: db.prepare<[string, number], ItemRow>('SELECT * FROM items WHERE id > ? ORDER BY id LIMIT ?'),
    listVisible: db.prepare<[string, number], ItemRow>('SELECT * FROM items WHERE id > ? AND hidden = 0 ORDER BY id LIMIT ?'),
    listCategory: db.prepare<[string, string, number], ItemRow>(`SELECT i.* FROM item_categories c JOIN items i ON i.id = c.item_id
      WHERE c.category = ? AND c.item_id > ? ORDER BY c.item_id LIMIT ?`),
    listCategoryVisible: db.prepare<[string, string, number], ItemRow>(`SELECT i.* FROM item_categories c JOIN items i ON i.id = c.item_id
      WHERE c.category = ? AND c.item_id > ? AND i.hidden = 0 ORDER BY c.item_id LIMIT ?`),
  };

  /** Writes one item whole; the caller holds the transaction. */
  function write(item: ItemInput, at: number): UpsertResult {
    const id = checkId('item', item.id);
    const categories = item.categories ?? [];
    const tags = item.tags ?? [];
    const row = {
      id,
      categories: JSON.stringify(categories),
      tags: JSON.stringify(tags),
      text: item.text ?? '',
      attributes: JSON.stringify(item.attributes ?? {}),
      published_at: item.publishedAt ?? at,
      hidden: item.hidden === true ? 1 : 0,
      now: at,
    };
    const exists = s.created.get(id) !== undefined;
    if (exists) {
      s.update.run(row);
      s.dropCategories.run(id);
      s.dropTags.run(id);
    } else {
      s.insert.run(row);
    }
    for (const c of categories) s.addCategory.run(c, id);
    for (const t of tags) s.addTag.run(t, id);
    return { id, outcome: exists ? 'updated' : 'created' };
  }

  const writeMany = db.transaction((items: readonly ItemInput[], at: number) => items.map((i) => write(i, at)));
  const remove = db.transaction((id: string) => {
    s.dropCategories.run(id);
    s.dropTags.run(id);
    return s.delete.run(id).changes > 0;
  });
  const patchTx = db.transaction((id: string, patch: ItemPatch): Item | undefined => {
    const row = s.get.get(id);
    if (row === undefined) return undefined;
    const cur = fromRow(row);
    write({
      id,
      categories: patch.categories ?? cur.categories,
      tags: patch.tags ?? cur.tags,
      text: patch.text ?? cur.text,
      attributes: { ...cur.attributes, ...patch.attributes },
      publishedAt: patch.publishedAt ?? cur.publishedAt,
      hidden: patch.hidden ?? cur.hidden,
    }, now());
    const updated = s.get.get(id);
    return updated === undefined ? undefined : fromRow(updated);
  });

  return {
    upsert: async (item) => (writeMany.immediate([item], now()) as UpsertResult[])[0] as UpsertResult,
    upsertMany: async (items) => writeMany.immediate(items, now()),
    async get(id) {
      const row = s.get.get(id);
      return row === undefined ? undefined : fromRow(row);
    },
    async list(options: ItemListOptions = {}): Promise<Page<Item>> {
      const limit = pageSize(options);
      const after = decodeCursor(options.cursor) ?? '';
      const rows = options.category === undefined
        ? (options.visibleOnly === true ? s.listVisible : s.list).all(after, limit + 1)
        : (options.visibleOnly === true ? s.listCategoryVisible : s.listCategory).all(options.category, after, limit + 1);
      const page = rows.slice(0, limit).map(fromRow);
      const last = page.at(-1);
      return rows.length > limit && last !== undefined ? { rows: page, next: encodeCursor(last.id) } : { rows: page };
    },
    patch: async (id, patch) => patchTx.immediate(id, patch),
    delete: async (id) => remove.immediate(id),
    count: async () => (s.count.get() as { n: number }).n,
  };
}
