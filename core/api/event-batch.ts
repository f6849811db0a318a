// Validating a batch of events, shared by POST /v1/events (routes/events.ts) and the ingest
// threads (ingest-worker.thread.ts), which prepare a whole `{ "events": [...] }` body off the
// event loop: parsed, validated, and the fresh events encoded as the embedded log frames its
// records (Kafka sends the same records' payloads).
import type { Event } from '../domain/event.ts';
import { EventsBodySchema, eventEntries } from '../domain/schemas.ts';
import type { EventFastPath, EventInputSchema } from '../domain/schemas.ts';
import { frameTexts } from '../events/log/segment-log.ts';
import { issuesToDetails, validateBatch } from './validate.ts';
import type { BatchResult, RejectedEntry } from './validate.ts';

/**
 * validateBatch for events, with the schema's fast path (core/domain/schemas.ts) first: an
 * entry it does not vouch for goes through the schema, which accepts it or words its errors
 * exactly as validateBatch would.
 */
export function validateEvents(entries: readonly unknown[], schema: EventInputSchema, fast: EventFastPath | undefined): BatchResult<Event> {
  if (fast === undefined) return validateBatch(entries, schema, { field: 'events' });
  const result: BatchResult<Event> = { accepted: [], acceptedIndices: [], rejected: [] };
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index];
    const event = fast(entry);
    if (event !== undefined) {
      result.accepted.push(event);
      result.acceptedIndices.push(index);
      continue;
    }
    const parsed = schema.safeParse(entry);
    if (parsed.success) {
      result.accepted.push(parsed.data);
      result.acceptedIndices.push(index);
    } else {
      const prefix = `events[${index}]`;
      const rejected: RejectedEntry = { index, errors: issuesToDetails(parsed.error.issues, prefix, prefix) };
      const id = typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined;
      if (typeof id === 'string') rejected.id = id;
      result.rejected.push(rejected);
    }
  }
  return result;
}

/**
 * Request indices of the accepted entries whose id is stored already or came earlier in the
 * request: the request reports them as `duplicate` and publishes them no more.
 */
export function duplicatesOf(ids: readonly string[], acceptedIndices: readonly number[], stored: ReadonlySet<string>): Set<number> {
  const seen = new Set<string>();
  const duplicates = new Set<number>();
  ids.forEach((id, k) => {
    if (stored.has(id) || seen.has(id)) duplicates.add(acceptedIndices[k] ?? k);
    seen.add(id);
  });
  return duplicates;
}

/** A batch body validated and checked for duplicates, its fresh events ready for the bus (`publishFramed`). */
export interface PreparedEvents {
  /** The accepted events' ids, in request order, and their indices in the request. */
  ids: string[];
  acceptedIndices: number[];
  /** Request indices of the accepted events that are duplicates (duplicatesOf). */
  duplicates: number[];
  rejected: RejectedEntry[];
  /**
   * The accepted events that are not duplicates, as the embedded log frames them (`frameTexts`
   * of their JSON, what its `publish` writes), back to back: record i ends at `ends[i]`.
   */
  records: Uint8Array;
  ends: Uint32Array;
  /** Record i's user id (Kafka's key). */
  userIds: string[];
}

/**
 * Prepares a request body that is a JSON `{ "events": [...] }` batch the envelope schema accepts;
 * undefined for anything else (not JSON, one bare event, an envelope error), which the route
 * answers itself, with the same words as ever.
 */
export function prepareEventBatch(
  body: Uint8Array, schema: EventInputSchema, fast: EventFastPath | undefined,
  storedIds: (ids: readonly string[]) => ReadonlySet<string> = () => new Set(),
): PreparedEvents | undefined {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  const envelope = EventsBodySchema.safeParse(json);
  if (!envelope.success) return undefined;
  const { entries, single } = eventEntries(envelope.data);
  if (single) return undefined;
  const batch = validateEvents(entries, schema, fast);
  const ids = batch.accepted.map((e) => e.id);
  const duplicates = duplicatesOf(ids, batch.acceptedIndices, storedIds(ids));
  const fresh = duplicates.size === 0 ? batch.accepted : batch.accepted.filter((_, k) => !duplicates.has(batch.acceptedIndices[k] ?? k));
  const frames = frameTexts(fresh.map((e) => JSON.stringify(e)));
  let total = 0;
  const ends = new Uint32Array(frames.length);
  frames.forEach((f, i) => {
    total += f.byteLength;
    ends[i] = total;
  });
  // frameTexts puts them in one block already: hand over exactly that range.
  const first = frames[0];
  const records = first === undefined ? new Uint8Array(0) : new Uint8Array(first.buffer, first.byteOffset, total);
  return { ids, acceptedIndices: batch.acceptedIndices, duplicates: [...duplicates], rejected: batch.rejected, records, ends, userIds: fresh.map((e) => e.userId) };
}
