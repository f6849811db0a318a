// Validation for the REST API (issue 3, "Bad input"): runs the schemas of core/domain/schemas.ts
// and turns their issues into ApiError details `{ path: 'events[3].timestamp', message }`.
// Batches are validated entry by entry, so one bad row never loses the good ones (a 207 result).
import { type OpenAPIHono, extendZodWithOpenApi } from '@hono/zod-openapi';
import type { Context, Env } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import {
  EventBatchSchema, ItemInputSchema, UserInputSchema, eventInputSchema,
} from '../domain/schemas.ts';
import { errorFromIssues, issuesToDetails } from '../domain/issues.ts';
import { ApiError, type ErrorDetail } from './errors.ts';

type Issue = z.core.$ZodIssue;
type OpenAPIRegistry = OpenAPIHono['openAPIRegistry'];
export { formatPath, issuesToDetails } from '../domain/issues.ts';

/**
 * The ApiError for a failed parse of `what` ("item 'x'", "request body", "query"). With `qualify`,
 * a message about a field names `what` first: "item 'x': categories has 40 entries, ...".
 */
export function apiErrorFromIssues(issues: readonly Issue[], what: string, qualify = false): ApiError {
  const { status, code, message, details } = errorFromIssues(issues, what, qualify);
  return new ApiError(status, code, message, details);
}

/**
 * Parses `value` or throws an ApiError: 400 `invalid_request` when the shape is wrong (a missing
 * field, a wrong type, an unknown field), 422 `invalid_value` when a value breaks a rule or limit.
 * `what` names the value ("request body", "item 'x'") and leads the message.
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw apiErrorFromIssues(result.error.issues, what, true);
}

export interface RejectedEntry {
  /** Position in the request's array. */
  index: number;
  /** The entry's `id` where it sent a string one. */
  id?: string;
  errors: ErrorDetail[];
}

export interface BatchResult<T> {
  /** The valid entries, parsed and normalised, in request order. */
  accepted: T[];
  /** `acceptedIndices[i]` is the request index of `accepted[i]`. */
  acceptedIndices: number[];
  rejected: RejectedEntry[];
}

function idOf(entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const id = (entry as { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Validates each entry on its own. `field` is the envelope's array key, so details read
 * `events[3].timestamp`.
 */
export function validateBatch<S extends z.ZodType>(
  entries: readonly unknown[],
  schema: S,
  { field = 'entries' }: { field?: string } = {},
): BatchResult<z.output<S>> {
  const result: BatchResult<z.output<S>> = { accepted: [], acceptedIndices: [], rejected: [] };
  entries.forEach((entry, index) => {
    const parsed = schema.safeParse(entry);
    if (parsed.success) {
      result.accepted.push(parsed.data);
      result.acceptedIndices.push(index);
    } else {
      const prefix = `${field}[${index}]`;
      const id = idOf(entry);
      const rejected: RejectedEntry = { index, errors: issuesToDetails(parsed.error.issues, prefix, prefix) };
      if (id !== undefined) rejected.id = id;
      result.rejected.push(rejected);
    }
  });
  return result;
}

export type EntryStatus = 'accepted' | 'duplicate' | 'rejected';

export interface EntryResult {
  index: number;
  id?: string;
  status: EntryStatus;
  errors?: ErrorDetail[];
}

/** The body of a batch response (`207 Multi-Status` when any entry was rejected). */
export interface BatchResponse {
  accepted: number;
  duplicate: number;
  rejected: number;
  results: EntryResult[];
}

export interface RenderOptions<T> {
  /** The stored id of an accepted entry (defaults to its `id` field). */
  idOf?: (value: T) => string | undefined;
  /**
   * Filled in by the store: true when an accepted entry was already stored (same event id), so
   * it was not stored again. Its result says `duplicate`, and it does not count as accepted.
   */
  isDuplicate?: (value: T, index: number) => boolean;
}

/** Renders a batch result as the response body: counts and one result per entry, by index. */
export function renderBatchResult<T>(batch: BatchResult<T>, options: RenderOptions<T> = {}): BatchResponse {
  const { idOf: idOfValue = idOf, isDuplicate = () => false } = options;
  const results: EntryResult[] = [];
  let duplicate = 0;
  batch.accepted.forEach((value, i) => {
    const index = batch.acceptedIndices[i] ?? i;
    const dup = isDuplicate(value, index);
    if (dup) duplicate++;
    const entry: EntryResult = { index, status: dup ? 'duplicate' : 'accepted' };
    const id = idOfValue(value);
    if (id !== undefined) entry.id = id;
    results.push(entry);
  });
  for (const { index, id, errors } of batch.rejected) {
    results.push(id === undefined ? { index, status: 'rejected', errors } : { index, id, status: 'rejected', errors });
  }
  results.sort((a, b) => a.index - b.index);
  return {
    accepted: batch.accepted.length - duplicate,
    duplicate,
    rejected: batch.rejected.length,
    results,
  };
}

/** 200 when every entry went in (or was a duplicate), 207 when some were rejected, 422 when all. */
export function batchStatus(body: BatchResponse): 200 | 207 | 422 {
  if (body.rejected === 0) return 200;
  return body.accepted + body.duplicate === 0 ? 422 : 207;
}

const TARGET_NAMES: Record<string, string> = {
  json: 'request body',
  form: 'form body',
  query: 'query',
  param: 'path parameter',
  header: 'header',
  cookie: 'cookie',
};

/**
 * `defaultHook` of OpenAPIHono: a request that fails a route's schema gets our error format
 * instead of zod's raw issues. Paths are relative to the part that failed (`events[3].id` in a
 * body, `limit` in a query).
 */
export function validationHook<E extends Env>(
  result: { target: string } & ({ success: true } | { success: false; error: z.ZodError }),
  c: Context<E>,
): Response | undefined {
  if (result.success) return undefined;
  const err = apiErrorFromIssues(result.error.issues, TARGET_NAMES[result.target] ?? result.target);
  return c.json(err.toJSON(), err.status);
}

/**
 * Whether Hono's JSON validator would read a body with this Content-Type: `application/json` or
 * `application/<anything>+json`, parameters aside. A path that reads the body before the
 * validator does (the ingest threads) goes by the same rule, so both treat a request alike.
 */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  return /^application\/([\w.-]+\+)?json$/i.test((contentType.split(';')[0] ?? '').trim().toLowerCase());
}

/**
 * Maps what Hono's validators throw before a schema runs (malformed JSON 400, a body without a
 * JSON Content-Type 415, bodyLimit's 413) to an ApiError; anything else is returned as is, for
 * the app's `onError` to log as a 500.
 */
export function toApiError(err: unknown): unknown {
  if (err instanceof ApiError || !(err instanceof HTTPException)) return err;
  switch (err.status) {
    case 400:
      return new ApiError(400, 'malformed_json', `request body is not valid JSON: ${err.message}; send a JSON object`);
    case 413:
      return new ApiError(413, 'payload_too_large', 'request body is over the size limit; split it into smaller batches');
    case 415:
      return new ApiError(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
    default:
      return new ApiError(err.status, 'http_error', err.message || `HTTP ${err.status}`);
  }
}

/**
 * Adds the batch entry schemas (ItemInput, UserInput, EventInput, and EventBatch) to an OpenAPI
 * registry: batch envelopes and the events body refer to them by $ref without validating through
 * them (see core/domain/schemas.ts), so no route pulls them into the document by itself. Pass the event schema the app validates
 * with, so the document lists the configured event types.
 */
export function registerEntrySchemas(
  registry: OpenAPIRegistry,
  eventInput: z.ZodType = eventInputSchema(),
): void {
  // The registry names a schema through zod's `.openapi()`, which @hono/zod-openapi adds to the
  // zod it loaded; make sure the zod the schemas were built with has it too (a no-op if so).
  extendZodWithOpenApi(z);
  registry.register('ItemInput', ItemInputSchema);
  registry.register('UserInput', UserInputSchema);
  registry.register('EventInput', eventInput);
  registry.register('EventBatch', EventBatchSchema);
}
