// Input limits of the REST API, in one place so the schemas, the OpenAPI document and the docs
// agree. Each bounds what one request can make the core store or scan; a request over a limit is
// rejected with a message that names the limit, never truncated silently.

/** Entries per `POST /v1/items:batch`, `/v1/users:batch` or `POST /v1/events` call. */
export const MAX_BATCH_ENTRIES = 10_000;

/**
 * Size of one request body, for the routes' body-limit middleware: 10,000 events of about 1 KiB
 * each fit with room to spare; a batch of items with long texts must be split.
 */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Length of an item, user, event or request id, in characters. */
export const MAX_ID_LENGTH = 256;
/**
 * Characters an id may use: letters, digits and `. _ ~ : @ + = -`. No whitespace, no `/` or `%`,
 * so an id is its own URL path segment (`/v1/items/{id}`) and survives logs and CSV unquoted.
 */
export const ID_PATTERN = /^[A-Za-z0-9._~:@+=-]+$/;
export const ID_CHARACTERS = 'letters, digits and . _ ~ : @ + = -';

/** Categories per item; retrieval filters on them, so they stay few. */
export const MAX_CATEGORIES = 32;
/** Tags per item. */
export const MAX_TAGS = 64;
/** Length of one category or tag, in characters. */
export const MAX_LABEL_LENGTH = 128;

/** Free text of an item (title, description), in UTF-8 bytes: 64 KiB. */
export const MAX_TEXT_BYTES = 64 * 1024;

/** Attributes per item or user. */
export const MAX_ATTRIBUTES = 64;
/** Length of an attribute or context key, in characters. */
export const MAX_ATTRIBUTE_KEY_LENGTH = 64;
/** A string attribute or context value, in UTF-8 bytes: 1 KiB. */
export const MAX_ATTRIBUTE_STRING_BYTES = 1024;

/** Keys in an event's `context`. */
export const MAX_CONTEXT_KEYS = 32;

/** Highest `position` of an event (0-based slot in a recommendation response). */
export const MAX_POSITION = 10_000;

/**
 * How far past the server clock an event timestamp may be: client clocks drift, but an event
 * from next year is a bug (seconds sent as milliseconds' cousin: ms sent as µs) that would
 * poison recency features.
 */
export const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;
/** Event timestamps are epoch ms from 1970 on; the top is the largest instant a JS Date can hold. */
export const MIN_TIMESTAMP_MS = 0;
export const MAX_TIMESTAMP_MS = 8_640_000_000_000_000;
/**
 * An item's publish time may be long before 1970 (films, books, archives: 173 of MovieLens
 * 100K's films are older), so it is bounded only by what a JS Date can hold.
 */
export const MIN_PUBLISHED_AT_MS = -MAX_TIMESTAMP_MS;

/** `limit` of a list request (`GET /v1/items?limit=`). */
export const MIN_PAGE_LIMIT = 1;
export const MAX_PAGE_LIMIT = 1000;
export const DEFAULT_PAGE_LIMIT = 100;
/** Length of an opaque pagination cursor. */
export const MAX_CURSOR_LENGTH = 1024;

/** Configured event types, and the length of a type name. */
export const MAX_EVENT_TYPES = 64;
export const MAX_EVENT_TYPE_LENGTH = 64;
