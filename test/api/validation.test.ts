// Every validation rule of the REST API, each with the bad input that breaks it and the message a
// user gets (issue 3: "every validation rule has a test that sends the bad input and checks the
// message"), plus the batch, hook and OpenAPI behaviour the routes rely on.
import { OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ApiError } from '../../core/api/errors.ts';
import {
  batchStatus, formatPath, parseOrThrow, registerEntrySchemas, renderBatchResult, toApiError, validateBatch,
  validationHook,
} from '../../core/api/validate.ts';
import type { ItemInput, ItemPatch, UserInput, UserPatch } from '../../core/domain/catalog.ts';
import type { Event } from '../../core/domain/event.ts';
import {
  MAX_ATTRIBUTES, MAX_BATCH_ENTRIES, MAX_CATEGORIES, MAX_CONTEXT_KEYS, MAX_TAGS,
} from '../../core/domain/limits.ts';
import {
  DEFAULT_EVENT_TYPES, EventBatchSchema, EventsBodySchema, ItemBatchSchema, ItemInputSchema,
  ItemPatchSchema, ItemPutSchema, ListQuerySchema, UserBatchSchema, UserInputSchema, UserPatchSchema,
  UserPutSchema, checkEventTypeConfig, eventEntries, eventInputSchema, utf8Length,
} from '../../core/domain/schemas.ts';

// The validated shapes are what the catalog and the bus take, checked at compile time.
type Is<T, U extends T> = U;
export type _Compat = [
  Is<ItemInput, z.output<typeof ItemInputSchema>>,
  Is<ItemPatch, z.output<typeof ItemPatchSchema>>,
  Is<UserInput, z.output<typeof UserInputSchema>>,
  Is<UserPatch, z.output<typeof UserPatchSchema>>,
  Is<Event, z.output<ReturnType<typeof eventInputSchema>>>,
];

const NOW = Date.parse('2026-01-01T00:00:00Z');
const EventInput = eventInputSchema({ now: () => NOW });

const goodEvent = {
  id: 'e1', type: 'click', userId: 'u1', itemId: 'i1', timestamp: NOW - 1000,
};
const goodItem = { id: 'i1', categories: ['books'], tags: ['new'], text: 'A book', attributes: { price: 9.5 } };

/** The messages of a failed parse, as the API would show them. */
function messages(schema: z.ZodType, value: unknown, what = 'body'): { status: number; details: { path: string; message: string }[] } {
  try {
    parseOrThrow(schema, value, what);
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, details: err.details };
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(value)?.slice(0, 80)} to be rejected`);
}

const range = <T,>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
const manyKeys = (n: number, v: unknown = 1) => Object.fromEntries(range(n, (i) => [`k${i}`, v] as const));

type Case = [name: string, schema: z.ZodType, input: unknown, path: string, message: string | RegExp, status?: number];

const cases: Case[] = [
  // ids (the same rules for item, user, event and request ids)
  ['missing id', ItemInputSchema, { text: 'x' }, 'id', 'id is required', 400],
  ['id not a string', ItemInputSchema, { id: 42 }, 'id', 'id must be a string id; got number 42', 400],
  ['empty id', ItemInputSchema, { id: '' }, 'id', 'id must not be empty', 422],
  ['id too long', ItemInputSchema, { id: 'a'.repeat(257) }, 'id', 'id is 257 characters, over the limit of 256', 422],
  ['id with a slash', ItemInputSchema, { id: 'a/b' }, 'id', `id "a/b" has characters other than letters, digits and . _ ~ : @ + = -`, 422],
  ['id with a space', UserInputSchema, { id: 'a b' }, 'id', /^id "a b" has characters other than/, 422],
  // items
  ['item not an object', ItemInputSchema, 'i1', '', 'body must be an object; got string "i1"', 400],
  ['item unknown field', ItemInputSchema, { id: 'i1', catgories: [] }, '', /^body has unknown field 'catgories'; item fields: id, categories, tags/, 400],
  ['too many categories', ItemInputSchema, { id: 'x', categories: range(40, (i) => `c${i}`) }, 'categories', `categories has 40 entries, over the limit of ${MAX_CATEGORIES}`, 422],
  ['categories not an array', ItemInputSchema, { id: 'x', categories: 'books' }, 'categories', 'categories must be an array of categories; got string "books"', 400],
  ['category too long', ItemInputSchema, { id: 'x', categories: ['c'.repeat(129)] }, 'categories[0]', 'categories[0] is 129 characters, over the limit of 128', 422],
  ['empty category', ItemInputSchema, { id: 'x', categories: ['ok', ''] }, 'categories[1]', 'categories[1] must not be empty', 422],
  ['category not a string', ItemInputSchema, { id: 'x', categories: [7] }, 'categories[0]', 'categories[0] must be a string; got number 7', 400],
  ['control character in a tag', ItemInputSchema, { id: 'x', tags: ['a\nb'] }, 'tags[0]', 'tags[0] contains control characters', 422],
  ['too many tags', ItemInputSchema, { id: 'x', tags: range(65, (i) => `t${i}`) }, 'tags', `tags has 65 entries, over the limit of ${MAX_TAGS}`, 422],
  ['tag too long', ItemInputSchema, { id: 'x', tags: ['t'.repeat(200)] }, 'tags[0]', 'tags[0] is 200 characters, over the limit of 128', 422],
  ['text too long', ItemInputSchema, { id: 'x', text: 'é'.repeat(40_000) }, 'text', 'text is 80000 bytes of UTF-8, over the limit of 65536 (64 KiB)', 422],
  ['text not a string', ItemInputSchema, { id: 'x', text: ['a'] }, 'text', 'text must be a string; got an array', 400],
  ['too many attributes', ItemInputSchema, { id: 'x', attributes: manyKeys(65) }, 'attributes', `attributes has 65 keys, over the limit of ${MAX_ATTRIBUTES}`, 422],
  ['attribute key too long', ItemInputSchema, { id: 'x', attributes: { ['k'.repeat(65)]: 1 } }, `attributes.${'k'.repeat(65)}`, /key is 65 characters, over the limit of 64$/, 422],
  ['empty attribute key', UserInputSchema, { id: 'x', attributes: { '': 1 } }, 'attributes[""]', 'attributes[""] has an empty key; name it', 422],
  ['attribute string too long', ItemInputSchema, { id: 'x', attributes: { brand: 'b'.repeat(1025) } }, 'attributes.brand', 'attributes.brand is 1025 bytes of UTF-8, over the limit of 1024 (1 KiB)', 422],
  ['attribute value an object', ItemInputSchema, { id: 'x', attributes: { size: { w: 1 } } }, 'attributes.size', 'attributes.size must be a string, a finite number or a boolean; got an object', 400],
  ['attribute value null', UserInputSchema, { id: 'x', attributes: { age: null } }, 'attributes.age', 'attributes.age must be a string, a finite number or a boolean; got null', 400],
  ['attribute value not finite', ItemInputSchema, { id: 'x', attributes: { price: Number.POSITIVE_INFINITY } }, 'attributes.price', /^attributes\.price must be a string, a finite number or a boolean/, 400],
  ['attributes not an object', ItemInputSchema, { id: 'x', attributes: [1] }, 'attributes', 'attributes must be an object of attributes; got an array', 400],
  ['attribute key with a space', ItemInputSchema, { id: 'x', attributes: { 'page url': 'x'.repeat(2000) } }, 'attributes["page url"]', /^attributes\["page url"\] is 2000 bytes/, 422],
  ['publishedAt before the earliest JS date', ItemInputSchema, { id: 'x', publishedAt: -8_640_000_000_000_001 }, 'publishedAt', 'publishedAt is -8640000000000001, before -271821-04-20T00:00:00.000Z', 422],
  ['publishedAt not a time', ItemInputSchema, { id: 'x', publishedAt: 'yesterday' }, 'publishedAt', 'publishedAt "yesterday" is not epoch milliseconds or an ISO-8601 time like 2024-05-01T12:00:00Z', 422],
  ['hidden not a boolean', ItemInputSchema, { id: 'x', hidden: 'yes' }, 'hidden', 'hidden must be true or false; got string "yes"', 400],
  ['patch with an id', ItemPatchSchema, { id: 'x' }, '', /^body has unknown field 'id'; item fields: categories/, 400],
  ['put body with a bad id', ItemPutSchema, { id: 'a b' }, 'id', /^id "a b" has characters/, 422],
  // users
  ['user unknown field', UserInputSchema, { id: 'u', name: 'Ann' }, '', "body has unknown field 'name'; user fields: id, attributes", 400],
  ['user patch too many attributes', UserPatchSchema, { attributes: manyKeys(65, 'v') }, 'attributes', 'attributes has 65 keys, over the limit of 64', 422],
  ['user put body not an object', UserPutSchema, null, '', 'body must be an object; got null', 400],
  // events
  ['unknown event type', EventInput, { ...goodEvent, type: 'purchse' }, 'type', 'type "purchse" is not a configured event type; configured: impression, view, click, add-to-cart, purchase, rating, like, dislike, skip', 422],
  ['event type not a string', EventInput, { ...goodEvent, type: 3 }, 'type', 'type must be a string event type; got number 3', 400],
  ['missing userId', EventInput, { ...goodEvent, userId: undefined }, 'userId', 'userId is required', 400],
  ['bad itemId', EventInput, { ...goodEvent, itemId: 'a\tb' }, 'itemId', /^itemId "a\\tb" has characters other than/, 422],
  ['value not a number', EventInput, { ...goodEvent, value: '5' }, 'value', 'value must be a finite number; got string "5"', 400],
  ['value not finite', EventInput, { ...goodEvent, value: Number.NaN }, 'value', 'value must be a finite number; got number NaN', 400],
  ['timestamp in the future', EventInput, { ...goodEvent, timestamp: '2099-01-01T00:00:00Z' }, 'timestamp', 'timestamp is 2099-01-01T00:00:00.000Z, more than 24h in the future', 422],
  ['timestamp before 1970', EventInput, { ...goodEvent, timestamp: '1969-07-20T20:17:00Z' }, 'timestamp', 'timestamp is 1969-07-20T20:17:00.000Z, before 1970-01-01T00:00:00.000Z', 422],
  ['timestamp without a zone', EventInput, { ...goodEvent, timestamp: '2025-06-01T10:00:00' }, 'timestamp', 'timestamp "2025-06-01T10:00:00" has no time zone; add Z or an offset like +02:00', 422],
  ['timestamp not a date', EventInput, { ...goodEvent, timestamp: '2025-02-30T10:00:00Z' }, 'timestamp', 'timestamp "2025-02-30T10:00:00Z" is not a valid date', 422],
  ['timestamp fractional ms', EventInput, { ...goodEvent, timestamp: 1.5 }, 'timestamp', 'timestamp is 1.5; use whole epoch milliseconds', 422],
  ['timestamp beyond Date', EventInput, { ...goodEvent, timestamp: 1e20 }, 'timestamp', 'timestamp is 100000000000000000000, past the last representable date; send epoch milliseconds', 422],
  ['timestamp a boolean', EventInput, { ...goodEvent, timestamp: true }, 'timestamp', 'timestamp must be epoch milliseconds or an ISO-8601 string; got boolean true', 400],
  ['missing timestamp', EventInput, { ...goodEvent, timestamp: undefined }, 'timestamp', 'timestamp is required', 400],
  ['bad requestId', EventInput, { ...goodEvent, requestId: '' }, 'requestId', 'requestId must not be empty', 422],
  ['negative position', EventInput, { ...goodEvent, position: -1 }, 'position', 'position is -1; positions start at 0', 422],
  ['fractional position', EventInput, { ...goodEvent, position: 2.5 }, 'position', 'position is 2.5; use a whole number from 0 to 10000', 422],
  ['position too large', EventInput, { ...goodEvent, position: 10_001 }, 'position', 'position is 10001, over the limit of 10000', 422],
  ['position not a number', EventInput, { ...goodEvent, position: '1' }, 'position', 'position must be a whole number; got string "1"', 400],
  ['too many context keys', EventInput, { ...goodEvent, context: manyKeys(33) }, 'context', `context has 33 keys, over the limit of ${MAX_CONTEXT_KEYS}`, 422],
  ['context value a boolean', EventInput, { ...goodEvent, context: { mobile: true } }, 'context.mobile', 'context.mobile must be a string or a finite number; got boolean true', 400],
  ['context key too long', EventInput, { ...goodEvent, context: { ['p'.repeat(65)]: 'x' } }, `context.${'p'.repeat(65)}`, /key is 65 characters, over the limit of 64$/, 422],
  ['context string too long', EventInput, { ...goodEvent, context: { page: 'p'.repeat(1025) } }, 'context.page', 'context.page is 1025 bytes of UTF-8, over the limit of 1024 (1 KiB)', 422],
  ['event unknown field', EventInput, { ...goodEvent, timestmap: 1 }, '', /^body has unknown field 'timestmap'; event fields: id, type, userId/, 400],
  // batch envelopes
  ['empty batch', ItemBatchSchema, { items: [] }, 'items', 'items is empty; send 1 to 10000 items', 422],
  ['batch over the limit', EventBatchSchema, { events: range(MAX_BATCH_ENTRIES + 1, () => 0) }, 'events', 'events has 10001 entries, over the limit of 10000; split it into several calls', 422],
  ['batch not an array', UserBatchSchema, { users: {} }, 'users', 'users must be an array of users; got an object', 400],
  ['batch unknown key', ItemBatchSchema, { items: [goodItem], item: [] }, '', "body has unknown field 'item'; batch fields: items", 400],
  ['events body not an object', EventsBodySchema, ['click'], '', 'body must be an event object or { "events": [...] }; got an array', 400],
  ['events body with events not an array', EventsBodySchema, { events: 'x' }, 'events', 'events must be an array of events; got string "x"', 400],
  ['events body with an empty batch', EventsBodySchema, { events: [] }, 'events', 'events is empty; send 1 to 10000 events', 422],
  ['events body batch with an unknown key', EventsBodySchema, { events: [goodEvent], event: {} }, '', "body has unknown field 'event'; batch fields: events", 400],
  // list query
  ['limit zero', ListQuerySchema, { limit: '0' }, 'limit', 'limit is 0; use at least 1', 422],
  ['limit over the maximum', ListQuerySchema, { limit: '1001' }, 'limit', 'limit is 1001, over the limit of 1000', 422],
  ['limit fractional', ListQuerySchema, { limit: '2.5' }, 'limit', 'limit is 2.5; use a whole number from 1 to 1000', 422],
  ['limit not a number', ListQuerySchema, { limit: 'ten' }, 'limit', /^limit must be a whole number from 1 to 1000/, 400],
  ['cursor too long', ListQuerySchema, { cursor: 'c'.repeat(1025) }, 'cursor', 'cursor is longer than any cursor this API returns; pass back the one you got', 422],
];

describe('validation rules', () => {
  it.each(cases)('%s', (_name, schema, input, path, message, status) => {
    const result = messages(schema, input);
    const detail = result.details.find((d) => d.path === path);
    expect(detail, `no detail at '${path}' in ${JSON.stringify(result.details)}`).toBeDefined();
    if (typeof message === 'string') expect(detail?.message).toBe(message);
    else expect(detail?.message).toMatch(message);
    if (status !== undefined) expect(result.status).toBe(status);
  });

  it('accepts good input and leaves optional fields out', () => {
    expect(parseOrThrow(ItemInputSchema, { id: 'i:1@x.y' }, 'item')).toEqual({ id: 'i:1@x.y' });
    expect(parseOrThrow(ItemInputSchema, goodItem, 'item')).toEqual(goodItem);
    expect(parseOrThrow(UserPatchSchema, {}, 'user')).toEqual({});
    expect(parseOrThrow(ListQuerySchema, {}, 'query')).toEqual({ limit: 100 });
    expect(parseOrThrow(ListQuerySchema, { cursor: 'abc', limit: '25' }, 'query')).toEqual({ cursor: 'abc', limit: 25 });
    const full = { ...goodEvent, value: 4.5, requestId: 'r1', position: 0, context: { page: 'home', slot: 3 } };
    expect(parseOrThrow(EventInput, full, 'event')).toEqual(full);
  });

  it('accepts an event up to 24h ahead of the clock, and reads the clock per event', () => {
    let now = NOW;
    const schema = eventInputSchema({ now: () => now });
    const ahead = { ...goodEvent, timestamp: NOW + 24 * 3_600_000 };
    expect(schema.safeParse(ahead).success).toBe(true);
    expect(schema.safeParse({ ...ahead, timestamp: ahead.timestamp + 1 }).success).toBe(false);
    now += 1;
    expect(schema.safeParse({ ...ahead, timestamp: ahead.timestamp + 1 }).success).toBe(true);
  });

  it('normalises ISO-8601 and epoch-ms timestamps to the same epoch ms', () => {
    const ms = Date.parse('2025-06-01T10:00:00.250Z');
    const forms = [ms, '2025-06-01T10:00:00.250Z', '2025-06-01T12:00:00.250+02:00', '2025-06-01T05:00:00.250-0500'];
    for (const timestamp of forms) {
      expect(parseOrThrow(EventInput, { ...goodEvent, timestamp }, 'event').timestamp).toBe(ms);
    }
    expect(parseOrThrow(EventInput, { ...goodEvent, timestamp: '2025-06-01' }, 'event').timestamp)
      .toBe(Date.parse('2025-06-01T00:00:00Z'));
    expect(parseOrThrow(ItemInputSchema, { id: 'x', publishedAt: '2025-06-01T10:00:00.250Z' }, 'item').publishedAt).toBe(ms);
  });

  it('checks event types against the configured set, with its weights', () => {
    const schema = eventInputSchema({ eventTypes: [{ name: 'play', weight: 1 }, { name: 'skip', weight: -1 }] });
    expect(schema.safeParse({ ...goodEvent, type: 'play' }).success).toBe(true);
    expect(messages(schema, { ...goodEvent, type: 'click' }).details[0]?.message)
      .toBe('type "click" is not a configured event type; configured: play, skip');
    expect(DEFAULT_EVENT_TYPES.find((t) => t.name === 'dislike')?.weight).toBeLessThan(0);
    expect(DEFAULT_EVENT_TYPES.find((t) => t.name === 'skip')?.weight).toBeLessThan(0);
    expect(DEFAULT_EVENT_TYPES.find((t) => t.name === 'purchase')?.weight).toBeGreaterThan(0);
  });

  it.each([
    [[], 'event types: configure at least one event type'],
    [[{ name: 'a', weight: 1 }, { name: 'a', weight: 2 }], "event type 'a' is configured twice"],
    [[{ name: 'a b', weight: 1 }], "event type 'a b': use 1 to 64 of letters, digits and . _ ~ : @ + = -"],
    [[{ name: 'a', weight: Number.NaN }], "event type 'a' has weight NaN; use a finite number"],
  ])('rejects the event type config %j', (types, message) => {
    expect(() => checkEventTypeConfig(types)).toThrow(message);
  });

  it('names the value it parsed in front of the first problem', () => {
    expect(() => parseOrThrow(ItemPutSchema, { categories: range(40, (i) => `c${i}`) }, "item 'x'"))
      .toThrow("item 'x': categories has 40 entries, over the limit of 32");
  });

  it('says how many problems there are and names the value as a whole', () => {
    try {
      parseOrThrow(ItemInputSchema, { id: '', tags: 'x', hidden: 1 }, "item ''");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      const e = err as ApiError;
      expect(e.status).toBe(400);
      expect(e.code).toBe('invalid_request');
      expect(e.message).toBe("item '': id must not be empty (and 2 more problems, see details)");
      expect(e.details.map((d) => d.path)).toEqual(['id', 'tags', 'hidden']);
    }
  });

  it('formats JSON paths', () => {
    expect(formatPath(['events', 3, 'timestamp'])).toBe('events[3].timestamp');
    expect(formatPath(['context', 'page url'], 'events[0]')).toBe('events[0].context["page url"]');
    expect(formatPath([])).toBe('');
    expect(utf8Length('aé€😀')).toBe(1 + 2 + 3 + 4);
  });
});

describe('batches', () => {
  it('accepts 9,997 of 10,000 events and reports the 3 bad ones by index, path and message', () => {
    const events = range<unknown>(MAX_BATCH_ENTRIES, (i) => ({ ...goodEvent, id: `e${i}`, itemId: `i${i % 100}` }));
    events[3] = { ...goodEvent, id: 'e3', timestamp: '2099-01-01T00:00:00Z' };
    events[7] = { ...goodEvent, id: 'e7', type: 'purchse' };
    events[9_999] = 'not an event';
    const body = parseOrThrow(EventsBodySchema, { events }, 'request body');
    const { entries, single } = eventEntries(body);
    expect(single).toBe(false);

    const result = validateBatch(entries, EventInput, { field: 'events' });
    expect(result.accepted).toHaveLength(9_997);
    expect(result.acceptedIndices.slice(0, 4)).toEqual([0, 1, 2, 4]);
    expect(result.rejected).toEqual([
      { index: 3, id: 'e3', errors: [{ path: 'events[3].timestamp', message: 'events[3].timestamp is 2099-01-01T00:00:00.000Z, more than 24h in the future' }] },
      { index: 7, id: 'e7', errors: [{ path: 'events[7].type', message: 'events[7].type "purchse" is not a configured event type; configured: impression, view, click, add-to-cart, purchase, rating, like, dislike, skip' }] },
      { index: 9_999, errors: [{ path: 'events[9999]', message: 'events[9999] must be an object; got string "not an event"' }] },
    ]);

    const response = renderBatchResult(result);
    expect(response.accepted).toBe(9_997);
    expect(response.rejected).toBe(3);
    expect(response.results).toHaveLength(MAX_BATCH_ENTRIES);
    expect(response.results[2]).toEqual({ index: 2, id: 'e2', status: 'accepted' });
    expect(response.results[3]).toMatchObject({ index: 3, id: 'e3', status: 'rejected' });
    expect(response.results[9_999]).toMatchObject({ index: 9_999, status: 'rejected' });
    expect(batchStatus(response)).toBe(207);
  });

  it('takes a single event as a batch of one', () => {
    const { entries, single } = eventEntries(parseOrThrow(EventsBodySchema, goodEvent, 'request body'));
    expect(single).toBe(true);
    expect(validateBatch(entries, EventInput, { field: 'events' }).accepted).toEqual([goodEvent]);
  });

  it('marks duplicates through the store hook and counts them apart', () => {
    const result = validateBatch([goodEvent, { ...goodEvent, id: 'e2' }, { ...goodEvent, id: 'e1' }], EventInput, { field: 'events' });
    const seen = new Set<string>();
    const response = renderBatchResult(result, {
      isDuplicate: (event) => (seen.has(event.id) ? true : (seen.add(event.id), false)),
    });
    expect(response).toEqual({
      accepted: 2,
      duplicate: 1,
      rejected: 0,
      results: [
        { index: 0, id: 'e1', status: 'accepted' },
        { index: 1, id: 'e2', status: 'accepted' },
        { index: 2, id: 'e1', status: 'duplicate' },
      ],
    });
    expect(batchStatus(response)).toBe(200);
    expect(batchStatus(renderBatchResult(validateBatch([1], ItemInputSchema, { field: 'items' })))).toBe(422);
  });
});

describe('OpenAPIHono integration', () => {
  function tinyApp() {
    const app = new OpenAPIHono({ defaultHook: validationHook });
    app.onError((err, c) => {
      const mapped = toApiError(err);
      if (mapped instanceof ApiError) return c.json(mapped.toJSON(), mapped.status);
      return c.json({ error: { code: 'internal', message: 'internal error', details: [] } }, 500);
    });
    const json = <S extends z.ZodType>(schema: S) => ({ content: { 'application/json': { schema } }, required: true });
    const ok = { 200: { description: 'ok' } };
    app.openapi(createRoute({ method: 'put', path: '/v1/items/{id}', request: { body: json(ItemPutSchema) }, responses: ok }), (c) => c.json({ ok: true }, 200));
    app.openapi(createRoute({ method: 'patch', path: '/v1/items/{id}', request: { body: json(ItemPatchSchema) }, responses: ok }), (c) => c.json({ ok: true }, 200));
    app.openapi(createRoute({ method: 'post', path: '/v1/items:batch', request: { body: json(ItemBatchSchema) }, responses: ok }), (c) => {
      const body = renderBatchResult(validateBatch(c.req.valid('json').items, ItemInputSchema, { field: 'items' }));
      return c.json(body, batchStatus(body));
    });
    app.openapi(createRoute({ method: 'get', path: '/v1/items', request: { query: ListQuerySchema }, responses: ok }), (c) => c.json(c.req.valid('query'), 200));
    app.openapi(createRoute({ method: 'put', path: '/v1/users/{id}', request: { body: json(UserPutSchema) }, responses: ok }), (c) => c.json({ ok: true }, 200));
    app.openapi(createRoute({ method: 'patch', path: '/v1/users/{id}', request: { body: json(UserPatchSchema) }, responses: ok }), (c) => c.json({ ok: true }, 200));
    app.openapi(createRoute({ method: 'post', path: '/v1/users:batch', request: { body: json(UserBatchSchema) }, responses: ok }), (c) => c.json({ ok: true }, 200));
    app.openapi(createRoute({ method: 'post', path: '/v1/events', request: { body: json(EventsBodySchema) }, responses: ok }), (c) => c.json({ ok: true }, 200));
    registerEntrySchemas(app.openAPIRegistry, EventInput);
    return app;
  }
  const send = (app: ReturnType<typeof tinyApp>, method: string, path: string, body: unknown) =>
    app.request(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('turns a failed route schema into our error format', async () => {
    const res = await send(tinyApp(), 'PUT', '/v1/items/x', { id: 'x', categories: range(40, (i) => `c${i}`) });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({
      error: {
        code: 'invalid_value',
        message: 'categories has 40 entries, over the limit of 32',
        details: [{ path: 'categories', message: 'categories has 40 entries, over the limit of 32' }],
      },
    });
  });

  it('reports query problems by parameter, and applies the default limit', async () => {
    const app = tinyApp();
    const bad = await app.request('/v1/items?limit=5000');
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ error: { details: [{ path: 'limit', message: 'limit is 5000, over the limit of 1000' }] } });
    expect(await (await app.request('/v1/items')).json()).toEqual({ limit: 100 });
  });

  it('answers a batch with 207 and a result per entry', async () => {
    const res = await send(tinyApp(), 'POST', '/v1/items:batch', { items: [goodItem, { id: 'b', tags: 'x' }] });
    expect(res.status).toBe(207);
    expect(await res.json()).toEqual({
      accepted: 1,
      duplicate: 0,
      rejected: 1,
      results: [
        { index: 0, id: 'i1', status: 'accepted' },
        { index: 1, id: 'b', status: 'rejected', errors: [{ path: 'items[1].tags', message: 'items[1].tags must be an array of tags; got string "x"' }] },
      ],
    });
  });

  it('maps malformed JSON and a missing content type to our error format', async () => {
    const app = tinyApp();
    const malformed = await app.request('/v1/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { code: 'malformed_json' } });
    expect(toApiError(new HTTPException(415))).toMatchObject({ status: 415, code: 'unsupported_media_type' });
    expect(toApiError(new HTTPException(413))).toMatchObject({ status: 413, code: 'payload_too_large' });
    const other = new Error('boom');
    expect(toApiError(other)).toBe(other);
  });

  it('generates an OpenAPI document with every schema as a component', () => {
    const doc = tinyApp().getOpenAPI31Document({ openapi: '3.1.0', info: { title: 'Kestrel', version: 'test' } });
    const schemas = doc.components?.schemas ?? {};
    const names = ['ItemInput', 'ItemPut', 'ItemPatch', 'ItemBatch', 'UserInput', 'UserPut', 'UserPatch', 'UserBatch', 'EventInput', 'EventBatch', 'EventsBody', 'Attributes', 'Id'];
    for (const name of names) {
      expect(schemas, name).toHaveProperty(name);
    }
    expect(JSON.stringify(schemas.ItemBatch)).toContain('"maxItems":10000');
    expect(JSON.stringify(schemas.ItemBatch)).toContain('#/components/schemas/ItemInput');
    // Every $ref points at a component that is there.
    for (const [, ref] of JSON.stringify(doc).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
      expect(schemas, `dangling $ref ${ref}`).toHaveProperty(ref ?? '');
    }
    expect(JSON.stringify(schemas.EventInput)).toContain('"enum":["impression","view","click"');
    expect(JSON.stringify(schemas.EventsBody)).toContain('"anyOf":[{"$ref":"#/components/schemas/EventBatch"},{"$ref":"#/components/schemas/EventInput"}]');
    const params = doc.paths?.['/v1/items']?.get?.parameters ?? [];
    expect(JSON.stringify(params)).toContain('"maximum":1000');
  });
});
