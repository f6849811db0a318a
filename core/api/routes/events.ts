// POST /v1/events: one event, or { events: [...] } with up to 10,000. Valid events are published
// to the bus and the response waits for `publish`: a 2xx means they are durable in the bus.
// Invalid ones are reported one by one; an event whose id repeats an earlier one in the request,
// or one already stored, is reported as `duplicate` and not published again (the projector
// dedupes by id anyway, so one that slips through, e.g. still in flight to the store, is stored
// once). Types starting with '$' are Kestrel's own (the erasure record): the schema accepts only
// configured types, and configured names cannot start with '$'.
import { createRoute } from '@hono/zod-openapi';
import type { Event } from '../../domain/event.ts';
import { EventsBodySchema, eventEntries } from '../../domain/schemas.ts';
import type { EventInputSchema } from '../../domain/schemas.ts';
import type { CoreApp, CoreServices } from '../app.ts';
import { batchStatus, parseOrThrow, renderBatchResult, validateBatch } from '../validate.ts';
import type { BatchResult } from '../validate.ts';
import { errorResponses, jsonBody } from './params.ts';

export function registerEventRoutes(
  app: CoreApp,
  { bus, storedEventIds }: Pick<CoreServices, 'bus' | 'storedEventIds'>,
  eventSchema: EventInputSchema,
): void {
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
      batch = { accepted: [parseOrThrow(eventSchema, entries[0], 'event')], acceptedIndices: [0], rejected: [] };
    } else {
      batch = validateBatch(entries, eventSchema, { field: 'events' });
    }
    const stored = storedEventIds === undefined || batch.accepted.length === 0
      ? new Set<string>()
      : await storedEventIds(batch.accepted.map((e) => e.id));
    const seen = new Set<string>();
    const duplicate = batch.accepted.map((e) => {
      const dup = stored.has(e.id) || seen.has(e.id);
      seen.add(e.id);
      return dup;
    });
    const fresh = batch.accepted.filter((_, i) => !duplicate[i]);
    if (fresh.length > 0) await bus.publish(fresh);
    const duplicateIndices = new Set(batch.acceptedIndices.filter((_, k) => duplicate[k] === true));
    const body = renderBatchResult(batch, { isDuplicate: (_, index) => duplicateIndices.has(index) });
    return c.json(body, batchStatus(body));
  });
}
