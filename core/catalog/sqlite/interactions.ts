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

/**
 * The ids among `ids` already stored, for POST /v1/events to report re-sent events as duplicates:
 * one statement for up to 10,000 ids (one JSON parameter, no variable-count limit). Any
 * connection to the catalog file will do, a read-only one included.
 */
export function storedEventIds(db: Database.Database): (ids: readonly string[]) => Set<string> {
  const known = db.prepare<[string], string>('SELECT id FROM interactions WHERE id IN (SELECT value FROM json_each(?))').pluck();
  return (ids) => new Set(ids.length === 0 ? [] : known.all(JSON.stringify(ids)));
}

/** Entries past which the memo starts afresh rather than grow: ~100 MB of ids at the most. */
const MEMO_LIMIT = 500_000;

/**
 * What `append` learned of the file, kept from one batch to the next: users and items known to
 * exist, and each user's tombstone (or that there is none). Looking them up again in every batch
 * (a user and an item stub insert and a tombstone read per event) took the projector's catch-up
 * from 17 to 23-25 ms per 1,000 events over 10,000 users and 50,000 items. It holds only
 * while nothing but `append` wrote: another connection's commit moves `PRAGMA data_version`, any
 * other write on this connection moves `total_changes()` past what the last append left, and
 * either empties the memo.
 */
class AppendMemo {
  readonly users = new Set<string>();
  readonly items = new Set<string>();
  readonly erasedAt = new Map<string, number | undefined>();
  #changes = -1;
  #version = -1;

  begin({ changes, version }: { changes: number; version: number }): void {
    if (changes !== this.#changes || version !== this.#version) this.clear();
    this.#version = version;
  }

  end(changes: number): void {
    this.#changes = changes;
  }

  clear(): void {
    this.users.clear();
    this.items.clear();
    this.erasedAt.clear();
    this.#changes = -1;
  }

  noteUser(id: string): void {
    if (this.users.size >= MEMO_LIMIT) this.users.clear();
    this.users.add(id);
  }

  noteItem(id: string): void {
    if (this.items.size >= MEMO_LIMIT) this.items.clear();
    this.items.add(id);
  }

  noteErasedAt(userId: string, at: number | undefined): void {
    if (this.erasedAt.size >= MEMO_LIMIT) this.erasedAt.clear();
    this.erasedAt.set(userId, at);
  }
}

export function sqliteInteractionStore(db: Database.Database): InteractionStore {
  const s = {
    insert: db.prepare(`INSERT OR IGNORE INTO interactions (id, type, user_id, item_id, value, timestamp, request_id, position, context)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    bump: db.prepare(`INSERT INTO item_counts (item_id, type, count) VALUES (?, ?, ?)
      ON CONFLICT (item_id, type) DO UPDATE SET count = count + excluded.count`),
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
    // Whether `since` finds anything, from that index alone (no row read): a SELECT * costs ~20 µs
    // even when it finds nothing. With nothing stored after the sequence number, only the time
    // range is looked at, a seek instead of a walk over the user's entries.
    newestSeq: db.prepare<[], number | null>('SELECT max(seq) FROM interactions').pluck(),
    anySince: db.prepare<[string, number, number], number>('SELECT 1 FROM interactions WHERE user_id = ? AND (seq > ? OR timestamp >= ?) LIMIT 1').pluck(),
    anyAt: db.prepare<[string, number], number>('SELECT 1 FROM interactions WHERE user_id = ? AND timestamp >= ? LIMIT 1').pluck(),
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

  const memo = new AppendMemo();
  const memoState = db.prepare<[], { changes: number; version: number }>(
    'SELECT total_changes() AS changes, (SELECT data_version FROM pragma_data_version) AS version');

  const append = db.transaction((events: readonly Event[], createUnknown: boolean): AppendReport => {
    // Inside the write transaction: no other connection can commit until it ends.
    memo.begin(memoState.get() as { changes: number; version: number });
    const report: AppendReport = { inserted: 0, duplicates: 0, erased: 0, unknown: 0, erasures: 0, createdUsers: 0, createdItems: 0 };
    const { users, items, erasedAt } = memo;
    // Per (item, type): the inserted events' share of item_counts, written once per pair, and
    // before an erasure, which takes the user's events back out of the counts.
    const bumps = new Map<string, { itemId: string; type: string; n: number }>();
    const writeBumps = (): void => {
      for (const { itemId, type, n } of bumps.values()) s.bump.run(itemId, type, n);
      bumps.clear();
    };
    for (const e of events) {
      if (e.type === ERASE_USER_EVENT_TYPE) {
        writeBumps();
        erase(e.userId, e.timestamp);
        users.delete(e.userId);
        erasedAt.set(e.userId, s.erasedAt.get(e.userId)?.erased_at);
        report.erasures++;
        continue;
      }
      let at = erasedAt.get(e.userId);
      if (at === undefined && !erasedAt.has(e.userId)) {
        at = s.erasedAt.get(e.userId)?.erased_at;
        memo.noteErasedAt(e.userId, at);
      }
      if (at !== undefined && e.timestamp <= at) {
        report.erased++;
        continue;
      }
      if (!createUnknown && !(userExists(e.userId) && itemExists(e.itemId))) {
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
      const key = `${e.itemId}\u0000${e.type}`;
      const bump = bumps.get(key);
      if (bump === undefined) bumps.set(key, { itemId: e.itemId, type: e.type, n: 1 });
      else bump.n++;
      if (createUnknown) {
        if (!users.has(e.userId)) {
          report.createdUsers += s.createUser.run(e.userId, e.timestamp, e.timestamp).changes;
          memo.noteUser(e.userId);
        }
        if (!items.has(e.itemId)) {
          report.createdItems += s.createItem.run(e.itemId, e.timestamp, e.timestamp, e.timestamp).changes;
          memo.noteItem(e.itemId);
        }
      }
    }
    writeBumps();
    return report;
  });

  // Through the memo: a row found once stays found while the memo holds.
  function userExists(id: string): boolean {
    if (memo.users.has(id)) return true;
    if (s.userExists.get(id) === undefined) return false;
    memo.noteUser(id);
    return true;
  }

  function itemExists(id: string): boolean {
    if (memo.items.has(id)) return true;
    if (s.itemExists.get(id) === undefined) return false;
    memo.noteItem(id);
    return true;
  }

  function appendEvents(events: readonly Event[], createUnknown: boolean): AppendReport {
    try {
      const report = append.immediate(events, createUnknown);
      memo.end((memoState.get() as { changes: number }).changes);
      return report;
    } catch (error) {
      // Rolled back: what the memo learned inside the transaction may be gone from the file (the
      // changes count moved too, so the next batch would forget it anyway; this says so here).
      memo.clear();
      throw error;
    }
  }

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
    append: async (events, options: AppendOptions = {}) => appendEvents(events, options.createUnknown ?? true),
    userEvents: async (userId, q = {}) => query(userId, q).map(fromRow),
    async userEventsSince(userId, since, limit) {
      if (!Number.isInteger(limit) || limit < 1) throw new Error(`limit ${limit} is out of range: use a whole number from 1`);
      // Serving asks this on every request, and for most users the answer is none.
      const stored = (s.newestSeq.get() ?? 0) > since.seq;
      const any = stored ? s.anySince.get(userId, since.seq, since.timestamp) : s.anyAt.get(userId, since.timestamp);
      if (any === undefined) return [];
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
