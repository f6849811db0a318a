// POST /v1/events: one event, or { events: [...] } with up to 10,000. Valid events are published
// to the bus and the response waits for `publish`: a 2xx means they are durable in the bus.
// Invalid ones are reported one by one; an event whose id repeats an earlier one in the request,
// or one already stored, is reported as `duplicate` and not published again (the projector
// dedupes by id anyway, so one that slips through, e.g. still in flight to the store, is stored
// once). Types starting with '$' are Kestrel's own (the erasure record): the schema accepts only
// configured types, and configured names cannot start with '$'. With an ingest pool, a
// `{ "events": [...] }` body is validated, checked for stored ids and encoded on an ingest thread
// (core/api/ingest-pool.ts), to the same answer.
import { createRoute } from '@hono/zod-openapi';
import type { Event } from '../../domain/event.ts';
import { EventsBodySchema, eventEntries, eventFastPath } from '../../domain/schemas.ts';
import type { EventInputSchema } from '../../domain/schemas.ts';
import type { CoreApp, CoreServices } from '../app.ts';
import { duplicatesOf, validateEvents } from '../event-batch.ts';
import { batchStatus, isJsonMediaType, parseOrThrow, renderBatchResult } from '../validate.ts';
import type { BatchResult } from '../validate.ts';
import { errorResponses, jsonBody } from './params.ts';

export function registerEventRoutes(
  app: CoreApp,
  { bus, storedEventIds, ingest, onEvents }: Pick<CoreServices, 'bus' | 'storedEventIds' | 'ingest' | 'onEvents'>,
  eventSchema: EventInputSchema,
): void {
  const fast = eventFastPath(eventSchema);
  const publishFramed = bus.publishFramed?.bind(bus);
  if (ingest !== undefined && publishFramed !== undefined) {
    // A JSON batch is prepared on an ingest thread (ingest-pool.ts); anything else, or a batch the
    // thread hands back, goes on to the route below, which reads the body Hono kept.
    app.post('/v1/events', async (c, next) => {
      if (!isJsonMediaType(c.req.header('Content-Type'))) return next();
      const prepared = await ingest.prepare(new Uint8Array(await c.req.arrayBuffer()));
      if (prepared === undefined) return next();
      const { ids, acceptedIndices, rejected, records, ends, userIds } = prepared;
      const duplicates = new Set(prepared.duplicates);
      if (ends.length > 0) await publishFramed(records, ends, userIds);
      const body = renderBatchResult<string>({ accepted: ids, acceptedIndices, rejected }, {
        idOf: (id) => id, isDuplicate: (_, index) => duplicates.has(index),
      });
      onEvents?.(body);
      return c.json(body, batchStatus(body));
    });
  }
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
    const ids = batch.accepted.map((e) => e.id);
    const stored = storedEventIds === undefined || ids.length === 0 ? new Set<string>() : await storedEventIds(ids);
    const duplicateIndices = duplicatesOf(ids, batch.acceptedIndices, stored);
    const fresh = batch.accepted.filter((_, k) => !duplicateIndices.has(batch.acceptedIndices[k] ?? k));
    if (fresh.length > 0) await bus.publish(fresh);
    const body = renderBatchResult(batch, { isDuplicate: (_, index) => duplicateIndices.has(index) });
    onEvents?.(body);
    return c.json(body, batchStatus(body));
  });
}
