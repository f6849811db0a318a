// The Event contract (ARCHITECTURE.md, "Contracts that must not drift"): one shape on the API,
// in the bus, in the training data and at the edge.

/**
 * Built-in interaction types. Deployments may configure more (with weights); these are the ones
 * Kestrel knows the meaning of. `dislike` and `skip` are negative feedback.
 */
export const BUILTIN_EVENT_TYPES = [
  'impression', 'view', 'click', 'add-to-cart', 'purchase', 'rating', 'like', 'dislike', 'skip',
] as const;

export type EventType = string;

export interface Event {
  /** Unique per event; ingestion is idempotent on it (the same id twice is stored once). */
  id: string;
  type: EventType;
  userId: string;
  itemId: string;
  /** Strength of the interaction where the type has one: a rating, a price, seconds watched. */
  value?: number;
  /** When it happened, Unix epoch milliseconds (UTC). */
  timestamp: number;
  /** The recommendation response that showed the item; with `position`, joins clicks to slates. */
  requestId?: string;
  /** 0-based slot of the item in that response. */
  position?: number;
  /** Free-form request context (device, page, locale...), string or number values. */
  context?: Record<string, string | number>;
}
