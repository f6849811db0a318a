// POST /v1/events at the edge: one event or { events: [...] } (up to 10,000), validated with the
// core's own schema (core/domain/schemas.ts, runtime-free zod), answered per entry in the core's
// shape (200 all in, 207 some rejected, 422 none; a bad single event is the request's 400/422).
// Valid events go to the user's SessionState Durable Object (edge/session.ts), which updates the
// session and keeps them in its outbox until the core has acknowledged them. The embedding of an
// item the user acted on comes from the user's cached slate, when the item is in it. At the same
// time their impressions and clicks go to the bandit shards (edge/bandit.ts), one call per shard;
// a shard that fails costs exploration counts, never the events: the answer carries a `warning`
// and the session outbox forwards them to the core all the same.
import type { Event } from '../core/domain/event.ts';
import { errorFromIssues, issuesToDetails } from '../core/domain/issues.ts';
import { MAX_CONTEXT_KEYS } from '../core/domain/limits.ts';
import type { ErrorDetail, Issue } from '../core/domain/issues.ts';
import { EventsBodySchema, eventEntries, eventInputSchema } from '../core/domain/schemas.ts';
import { recordOutcomes } from './bandit.ts';
import { chooseArm } from './experiments.ts';
import type { ArmChoice } from './experiments.ts';
import type { DeliveryReport, SessionEvent } from './session.ts';
import { forgetSession, keepSession, sessionCacheMs } from './session-memory.ts';
import { SIGNAL_TYPES } from './session.ts';
import { readSlate, slateKey } from './slate-cache.ts';

export type { ErrorDetail } from '../core/domain/issues.ts';

export interface EntryResult {
  index: number;
  id?: string;
  status: 'accepted' | 'duplicate' | 'rejected';
  errors?: ErrorDetail[];
}

export interface EventsResponse {
  accepted: number;
  duplicate: number;
  rejected: number;
  results: EntryResult[];
  /** What happened on the way to the core: delivered now, or kept in the session outbox for a retry. */
  delivery: { delivered: number; pending: number; warning?: string };
  /** Set when the edge's own state missed some of the events (the bandit counts); they are kept regardless. */
  warning?: string;
}

export interface ApiErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

export type EventsAnswer = { status: 200 | 207 | 422; body: EventsResponse } | { status: 400 | 422; body: ApiErrorBody };

function requestError(issues: readonly Issue[], what: string): EventsAnswer {
  const { status, code, message, details } = errorFromIssues(issues, what, true);
  return { status, body: { error: { code, message, details } } };
}

export function malformedJson(reason: string): EventsAnswer {
  return { status: 400, body: { error: { code: 'malformed_json', message: `request body is not valid JSON: ${reason}; send a JSON object` } } };
}

function idOf(entry: unknown): string | undefined {
  const id = typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined;
  return typeof id === 'string' ? id : undefined;
}

export interface EventsContext {
  env: Env;
  /** The experiments in force (KV's entry, else the EXPERIMENTS var): the arm each event is tagged with. */
  experiments: string;
  cache: Cache;
  now: number;
}

/** Validates the body, hands the valid events to their users' sessions and answers per entry. */
export async function ingestEvents(body: unknown, ctx: EventsContext): Promise<EventsAnswer> {
  const envelope = EventsBodySchema.safeParse(body);
  if (!envelope.success) return requestError(envelope.error.issues, 'request body');
  const { entries, single } = eventEntries(envelope.data);
  const schema = eventInputSchema({ now: () => ctx.now });

  const results: EntryResult[] = [];
  const accepted: Event[] = [];
  const seen = new Set<string>();
  for (const [index, entry] of entries.entries()) {
    const parsed = schema.safeParse(entry);
    if (!parsed.success) {
      // One event: a bad one is the request's error, not a 207 of one (as the core answers).
      if (single) return requestError(parsed.error.issues, 'event');
      const prefix = `events[${index}]`;
      const id = idOf(entry);
      results.push({ index, ...(id !== undefined ? { id } : {}), status: 'rejected', errors: issuesToDetails(parsed.error.issues, prefix, prefix) });
      continue;
    }
    const event = parsed.data;
    const duplicate = seen.has(event.id);
    seen.add(event.id);
    results.push({ index, id: event.id, status: duplicate ? 'duplicate' : 'accepted' });
    if (!duplicate) accepted.push(event);
  }

  const [delivery, bandit] = await Promise.all([toSessions(accepted, ctx), recordOutcomes(ctx.env, accepted)]);
  const count = (s: EntryResult['status']) => results.filter((r) => r.status === s).length;
  const response: EventsResponse = {
    accepted: count('accepted'), duplicate: count('duplicate'), rejected: count('rejected'), results, delivery,
    ...(bandit.warning !== undefined ? { warning: bandit.warning } : {}),
  };
  const status = response.rejected === 0 ? 200 : response.accepted + response.duplicate === 0 ? 422 : 207;
  return { status, body: response };
}

/** Each user's events to their session object, with embeddings from the user's cached slate. */
async function toSessions(events: Event[], ctx: EventsContext): Promise<EventsResponse['delivery']> {
  const byUser = new Map<string, Event[]>();
  for (const e of events) byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), e]);
  const reports = await Promise.all([...byUser].map(async ([userId, userEvents]): Promise<DeliveryReport> => {
    const choice = chooseArm(userId, ctx.experiments);
    const withEmbeddings = await embeddingsFromSlate(userId, userEvents.map((e) => withArm(e, choice)), choice, ctx);
    const stub = ctx.env.SESSIONS.get(ctx.env.SESSIONS.idFromName(userId));
    try {
      const { snapshot, ...report } = await stub.record(withEmbeddings, ctx.env.CORE_URL);
      // Write-through: this isolate's next recommendation for the user sees these events at once.
      if (sessionCacheMs(ctx.env) > 0) keepSession(userId, snapshot, Date.now());
      return report;
    } catch (err) {
      // Whether the events landed is unknown: the next recommendation reads the object.
      forgetSession(userId);
      throw err;
    }
  }));
  const delivered = reports.reduce((s, r) => s + r.delivered, 0);
  const pending = reports.reduce((s, r) => s + r.pending, 0);
  const errors = reports.flatMap((r) => (r.error !== undefined ? [r.error] : []));
  return {
    delivered, pending,
    ...(errors.length > 0 ? { warning: `the core did not take every event yet (${errors[0] ?? ''}); they are kept and retried` } : {}),
  };
}

/**
 * The event as the core gets it: its context names the A/B arm (and experiment) the edge serves its
 * user, so outcomes can be split by arm downstream. A client that set `arm` itself keeps its value,
 * and a context with no room left for the tags (MAX_CONTEXT_KEYS) goes as it came: the core would
 * refuse the event otherwise.
 */
export function withArm(event: Event, choice: ArmChoice): Event {
  if (event.context?.arm !== undefined) return event;
  const tags: Record<string, string> = choice.experimentId === undefined ? { arm: choice.arm } : { arm: choice.arm, experiment: choice.experimentId };
  const context = { ...event.context, ...tags };
  return Object.keys(context).length > MAX_CONTEXT_KEYS ? event : { ...event, context };
}

async function embeddingsFromSlate(userId: string, events: Event[], choice: ArmChoice, ctx: EventsContext): Promise<SessionEvent[]> {
  if (!events.some((e) => SIGNAL_TYPES[e.type] !== undefined)) return events.map((event) => ({ event }));
  const cached = await readSlate(ctx.cache, slateKey(userId, choice.cacheKey), ctx.now);
  const byItem = new Map(cached?.slate.candidates.map((c) => [c.item, c.embedding]) ?? []);
  return events.map((event) => {
    const embedding = SIGNAL_TYPES[event.type] !== undefined ? byItem.get(event.itemId) : undefined;
    return embedding === undefined ? { event } : { event, embedding: Array.from(embedding) };
  });
}
