// POST /v1/events: one event, or { events: [...] } with up to 10,000. Valid events are published
// to the bus and the response waits for `publish`: a 2xx means they are durable in the bus.
// Invalid ones are reported one by one; an event whose id repeats an earlier one in the request,
// or one already stored, is reported as `duplicate` and not published again (the projector
// dedupes by id anyway, so one that slips through, e.g. still in flight to the store, is stored
// once). Types starting with '$' are Kestrel's own (the erasure record): the schema accepts only
// configured types, and configured names cannot start with '$'.
import { createRoute } from '@hono/zod-openapi';
import type { Event } from '../../domain/event.ts';
import { EventsBodySchema, eventEntries, eventFastPath } from '../../domain/schemas.ts';
import type { EventFastPath, EventInputSchema } from '../../domain/schemas.ts';
import type { CoreApp, CoreServices } from '../app.ts';
import { batchStatus, issuesToDetails, parseOrThrow, renderBatchResult, validateBatch } from '../validate.ts';
import type { BatchResult, RejectedEntry } from '../validate.ts';
import { errorResponses, jsonBody } from './params.ts';

/**
 * validateBatch for events, with the schema's fast path (core/domain/schemas.ts) first: an
 * entry it does not vouch for goes through the schema, which accepts it or words its errors
 * exactly as validateBatch would.
 */
function validateEvents(entries: readonly unknown[], schema: EventInputSchema, fast: EventFastPath | undefined): BatchResult<Event> {
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

export function registerEventRoutes(
  app: CoreApp,
  { bus, storedEventIds }: Pick<CoreServices, 'bus' | 'storedEventIds'>,
  eventSchema: EventInputSchema,
): void {
  const fast = eventFastPath(eventSchema);
  app.openapi(createRoute({
    method: 'post', path: '/v1/events', tags: ['events'], summary: 'Ingest one event or up to 10,000',
    request: { body: jsonBody(EventsBodySchema, 'one event, or { "events": [...] }') },
    responses: {
      200: { description: 'every event is durable in the bus (or was already there: duplicate)' },
      207: { description: 'some events rejected; the others are durable; see results' },
      ...errorResponses,
    },
  }), async (c) => {
    const { entries, single } = eventEntries(c.req.valid('json'));
    let batch: BatchResult<Event>;
    if (single) {
      // One event: a bad one is the request's error, not a 207 of one.
      batch = { accepted: [fast?.(entries[0]) ?? parseOrThrow(eventSchema, entries[0], 'event')], acceptedIndices: [0], rejected: [] };
    } else {
      batch = validateEvents(entries, eventSchema, fast);
    }
    const stored = storedEventIds === undefined || batch.accepted.length === 0
      ? new Set<string>()
      : await storedEventIds(batch.accepted.map((e) => e.id));
    const seen = new Set<string>();
    const fresh: Event[] = [];
    const duplicateIndices = new Set<number>();
    batch.accepted.forEach((e, k) => {
      if (stored.has(e.id) || seen.has(e.id)) duplicateIndices.add(batch.acceptedIndices[k] ?? k);
      else fresh.push(e);
      seen.add(e.id);
    });
    if (fresh.length > 0) await bus.publish(fresh);
    const body = renderBatchResult(batch, { isDuplicate: (_, index) => duplicateIndices.has(index) });
    return c.json(body, batchStatus(body));
  });
}
