// The embedded catalog: items, users and interactions in one SQLite file (better-sqlite3).
import Database from 'better-sqlite3';
import type { InteractionStore, ItemStore, UserStore } from '../ports.ts';
import { sqliteInteractionStore } from './interactions.ts';
import { sqliteItemStore } from './items.ts';
import { migrate } from './schema.ts';
import { sqliteUserStore } from './users.ts';

export { SCHEMA_VERSION } from './schema.ts';

export interface SqliteCatalogOptions {
  /** Wall clock for createdAt/updatedAt and publishedAt defaults; tests pin it. */
  now?: () => number;
  /**
   * WAL pages after which a commit of this connection checkpoints the WAL into the database
   * (`PRAGMA wal_autocheckpoint`). Default 8,000 (~32 MiB).
   */
  checkpointPages?: number;
}

/**
 * SQLite's default checkpoints after 1,000 pages: a 1,000-event batch of the projector dirties
 * more than that (random-keyed indexes), so every commit copied its pages a second time, into the
 * database file, and synced it. At 8,000 a page rewritten by several batches is copied once per
 * checkpoint (the commit of a 1,000-event batch over 200,000 events: 17 → 8–10 ms).
 */
export const DEFAULT_CHECKPOINT_PAGES = 8_000;

export interface SqliteCatalog {
  items: ItemStore;
  users: UserStore;
  interactions: InteractionStore;
  /** The open database, for adapters that need a query the ports do not offer yet. */
  db: Database.Database;
  close(): void;
}

/** Opens (creating and migrating as needed) the catalog at `path`; ':memory:' works. */
export function openSqliteCatalog(path: string, options: SqliteCatalogOptions = {}): SqliteCatalog {
  const db = new Database(path);
  try {
    // WAL: readers never block the projector's writes. synchronous=NORMAL is safe under WAL (no
    // corruption); a power cut may lose the last commits, which the projector replays from the
    // bus because it commits bus offsets only after the SQLite transaction.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // The projector may write from its own connection (a worker thread) while the API writes
    // items and users: a writer waits for the other's transaction instead of failing with
    // SQLITE_BUSY. Writes take the lock up front (BEGIN IMMEDIATE), so a wait never ends in
    // SQLITE_BUSY_SNAPSHOT.
    db.pragma('busy_timeout = 10000');
    // 64 MiB page cache: the interaction indexes are random-keyed B-trees that outgrow the 2 MiB default.
    db.pragma('cache_size = -65536');
    db.pragma(`wal_autocheckpoint = ${options.checkpointPages ?? DEFAULT_CHECKPOINT_PAGES}`);
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }
  const now = options.now ?? Date.now;
  return {
    items: sqliteItemStore(db, now),
    users: sqliteUserStore(db, now),
    interactions: sqliteInteractionStore(db),
    db,
    close: () => db.close(),
  };
}
