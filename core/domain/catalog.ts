// The catalog's plain shapes: an Item and a User as the core stores and serves them. Runtime-free,
// shared by the API (request schemas validate into these), storage, retrieval and training.

/** An attribute value: what filters and features can use directly. */
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

export interface Item {
  id: string;
  /** Hierarchical categories are flat strings ('c3', 'c3/s1'); retrieval filters on them. */
  categories: string[];
  tags: string[];
  /** Free text (title, description) for content retrieval. */
  text: string;
  attributes: Attributes;
  /** Epoch milliseconds (UTC); freshness sources sort on it. */
  publishedAt: number;
  /** Hidden items are stored and served by id but never recommended. */
  hidden: boolean;
  /**
   * True for an item created on the fly because an event named it before the catalog did
   * (no categories, tags or text yet); the first full upsert clears it.
   */
  stub: boolean;
  /** Epoch ms of the first write, and of the last. */
  createdAt: number;
  updatedAt: number;
}

/** What a client writes: everything but `id` has a default (empty lists, '', now, visible). */
export interface ItemInput {
  id: string;
  categories?: string[];
  tags?: string[];
  text?: string;
  attributes?: Attributes;
  publishedAt?: number;
  hidden?: boolean;
}

/** A partial update: given lists and scalars replace, `attributes` merge key by key. */
export type ItemPatch = Partial<Omit<ItemInput, 'id'>>;

export interface User {
  id: string;
  attributes: Attributes;
  createdAt: number;
  updatedAt: number;
}

export interface UserInput {
  id: string;
  attributes?: Attributes;
}

/** `attributes` merge key by key. */
export type UserPatch = Partial<Omit<UserInput, 'id'>>;

/**
 * Reserved event type: the erasure of `userId` at `timestamp`, published to the bus by
 * `eraseUser` so that a rebuild from the append-only log re-applies the erasure (and its
 * tombstone) instead of resurrecting the user. Types starting with '$' are Kestrel's own: the
 * API must refuse them from clients, or anyone could erase anyone.
 */
export const ERASE_USER_EVENT_TYPE = '$erase-user';

export function isReservedEventType(type: string): boolean {
  return type.startsWith('$');
}
