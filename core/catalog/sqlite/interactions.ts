// InteractionStore on SQLite: the interactions table, the derived item_counts, and the
// erased_users tombstones that keep erased users' events out on every later append.
import type Database from 'better-sqlite3';
import { ERASE_USER_EVENT_TYPE } from '../../domain/catalog.ts';
import type { Event } from '../../domain/event.ts';
import type { AppendOptions, AppendReport, EventQuery, InteractionStore } from '../ports.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../ports.ts';
import { parseJson } from './json.ts';

interface EventRow {
  id: string;
  type: string;
  user_id: string;
  item_id: string;
  value: number | null;
  timestamp: number;
  request_id: string | null;
  position: number | null;
  context: string | null;
}

function fromRow(r: EventRow): Event {
  const e: Event = { id: r.id, type: r.type, userId: r.user_id, itemId: r.item_id, timestamp: r.timestamp };
  if (r.value !== null) e.value = r.value;
  if (r.request_id !== null) e.requestId = r.request_id;
  if (r.position !== null) e.position = r.position;
  if (r.context !== null) e.context = parseJson<Record<string, string | number>>(r.context);
  return e;
}

export function sqliteInteractionStore(db: Database.Database): InteractionStore {
  const s = {
    insert: db.prepare(`INSERT OR IGNORE INTO interactions (id, type, user_id, item_id, value, timestamp, request_id, position, context)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    bump: db.prepare(`INSERT INTO item_counts (item_id, type, count) VALUES (?, ?, 1)
      ON CONFLICT (item_id, type) DO UPDATE SET count = count + 1`),
    erasedAt: db.prepare<[string], { erased_at: number }>('SELECT erased_at FROM erased_users WHERE user_id = ?'),
    markErased: db.prepare(`INSERT INTO erased_users (user_id, erased_at) VALUES (?, ?)
      ON CONFLICT (user_id) DO UPDATE SET erased_at = max(erased_at, excluded.erased_at)`),
    userExists: db.prepare<[string], { id: string }>('SELECT id FROM users WHERE id = ?'),
    itemExists: db.prepare<[string], { id: string }>('SELECT id FROM items WHERE id = ?'),
    // On-the-fly rows take the event's time, not the wall clock, so a rebuild from the log
    // produces the same rows.
    createUser: db.prepare(`INSERT OR IGNORE INTO users (id, attributes, created_at, updated_at) VALUES (?, '{}', ?, ?)`),
    createItem: db.prepare(`INSERT OR IGNORE INTO items (id, categories, tags, text, attributes, published_at, hidden, stub, created_at, updated_at)
      VALUES (?, '[]', '[]', '', '{}', ?, 0, 1, ?, ?)`),
    userCounts: db.prepare<[string, number], { item_id: string; type: string; n: number }>(
      'SELECT item_id, type, count(*) AS n FROM interactions WHERE user_id = ? AND timestamp <= ? GROUP BY item_id, type'),
    unbump: db.prepare('UPDATE item_counts SET count = count - ? WHERE item_id = ? AND type = ?'),
    dropEmptyCounts: db.prepare('DELETE FROM item_counts WHERE item_id = ? AND count <= 0'),
    deleteUser: db.prepare('DELETE FROM interactions WHERE user_id = ? AND timestamp <= ?'),
    deleteProfile: db.prepare('DELETE FROM users WHERE id = ? AND updated_at <= ?'),
    // The (user_id, timestamp) index holds seq (the rowid) too: rows are read only for matches.
    since: db.prepare<[string, number, number, number], EventRow>(
      'SELECT * FROM interactions WHERE user_id = ? AND (seq > ? OR timestamp >= ?) ORDER BY timestamp DESC, seq DESC LIMIT ?'),
    itemCounts: db.prepare<[string], { type: string; count: number }>('SELECT type, count FROM item_counts WHERE item_id = ?'),
    count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM interactions'),
  };

  /** Removes the user's events stamped at or before `upTo`, and their share of item_counts. */
  const deleteUserEvents = db.transaction((userId: string, upTo: number): number => {
    for (const { item_id, type, n } of s.userCounts.all(userId, upTo)) {
      s.unbump.run(n, item_id, type);
      s.dropEmptyCounts.run(item_id);
    }
    return s.deleteUser.run(userId, upTo).changes;
  });

  /**
   * Applies an erasure record from the log: tombstone, then the events and the profile as of
   * `at`. Bounded by `at` so that replaying an old erasure leaves what the user did after it.
   */
  function erase(userId: string, at: number): void {
    s.markErased.run(userId, at);
    deleteUserEvents(userId, at);
    s.deleteProfile.run(userId, at);
  }

  const append = db.transaction((events: readonly Event[], createUnknown: boolean): AppendReport => {
    const report: AppendReport = { inserted: 0, duplicates: 0, erased: 0, unknown: 0, erasures: 0, createdUsers: 0, createdItems: 0 };
    // Tombstones are few; one lookup per distinct user per batch.
    const erased = new Map<string, number | undefined>();
    // Users and items known to exist within this batch (an erasure record clears its user).
    const present = new Set<string>();
    for (const e of events) {
      if (e.type === ERASE_USER_EVENT_TYPE) {
        erase(e.userId, e.timestamp);
        present.delete(`u:${e.userId}`);
        erased.set(e.userId, s.erasedAt.get(e.userId)?.erased_at);
        report.erasures++;
        continue;
      }
      let at = erased.get(e.userId);
      if (!erased.has(e.userId)) {
        at = s.erasedAt.get(e.userId)?.erased_at;
        erased.set(e.userId, at);
      }
      if (at !== undefined && e.timestamp <= at) {
        report.erased++;
        continue;
      }
      if (!createUnknown && (s.userExists.get(e.userId) === undefined || s.itemExists.get(e.itemId) === undefined)) {
        report.unknown++;
        continue;
      }
      const stored = s.insert.run(e.id, e.type, e.userId, e.itemId, e.value ?? null, e.timestamp, e.requestId ?? null,
        e.position ?? null, e.context === undefined ? null : JSON.stringify(e.context)).changes;
      if (stored === 0) {
        report.duplicates++;
        continue;
      }
      report.inserted++;
      s.bump.run(e.itemId, e.type);
      if (createUnknown) {
        if (!present.has(`u:${e.userId}`)) {
          report.createdUsers += s.createUser.run(e.userId, e.timestamp, e.timestamp).changes;
          present.add(`u:${e.userId}`);
        }
        if (!present.has(`i:${e.itemId}`)) {
          report.createdItems += s.createItem.run(e.itemId, e.timestamp, e.timestamp, e.timestamp).changes;
          present.add(`i:${e.itemId}`);
        }
      }
    }
    return report;
  });

  /** One prepared statement per combination of filters, made on first use. */
  const queries = new Map<string, Database.Statement<unknown[], EventRow>>();
  function query(userId: string, q: EventQuery): EventRow[] {
    const limit = q.limit ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new Error(`limit ${limit} is out of range: use a whole number from 1 to ${MAX_PAGE_SIZE}`);
    }
    const where = ['user_id = ?'];
    const args: unknown[] = [userId];
    if (q.from !== undefined) { where.push('timestamp >= ?'); args.push(q.from); }
    if (q.to !== undefined) { where.push('timestamp < ?'); args.push(q.to); }
    if (q.types !== undefined) {
      if (q.types.length === 0) return [];
      where.push(`type IN (${q.types.map(() => '?').join(', ')})`);
      args.push(...q.types);
    }
    const sql = `SELECT * FROM interactions WHERE ${where.join(' AND ')} ORDER BY timestamp DESC, seq DESC LIMIT ?`;
    let stmt = queries.get(sql);
    if (stmt === undefined) {
      stmt = db.prepare<unknown[], EventRow>(sql);
      queries.set(sql, stmt);
    }
    return stmt.all(...args, limit);
  }

  return {
    append: async (events, options: AppendOptions = {}) => append.immediate(events, options.createUnknown ?? true),
    userEvents: async (userId, q = {}) => query(userId, q).map(fromRow),
    async userEventsSince(userId, since, limit) {
      if (!Number.isInteger(limit) || limit < 1) throw new Error(`limit ${limit} is out of range: use a whole number from 1`);
      return s.since.all(userId, since.seq, since.timestamp, limit).map(fromRow);
    },
    async itemCounts(itemId) {
      const out: Record<string, number> = {};
      for (const { type, count } of s.itemCounts.all(itemId)) out[type] = count;
      return out;
    },
    deleteUserEvents: async (userId) => deleteUserEvents.immediate(userId, Number.MAX_SAFE_INTEGER),
    count: async () => (s.count.get() as { n: number }).n,
    async markErased(userId, at) {
      s.markErased.run(userId, at);
    },
    erasedAt: async (userId) => s.erasedAt.get(userId)?.erased_at,
  };
}
