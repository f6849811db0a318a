// Request schemas of the REST API (issue 3, "Bad input"): zod 4 schemas that validate, normalise
// (ISO timestamps become epoch ms) and, through their `.meta({ id })`, become the components of
// the OpenAPI document @hono/zod-openapi generates. Runtime-free: the clock is a parameter.
//
// Messages are predicates about the field they sit on ("is 300 characters, over the limit of
// 256"); core/api/validate.ts puts the field's JSON path in front ("events[3].id is ..."), so
// every message names the field, the offending value and the limit.
import { z } from 'zod';
import type { Event } from './event.ts';
import { checkEventTypeConfig, DEFAULT_EVENT_TYPES } from './event-types.ts';
import type { EventTypeConfig } from './event-types.ts';
import {
  DEFAULT_PAGE_LIMIT, ID_CHARACTERS, ID_PATTERN, MAX_ATTRIBUTES, MAX_ATTRIBUTE_KEY_LENGTH,
  MAX_ATTRIBUTE_STRING_BYTES, MAX_BATCH_ENTRIES, MAX_CATEGORIES, MAX_CONTEXT_KEYS,
  MAX_CURSOR_LENGTH, MAX_EVENT_TYPES, MAX_EVENT_TYPE_LENGTH, MAX_FUTURE_SKEW_MS, MAX_ID_LENGTH,
  MAX_LABEL_LENGTH, MAX_PAGE_LIMIT, MAX_POSITION, MAX_TAGS, MAX_TEXT_BYTES, MAX_TIMESTAMP_MS,
  MIN_PAGE_LIMIT, MIN_PUBLISHED_AT_MS, MIN_TIMESTAMP_MS,
} from './limits.ts';

// ---------------------------------------------------------------------------------------------
// Event types: in event-types.ts (no zod), so the runtime and training can read them without
// building the request schemas.
export { checkEventTypeConfig, DEFAULT_EVENT_TYPES } from './event-types.ts';
export type { EventTypeConfig } from './event-types.ts';

// ---------------------------------------------------------------------------------------------
// Message helpers

/** UTF-8 length of a string without TextEncoder (not in every runtime's types). */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) { bytes += 4; i++; } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** A value as a message quotes it: JSON, cut to 60 characters. */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  // JSON has no NaN or Infinity; say them as they are rather than as JSON's null.
  if (typeof value === 'number' && !Number.isFinite(value)) return `number ${value}`;
  return `${typeof value} ${quote(value)}`;
}

/** Error function for a wrong type: "is required" for a missing field, else what came instead. */
function typeError(expected: string) {
  return (iss: { input?: unknown }) =>
    iss.input === undefined ? 'is required' : `must be ${expected}; got ${kindOf(iss.input)}`;
}

function length(input: unknown): number {
  return typeof input === 'string' || Array.isArray(input) ? input.length : 0;
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

// ---------------------------------------------------------------------------------------------
// Field schemas

/** An item, user, event or request id: 1..256 of letters, digits and `. _ ~ : @ + = -`. */
export const IdSchema = z
  .string({ error: typeError('a string id') })
  .min(1, { error: 'must not be empty', abort: true })
  .max(MAX_ID_LENGTH, {
    error: (iss) => `is ${length(iss.input)} characters, over the limit of ${MAX_ID_LENGTH}`,
  })
  .regex(ID_PATTERN, {
    error: (iss) => `${quote(iss.input)} has characters other than ${ID_CHARACTERS}`,
  })
  .meta({ id: 'Id', description: `1 to ${MAX_ID_LENGTH} of ${ID_CHARACTERS}`, example: 'item-42' });

const LabelSchema = z
  .string({ error: typeError('a string') })
  .min(1, { error: 'must not be empty' })
  .max(MAX_LABEL_LENGTH, {
    error: (iss) => `is ${length(iss.input)} characters, over the limit of ${MAX_LABEL_LENGTH}`,
  })
  .refine((s) => !CONTROL_CHARS.test(s), { error: 'contains control characters' });

function labelList(noun: string, max: number) {
  return z
    .array(LabelSchema, { error: typeError(`an array of ${noun}`) })
    .max(max, {
      error: (iss) => `has ${length(iss.input)} entries, over the limit of ${max}`,
    });
}

const TextSchema = z
  .string({ error: typeError('a string') })
  .superRefine((s, ctx) => {
    // Every UTF-16 unit is at least one UTF-8 byte: an over-long string fails without counting.
    if (s.length > MAX_TEXT_BYTES || utf8Length(s) > MAX_TEXT_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: `is ${utf8Length(s)} bytes of UTF-8, over the limit of ${MAX_TEXT_BYTES} (64 KiB)`,
      });
    }
  })
  .meta({ description: `free text, at most ${MAX_TEXT_BYTES} bytes of UTF-8` });

/** Checks a string-keyed map's size, key lengths and string value sizes. */
function checkMap(maxKeys: number) {
  return (map: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const keys = Object.keys(map);
    if (keys.length > maxKeys) {
      ctx.addIssue({ code: 'custom', message: `has ${keys.length} keys, over the limit of ${maxKeys}` });
    }
    for (const key of keys) {
      if (key.length === 0) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'has an empty key; name it' });
      } else if (key.length > MAX_ATTRIBUTE_KEY_LENGTH) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `key is ${key.length} characters, over the limit of ${MAX_ATTRIBUTE_KEY_LENGTH}`,
        });
      }
      const value = map[key];
      if (typeof value === 'string' && utf8Length(value) > MAX_ATTRIBUTE_STRING_BYTES) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `is ${utf8Length(value)} bytes of UTF-8, over the limit of ${MAX_ATTRIBUTE_STRING_BYTES} (1 KiB)`,
        });
      }
    }
  };
}

const FiniteNumber = z.number({
  error: (iss) =>
    iss.input === undefined ? 'is required' : `must be a finite number; got ${kindOf(iss.input)}`,
});

/** Item and user attributes: up to 64 keys; string (≤ 1 KiB), finite number or boolean values. */
export const AttributesSchema = z
  .record(
    z.string(),
    z.union([z.string(), FiniteNumber, z.boolean()], {
      error: (iss) => `must be a string, a finite number or a boolean; got ${kindOf(iss.input)}`,
    }),
    { error: typeError('an object of attributes') },
  )
  .superRefine(checkMap(MAX_ATTRIBUTES))
  .meta({ id: 'Attributes', description: `up to ${MAX_ATTRIBUTES} keys of at most ${MAX_ATTRIBUTE_KEY_LENGTH} characters; values: string (at most 1 KiB), finite number or boolean` });

const ContextSchema = z
  .record(
    z.string(),
    z.union([z.string(), FiniteNumber], {
      error: (iss) => `must be a string or a finite number; got ${kindOf(iss.input)}`,
    }),
    { error: typeError('an object') },
  )
  .superRefine(checkMap(MAX_CONTEXT_KEYS))
  .meta({ description: `up to ${MAX_CONTEXT_KEYS} keys; string or number values` });

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})?)?$/;

/** Epoch ms from an ISO-8601 string, or why not. A time without a zone would be ambiguous. */
function parseIso(text: string): number | string {
  const m = ISO_8601.exec(text);
  if (!m) return `${quote(text)} is not epoch milliseconds or an ISO-8601 time like 2024-05-01T12:00:00Z`;
  if (m[4] !== undefined && m[7] === undefined) {
    return `${quote(text)} has no time zone; add Z or an offset like +02:00`;
  }
  // Date.parse rolls 2025-02-30 over to March 2nd; a calendar check catches the typo instead.
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((v) => Number(v ?? 0));
  const daysInMonth = new Date(Date.UTC(year ?? 0, month ?? 0, 0)).getUTCDate();
  const ms = Date.parse(text.replace(' ', 'T'));
  if (
    Number.isNaN(ms) || month === undefined || month < 1 || month > 12 || day === undefined ||
    day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59
  ) {
    return `${quote(text)} is not a valid date`;
  }
  return ms;
}

function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}

interface TimestampOptions {
  /** The server clock, epoch ms; a timestamp past `now() + MAX_FUTURE_SKEW_MS` is rejected. */
  now?: () => number;
  /** Earliest accepted instant, epoch ms; default {@link MIN_TIMESTAMP_MS} (1970). */
  minMs?: number;
}

/** A point in time as epoch ms (number) or ISO-8601 string with a zone; output: epoch ms. */
export function timestampSchema({ now, minMs = MIN_TIMESTAMP_MS }: TimestampOptions = {}) {
  return z
    .union([z.number(), z.string().meta({ format: 'date-time' })], {
      error: (iss) =>
        iss.input === undefined
          ? 'is required'
          : `must be epoch milliseconds or an ISO-8601 string; got ${kindOf(iss.input)}`,
    })
    .transform((input, ctx) => {
      const ms = typeof input === 'number' ? input : parseIso(input);
      if (typeof ms === 'string') {
        ctx.addIssue({ code: 'custom', message: ms });
        return z.NEVER;
      }
      if (!Number.isInteger(ms)) {
        ctx.addIssue({ code: 'custom', message: `is ${ms}; use whole epoch milliseconds` });
      } else if (ms < minMs) {
        ctx.addIssue({ code: 'custom', message: `is ${ms < -MAX_TIMESTAMP_MS ? ms : isoOf(ms)}, before ${isoOf(minMs)}` });
      } else if (ms > MAX_TIMESTAMP_MS) {
        ctx.addIssue({ code: 'custom', message: `is ${ms}, past the last representable date; send epoch milliseconds` });
      } else if (now && ms > now() + MAX_FUTURE_SKEW_MS) {
        ctx.addIssue({ code: 'custom', message: `is ${isoOf(ms)}, more than 24h in the future` });
      }
      return ms;
    })
    .meta({
      description: 'epoch milliseconds (UTC) or an ISO-8601 string with a zone; stored as epoch ms',
      example: '2024-05-01T12:00:00Z',
    });
}

// ---------------------------------------------------------------------------------------------
// Objects

/** Error function of a strict object: names unknown fields, and says what it wanted otherwise. */
function objectError(noun: string, known: readonly string[]) {
  return (iss: { code?: string; input?: unknown; keys?: string[] }) => {
    if (iss.code === 'unrecognized_keys') {
      const keys = (iss.keys ?? []).map((k) => `'${k}'`).join(', ');
      return `has unknown field${(iss.keys ?? []).length > 1 ? 's' : ''} ${keys}; ${noun} fields: ${known.join(', ')}`;
    }
    return typeError('an object')(iss);
  };
}

const itemFields = {
  categories: labelList('categories', MAX_CATEGORIES).optional(),
  tags: labelList('tags', MAX_TAGS).optional(),
  text: TextSchema.optional(),
  attributes: AttributesSchema.optional(),
  publishedAt: timestampSchema({ minMs: MIN_PUBLISHED_AT_MS }).optional(),
  hidden: z.boolean({ error: typeError('true or false') }).optional(),
};
const ITEM_KEYS = ['id', ...Object.keys(itemFields)];

/** An item as a batch entry: `id` required, everything else has a default in the store. */
export const ItemInputSchema = z
  .strictObject({ id: IdSchema, ...itemFields }, { error: objectError('item', ITEM_KEYS) })
  .meta({ id: 'ItemInput', description: 'an item to create or replace' });

/** `PUT /v1/items/{id}` body: the id comes from the path; if the body names one it must match. */
export const ItemPutSchema = z
  .strictObject({ id: IdSchema.optional(), ...itemFields }, { error: objectError('item', ITEM_KEYS) })
  .meta({ id: 'ItemPut', description: 'an item to create or replace; the id is in the path' });

/** `PATCH /v1/items/{id}` body: given lists and scalars replace, attributes merge key by key. */
export const ItemPatchSchema = z
  .strictObject(itemFields, { error: objectError('item', Object.keys(itemFields)) })
  .meta({ id: 'ItemPatch', description: 'fields to change; attributes merge key by key' });

const userFields = { attributes: AttributesSchema.optional() };
const USER_KEYS = ['id', 'attributes'];

export const UserInputSchema = z
  .strictObject({ id: IdSchema, ...userFields }, { error: objectError('user', USER_KEYS) })
  .meta({ id: 'UserInput', description: 'a user to create or replace' });

export const UserPutSchema = z
  .strictObject({ id: IdSchema.optional(), ...userFields }, { error: objectError('user', USER_KEYS) })
  .meta({ id: 'UserPut', description: 'a user to create or replace; the id is in the path' });

export const UserPatchSchema = z
  .strictObject(userFields, { error: objectError('user', ['attributes']) })
  .meta({ id: 'UserPatch', description: 'fields to change; attributes merge key by key' });

export type ItemInputData = z.output<typeof ItemInputSchema>;
export type ItemPutData = z.output<typeof ItemPutSchema>;
export type ItemPatchData = z.output<typeof ItemPatchSchema>;
export type UserInputData = z.output<typeof UserInputSchema>;
export type UserPutData = z.output<typeof UserPutSchema>;
export type UserPatchData = z.output<typeof UserPatchSchema>;

// ---------------------------------------------------------------------------------------------
// Events

export interface EventSchemaOptions {
  /** Configured event types; defaults to DEFAULT_EVENT_TYPES. */
  eventTypes?: readonly EventTypeConfig[];
  /** The server clock, epoch ms; without it the "not in the future" rule is off. */
  now?: () => number;
}

const EVENT_KEYS = ['id', 'type', 'userId', 'itemId', 'value', 'timestamp', 'requestId', 'position', 'context'];

/**
 * The event schema for one configuration: the set of types and the clock. Build it once at
 * start-up; `now` is called per event, so a long-running server keeps its "future" bound current.
 */
export function eventInputSchema({ eventTypes = DEFAULT_EVENT_TYPES, now }: EventSchemaOptions = {}) {
  checkEventTypeConfig(eventTypes);
  const names = eventTypes.map((t) => t.name);
  const configured = names.join(', ');
  const TypeSchema = z
    .string({ error: typeError('a string event type') })
    .refine((t) => names.includes(t), {
      error: (iss) => `${quote(iss.input)} is not a configured event type; configured: ${configured}`,
    })
    .meta({ enum: names, description: 'a configured event type' });
  const schema = z
    .strictObject({
      id: IdSchema,
      type: TypeSchema,
      userId: IdSchema,
      itemId: IdSchema,
      value: FiniteNumber.optional(),
      timestamp: timestampSchema({ now }),
      requestId: IdSchema.optional(),
      position: z
        .number({ error: typeError('a whole number') })
        .int({ error: (iss) => `is ${quote(iss.input)}; use a whole number from 0 to ${MAX_POSITION}` })
        .min(0, { error: (iss) => `is ${quote(iss.input)}; positions start at 0` })
        .max(MAX_POSITION, { error: (iss) => `is ${quote(iss.input)}, over the limit of ${MAX_POSITION}` })
        .optional(),
      context: ContextSchema.optional(),
    }, { error: objectError('event', EVENT_KEYS) })
    .meta({ id: 'EventInput', description: 'one interaction; `id` makes ingestion idempotent' });
  fastPaths.set(schema, eventFastCheck(new Set(names), now));
  return schema;
}

export type EventInputSchema = ReturnType<typeof eventInputSchema>;

// ---------------------------------------------------------------------------------------------
// The events fast path. zod spends ~10 µs on a well-formed event (most of POST /v1/events' CPU
// at 1,000 events a batch); this hand-written check accepts the common shape (JSON-parsed, epoch
// ms timestamp, nothing out of bounds) and returns exactly what the schema would, or undefined,
// and then the schema decides (and words the errors). It reads the same constants from
// limits.ts and the same configured types and clock, so a rule changes in one place:
// test/domain/event-fast-path.test.ts checks that the two agree on random valid and invalid
// events. Only ever accepts what the schema accepts; may hand anything unusual to the schema.

/** The schema's output for `input`, or undefined where the schema must decide. */
export type EventFastPath = (input: unknown) => Event | undefined;

const fastPaths = new WeakMap<EventInputSchema, EventFastPath>();

/** The fast path of a schema built by {@link eventInputSchema}. */
export function eventFastPath(schema: EventInputSchema): EventFastPath | undefined {
  return fastPaths.get(schema);
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_ID_LENGTH && ID_PATTERN.test(value);
}

/** A copy of a valid context (the schema's record returns a new object too), or undefined. */
function fastContext(input: unknown): Record<string, string | number> | undefined {
  if (!isPlainRecord(input)) return undefined;
  const out: Record<string, string | number> = {};
  let keys = 0;
  for (const key in input) {
    // '__proto__' as a JSON key: the schema's copy does something else with it; let it decide.
    if (++keys > MAX_CONTEXT_KEYS || key.length === 0 || key.length > MAX_ATTRIBUTE_KEY_LENGTH || key === '__proto__') return undefined;
    const value = input[key];
    if (typeof value === 'string') {
      // A UTF-16 unit is at most 3 bytes of UTF-8: short strings need no count.
      if (value.length * 3 > MAX_ATTRIBUTE_STRING_BYTES && utf8Length(value) > MAX_ATTRIBUTE_STRING_BYTES) return undefined;
    } else if (typeof value !== 'number' || !Number.isFinite(value)) {
      return undefined;
    }
    out[key] = value;
  }
  return out;
}

function eventFastCheck(types: ReadonlySet<string>, now: (() => number) | undefined): EventFastPath {
  return (input) => {
    if (!isPlainRecord(input)) return undefined;
    for (const key in input) {
      const value = input[key];
      switch (key) {
        case 'id': case 'userId': case 'itemId': case 'requestId':
          if (!isId(value)) return undefined;
          break;
        case 'type':
          if (typeof value !== 'string' || !types.has(value)) return undefined;
          break;
        case 'value':
          if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
          break;
        case 'timestamp':
          // ISO strings go to the schema, which parses them.
          if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_TIMESTAMP_MS
            || value > MAX_TIMESTAMP_MS || (now !== undefined && value > now() + MAX_FUTURE_SKEW_MS)) return undefined;
          break;
        case 'position':
          if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_POSITION) return undefined;
          break;
        case 'context':
          if (value === undefined) return undefined;
          break;
        default:
          return undefined;
      }
    }
    const { id, type, userId, itemId, value, timestamp, requestId, position, context } = input;
    if (id === undefined || type === undefined || userId === undefined || itemId === undefined || timestamp === undefined) return undefined;
    // The schema's key order (its shape's), so the log holds the same bytes either way.
    const event: Event = value === undefined
      ? { id: id as string, type: type as string, userId: userId as string, itemId: itemId as string, timestamp: timestamp as number }
      : { id: id as string, type: type as string, userId: userId as string, itemId: itemId as string, value: value as number, timestamp: timestamp as number };
    if (requestId !== undefined) event.requestId = requestId as string;
    if (position !== undefined) event.position = position as number;
    if (context !== undefined) {
      const copy = fastContext(context);
      if (copy === undefined) return undefined;
      event.context = copy;
    }
    return event;
  };
}

// ---------------------------------------------------------------------------------------------
// Batch envelopes: entries stay `unknown` at the envelope, so one bad row does not fail the
// request; core/api/validate.ts validates them one by one. The OpenAPI document still shows the
// entry schema through a $ref.

function entries(noun: string, ref: string) {
  return z
    .array(z.unknown(), { error: typeError(`an array of ${noun}`) })
    .min(1, { error: `is empty; send 1 to ${MAX_BATCH_ENTRIES} ${noun}` })
    .max(MAX_BATCH_ENTRIES, {
      error: (iss) =>
        `has ${length(iss.input)} entries, over the limit of ${MAX_BATCH_ENTRIES}; split it into several calls`,
    })
    .meta({ items: { $ref: `#/components/schemas/${ref}` } });
}

export const ItemBatchSchema = z
  .strictObject({ items: entries('items', 'ItemInput') }, { error: objectError('batch', ['items']) })
  .meta({ id: 'ItemBatch', description: `up to ${MAX_BATCH_ENTRIES} items` });

export const UserBatchSchema = z
  .strictObject({ users: entries('users', 'UserInput') }, { error: objectError('batch', ['users']) })
  .meta({ id: 'UserBatch', description: `up to ${MAX_BATCH_ENTRIES} users` });

export const EventBatchSchema = z
  .strictObject({ events: entries('events', 'EventInput') }, { error: objectError('batch', ['events']) })
  .meta({ id: 'EventBatch', description: `up to ${MAX_BATCH_ENTRIES} events` });

/**
 * `POST /v1/events` body: `{ events: [...] }` or one event object. A body with an `events` key is
 * a batch; anything else object-shaped is one event (validated as an entry).
 */
export const EventsBodySchema = z
  .record(z.string(), z.unknown(), { error: typeError('an event object or { "events": [...] }') })
  .check((ctx) => {
    // A body with `events` is a batch and answers for the envelope's rules; zod's union would
    // instead say "not an event or a batch" and hide which rule `{ events: "x" }` broke.
    if (!('events' in ctx.value)) return;
    const batch = EventBatchSchema.safeParse(ctx.value);
    if (!batch.success) for (const issue of batch.error.issues) ctx.issues.push({ ...issue, input: undefined });
  })
  .meta({
    id: 'EventsBody',
    description: `one event, or { events: [...] } with up to ${MAX_BATCH_ENTRIES}`,
    anyOf: [{ $ref: '#/components/schemas/EventBatch' }, { $ref: '#/components/schemas/EventInput' }],
  });

/** The entries of a `POST /v1/events` body, and whether it was a single event. */
export function eventEntries(body: z.output<typeof EventsBodySchema>): { entries: unknown[]; single: boolean } {
  const events = body.events;
  return Array.isArray(events) ? { entries: events, single: false } : { entries: [body], single: true };
}

// ---------------------------------------------------------------------------------------------
// Lists

/** `GET /v1/items?cursor=&limit=` and the same for users: an opaque cursor, limit 1..1000. */
export const ListQuerySchema = z
  .object({
    cursor: z
      .string()
      .max(MAX_CURSOR_LENGTH, { error: 'is longer than any cursor this API returns; pass back the one you got' })
      .optional(),
    limit: z.coerce
      .number({ error: (iss) => `must be a whole number from ${MIN_PAGE_LIMIT} to ${MAX_PAGE_LIMIT}; got ${quote(iss.input)}` })
      .int({ error: (iss) => `is ${quote(iss.input)}; use a whole number from ${MIN_PAGE_LIMIT} to ${MAX_PAGE_LIMIT}` })
      .min(MIN_PAGE_LIMIT, { error: (iss) => `is ${quote(iss.input)}; use at least ${MIN_PAGE_LIMIT}` })
      .max(MAX_PAGE_LIMIT, { error: (iss) => `is ${quote(iss.input)}, over the limit of ${MAX_PAGE_LIMIT}` })
      .default(DEFAULT_PAGE_LIMIT),
  })
  .meta({ id: 'ListQuery' });

export type ListQuery = z.output<typeof ListQuerySchema>;

/** Compile-time check that a validated event is the Event contract. */
type Assignable<T extends Event> = T;
export type EventInputData = Assignable<z.output<EventInputSchema>>;
