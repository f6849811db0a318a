// UserStore on SQLite.
import type Database from 'better-sqlite3';
import type { Attributes, User, UserInput, UserPatch } from '../../domain/catalog.ts';
import type { ListOptions, Page, UpsertResult, UserStore } from '../ports.ts';
import { checkId } from './items.ts';
import { decodeCursor, encodeCursor, pageSize, parseJson } from './json.ts';

interface UserRow {
  id: string;
  attributes: string;
  created_at: number;
  updated_at: number;
}

function fromRow(r: UserRow): User {
  return { id: r.id, attributes: parseJson<Attributes>(r.attributes), createdAt: r.created_at, updatedAt: r.updated_at };
}

export function sqliteUserStore(db: Database.Database, now: () => number): UserStore {
  const s = {
    // created_at survives updates; `changes` tells created from updated only with a prior read.
    exists: db.prepare<[string], { id: string }>('SELECT id FROM users WHERE id = ?'),
    upsert: db.prepare(`INSERT INTO users (id, attributes, created_at, updated_at) VALUES (@id, @attributes, @now, @now)
      ON CONFLICT (id) DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at`),
    get: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
    delete: db.prepare('DELETE FROM users WHERE id = ?'),
    count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM users'),
    list: db.prepare<[string, number], UserRow>('SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?'),
  };

  function write(user: UserInput, at: number): UpsertResult {
    const id = checkId('user', user.id);
    const exists = s.exists.get(id) !== undefined;
    s.upsert.run({ id, attributes: JSON.stringify(user.attributes ?? {}), now: at });
    return { id, outcome: exists ? 'updated' : 'created' };
  }

  const writeMany = db.transaction((users: readonly UserInput[], at: number) => users.map((u) => write(u, at)));
  const patchTx = db.transaction((id: string, patch: UserPatch): User | undefined => {
    const row = s.get.get(id);
    if (row === undefined) return undefined;
    write({ id, attributes: { ...parseJson<Attributes>(row.attributes), ...patch.attributes } }, now());
    const updated = s.get.get(id);
    return updated === undefined ? undefined : fromRow(updated);
  });

  return {
    upsert: async (user) => (writeMany.immediate([user], now()) as UpsertResult[])[0] as UpsertResult,
    upsertMany: async (users) => writeMany.immediate(users, now()),
    async get(id) {
      const row = s.get.get(id);
      return row === undefined ? undefined : fromRow(row);
    },
    async list(options: ListOptions = {}): Promise<Page<User>> {
      const limit = pageSize(options);
      const rows = s.list.all(decodeCursor(options.cursor) ?? '', limit + 1);
      const page = rows.slice(0, limit).map(fromRow);
      const last = page.at(-1);
      return rows.length > limit && last !== undefined ? { rows: page, next: encodeCursor(last.id) } : { rows: page };
    },
    patch: async (id, patch) => patchTx.immediate(id, patch),
    delete: async (id) => s.delete.run(id).changes > 0,
    count: async () => (s.count.get() as { n: number }).n,
  };
}
