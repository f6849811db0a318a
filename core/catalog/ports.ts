// Storage ports for the catalog, users and interactions (issue 3, "Storage"). The embedded
// adapter is SQLite (./sqlite/); a PostgreSQL one can follow behind the same types. Every verb
// returns a promise so a networked adapter fits, even though better-sqlite3 answers at once.
import type { Event } from '../domain/event.ts';
import type { Item, ItemInput, ItemPatch, User, UserInput, UserPatch } from '../domain/catalog.ts';

export type UpsertOutcome = 'created' | 'updated';

export interface UpsertResult {
  id: string;
  outcome: UpsertOutcome;
}

export interface ListOptions {
  /** The `next` of the previous page; omitted for the first page. Opaque. */
  cursor?: string;
  /** Rows per page, 1 to MAX_PAGE_SIZE; default DEFAULT_PAGE_SIZE. */
  limit?: number;
}

export interface ItemListOptions extends ListOptions {
  /** Only items in this category (exact match). */
  category?: string;
  /** Leave out hidden items (what retrieval wants). */
  visibleOnly?: boolean;
}

/** A page in id order; `next` is undefined on the last page. */
export interface Page<T> {
  rows: T[];
  next?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 10_000;

export interface ItemStore {
  /** Writes the whole item (PUT semantics): fields left out take their defaults. */
  upsert(item: ItemInput): Promise<UpsertResult>;
  /** All of them in one transaction; results in input order (a repeated id: last one wins). */
  upsertMany(items: readonly ItemInput[]): Promise<UpsertResult[]>;
  get(id: string): Promise<Item | undefined>;
  list(options?: ItemListOptions): Promise<Page<Item>>;
  /** Undefined when there is no such item. */
  patch(id: string, patch: ItemPatch): Promise<Item | undefined>;
  /** False when there was no such item. Its interactions stay (they are the user's history). */
  delete(id: string): Promise<boolean>;
  count(): Promise<number>;
}

export interface UserStore {
  upsert(user: UserInput): Promise<UpsertResult>;
  upsertMany(users: readonly UserInput[]): Promise<UpsertResult[]>;
  get(id: string): Promise<User | undefined>;
  list(options?: ListOptions): Promise<Page<User>>;
  patch(id: string, patch: UserPatch): Promise<User | undefined>;
  delete(id: string): Promise<boolean>;
  count(): Promise<number>;
}

export interface AppendOptions {
  /**
   * Create users and items an event names but the store lacks (items as stubs). When false,
   * such events are not stored and are counted in `unknown`. Default true.
   */
  createUnknown?: boolean;
}

export interface AppendReport {
  /** Newly stored events. */
  inserted: number;
  /** Events whose id was already stored (or repeated within the call): stored once. */
  duplicates: number;
  /** Events of erased users at or before their erasure: never stored again. */
  erased: number;
  /** Events naming an unknown user or item, dropped because `createUnknown` is off. */
  unknown: number;
  /** `$erase-user` records applied (ERASE_USER_EVENT_TYPE): tombstone, events and profile removed. */
  erasures: number;
  createdUsers: number;
  createdItems: number;
}

export interface EventQuery {
  /** Newest first, at most this many (default DEFAULT_PAGE_SIZE, at most MAX_PAGE_SIZE). */
  limit?: number;
  /** Inclusive lower bound on `timestamp`, epoch ms. */
  from?: number;
  /** Exclusive upper bound on `timestamp`, epoch ms. */
  to?: number;
  types?: readonly string[];
}

export interface InteractionStore {
  /**
   * Stores the events in one transaction, idempotently by event id. An ERASE_USER_EVENT_TYPE
   * record erases its user as of its timestamp (see erase.ts) instead of being stored.
   */
  append(events: readonly Event[], options?: AppendOptions): Promise<AppendReport>;
  /** A user's events, newest first (ties by insertion order, newest first). */
  userEvents(userId: string, query?: EventQuery): Promise<Event[]>;
  /**
   * A user's events that a read of the store at `since` did not see, newest first, at most
   * `limit`: those stored after the event with sequence number `since.seq` (the last one that read
   * saw), and those stamped at or after `since.timestamp` (a sequence number can be given again
   * once the newest event is deleted, so time covers what comes after such a gap).
   */
  userEventsSince(userId: string, since: { seq: number; timestamp: number }, limit: number): Promise<Event[]>;
  /** Stored events per type for an item, e.g. `{ click: 12, purchase: 1 }`. */
  itemCounts(itemId: string): Promise<Record<string, number>>;
  /** Removes every event of the user and takes them out of the per-item counts; returns how many. */
  deleteUserEvents(userId: string): Promise<number>;
  count(): Promise<number>;
  /**
   * Records that the user was erased at `at` (epoch ms): `append` drops their events with
   * `timestamp <= at` from then on, so a replay of the append-only bus cannot bring them back.
   */
  markErased(userId: string, at: number): Promise<void>;
  erasedAt(userId: string): Promise<number | undefined>;
}
