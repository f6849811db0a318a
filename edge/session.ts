// The per-user session Durable Object (ARCHITECTURE.md: "edge /v1/events ──► session state (DO)
// ──► core /v1/events"). One object per user (`idFromName(userId)`), so no object is hot for more
// than one user's traffic. It keeps, in its own storage:
//
//   recent            the session's last RECENT_EVENTS events, oldest first
//   interest          { dim, sum, weight }: an exponentially decayed mean of the embeddings of the
//                     items the user acted on (SIGNAL_TYPES); the interest vector is sum / weight
//   shown             { [itemId]: impressions } in this session, at most MAX_SHOWN items
//   outbox:{seq}      an event the core has not acknowledged yet (seq zero-padded: list() order is
//                     arrival order); removed only after the core answered 2xx for it
//   rejected:{seq}    an event the core refused for good (400/422): kept for inspection, not retried
//   seq               the next outbox sequence number
//   attempt           consecutive failed deliveries, for the backoff of the retry alarm
//   coreUrl           the core the outbox goes to (the Worker's CORE_URL at the last record)
//
// Delivery: `record` stores the events (session state and outbox in one atomic write, so an accepted
// event is durable before the Worker answers), then forwards the outbox at once unless a retry is
// already scheduled (the core was just found down: the client is not made to wait on it again).
// When the core is unreachable or answers 5xx/408/429, an alarm retries after
// RETRY_BASE_MS · 2^(attempt−1) (capped at RETRY_MAX_MS); nothing leaves the outbox without a 2xx.
// A batch the core refuses for good (another 4xx), or entries a 207 rejects, move to `rejected:`.
import { DurableObject } from 'cloudflare:workers';
import type { Event } from '../core/domain/event.ts';
import { coreHeaders } from './core-client.ts';

/** Events of the session kept for context. */
export const RECENT_EVENTS = 50;
/** Items whose impressions are counted; the oldest counted item is forgotten past this. */
export const MAX_SHOWN = 2000;
/** Each new signal weighs 1; what came before decays by this factor per signal. */
export const INTEREST_DECAY = 0.8;
/** Event types that pull the interest vector toward the item, with their weight. */
export const SIGNAL_TYPES: Readonly<Record<string, number>> = { click: 1, 'add-to-cart': 2, purchase: 3, like: 2 };
/** Events sent to the core per request (its limit is 10,000). */
export const FORWARD_BATCH = 500;
export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 5 * 60_000;
/** Deadline of the forward inside POST /v1/events: a slow core must not hold up the client. */
const INLINE_FORWARD_TIMEOUT_MS = 2000;
/** Deadline of a forward from the retry alarm, which nobody waits on. */
const ALARM_FORWARD_TIMEOUT_MS = 10_000;
const SEQ_DIGITS = 16;
/** Keys per storage put/delete call (the Durable Object storage API's limit). */
const STORAGE_KEYS_PER_CALL = 128;

/** An event as the Worker hands it in: with the item's embedding when the user's cached slate had it. */
export interface SessionEvent {
  event: Event;
  embedding?: number[];
}

/** What re-ranking reads: the interest vector (null before any signal) and impressions per item. */
export interface SessionSnapshot {
  interest: number[] | null;
  shown: Record<string, number>;
}

/** What `record` answers: the delivery, and the session as it stands after the events. */
export interface RecordReport extends DeliveryReport {
  snapshot: SessionSnapshot;
}

export interface DeliveryReport {
  /** Events the core acknowledged during this call. */
  delivered: number;
  /** Events still in the outbox (a retry alarm is set when > 0). */
  pending: number;
  /** Why the last attempt failed, when it did. */
  error?: string;
}

interface Interest {
  dim: number;
  sum: number[];
  weight: number;
}

/** A failure the retry alarm can fix (network, timeout, 5xx, 408, 429) or not (other 4xx). */
class DeliveryFailed extends Error {
  constructor(message: string, readonly permanent: boolean) {
    super(message);
  }
}

function outboxKey(seq: number): string {
  return `outbox:${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

/** The backoff before retry number `attempt` (1-based). */
export function retryDelayMs(attempt: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempt - 1));
}

function snapshotOf(interest: Interest | undefined, shown: Record<string, number> | undefined): SessionSnapshot {
  return {
    interest: interest !== undefined && interest.weight > 0 ? interest.sum.map((s) => s / interest.weight) : null,
    shown: shown ?? {},
  };
}

/** Folds one signal into the decayed mean: sum ← decay·sum + w·e, weight ← decay·weight + w. */
export function updateInterest(prev: Interest | undefined, embedding: readonly number[], w: number): Interest {
  const dim = embedding.length;
  // A different dimension means another model: its vectors are not comparable, start over.
  const base = prev !== undefined && prev.dim === dim ? prev : { dim, sum: new Array<number>(dim).fill(0), weight: 0 };
  return {
    dim,
    sum: base.sum.map((s, d) => INTEREST_DECAY * s + w * (embedding[d] ?? 0)),
    weight: INTEREST_DECAY * base.weight + w,
  };
}

export class SessionState extends DurableObject<Env> {
  private flushing: Promise<DeliveryReport> | undefined;
  /**
   * What `snapshot` answers, kept in memory from the first read or the last `record` (the only
   * writer of interest and shown) for as long as the object lives: every recommendation asks for
   * it, and storage reads on that path cost more than the re-rank itself.
   */
  private snapshotKept: SessionSnapshot | undefined;

  /** Stores the events (session state + outbox), then forwards the outbox to the core. */
  async record(events: SessionEvent[], coreUrl: string): Promise<RecordReport> {
    const storage = this.ctx.storage;
    const [recent, interest, shown, seq] = await Promise.all([
      storage.get<Event[]>('recent'), storage.get<Interest>('interest'),
      storage.get<Record<string, number>>('shown'), storage.get<number>('seq'),
    ]);
    let nextRecent = recent ?? [];
    let nextInterest = interest;
    const nextShown = new Map(Object.entries(shown ?? {}));
    let nextSeq = seq ?? 0;
    const known = new Set(nextRecent.map((e) => e.id));
    const entries: Record<string, unknown> = {};
    for (const { event, embedding } of events) {
      // A client retry of an event the session already has: the core dedupes, the session must too.
      if (known.has(event.id)) continue;
      known.add(event.id);
      entries[outboxKey(nextSeq++)] = event;
      nextRecent.push(event);
      const w = SIGNAL_TYPES[event.type];
      if (w !== undefined && embedding !== undefined && embedding.length > 0) nextInterest = updateInterest(nextInterest, embedding, w);
      if (event.type === 'impression') {
        const count = (nextShown.get(event.itemId) ?? 0) + 1;
        nextShown.delete(event.itemId); // re-insert: Map order is least recently shown first
        nextShown.set(event.itemId, count);
        for (const oldest of nextShown.keys()) {
          if (nextShown.size <= MAX_SHOWN) break;
          nextShown.delete(oldest);
        }
      }
    }
    nextRecent = nextRecent.slice(-RECENT_EVENTS);
    entries.recent = nextRecent;
    entries.shown = Object.fromEntries(nextShown);
    entries.seq = nextSeq;
    entries.coreUrl = coreUrl;
    if (nextInterest !== undefined) entries.interest = nextInterest;
    // Writes issued in one turn without an await between them are coalesced into one atomic write:
    // the outbox never lags the session state.
    this.snapshotKept = undefined;
    await putAll(storage, entries);
    const snapshot = snapshotOf(nextInterest, entries.shown as Record<string, number>);
    this.snapshotKept = snapshot;
    if ((await storage.get<number>('attempt')) !== undefined) {
      return { delivered: 0, pending: (await storage.list({ prefix: 'outbox:' })).size, error: 'the core was unreachable at the last attempt; a retry is scheduled', snapshot };
    }
    return { ...(await this.forward(INLINE_FORWARD_TIMEOUT_MS)), snapshot };
  }

  /** The interest vector and shown counts for re-ranking. */
  async snapshot(): Promise<SessionSnapshot> {
    if (this.snapshotKept !== undefined) return this.snapshotKept;
    const [interest, shown] = await Promise.all([
      this.ctx.storage.get<Interest>('interest'), this.ctx.storage.get<Record<string, number>>('shown'),
    ]);
    // A record() that ran while these were read wrote newer state (and kept it): that wins.
    this.snapshotKept ??= snapshotOf(interest, shown);
    return this.snapshotKept;
  }

  /** The session's recent events, oldest first. */
  async recent(): Promise<Event[]> {
    return (await this.ctx.storage.get<Event[]>('recent')) ?? [];
  }

  /** Events waiting for the core, in arrival order. */
  async pending(): Promise<Event[]> {
    return [...(await this.ctx.storage.list<Event>({ prefix: 'outbox:' })).values()];
  }

  /** Events the core refused for good. */
  async rejected(): Promise<Event[]> {
    return [...(await this.ctx.storage.list<Event>({ prefix: 'rejected:' })).values()];
  }

  /** Forwards the outbox now (to `coreUrl` from then on, when given); one flush at a time. */
  async flush(coreUrl?: string): Promise<DeliveryReport> {
    if (coreUrl !== undefined) await this.ctx.storage.put('coreUrl', coreUrl);
    return this.forward(ALARM_FORWARD_TIMEOUT_MS);
  }

  override async alarm(): Promise<void> {
    await this.flush();
  }

  private async forward(timeoutMs: number): Promise<DeliveryReport> {
    // A flush in progress may have listed its batch before this call's events went in: wait for it
    // and go again, rather than sending the same batch twice.
    while (this.flushing !== undefined) await this.flushing.catch(() => undefined);
    this.flushing = this.deliver(timeoutMs).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async deliver(timeoutMs: number): Promise<DeliveryReport> {
    const storage = this.ctx.storage;
    const coreUrl = (await storage.get<string>('coreUrl')) ?? this.env.CORE_URL;
    let delivered = 0;
    for (;;) {
      const batch = await storage.list<Event>({ prefix: 'outbox:', limit: FORWARD_BATCH });
      if (batch.size === 0) {
        await storage.delete('attempt');
        await storage.deleteAlarm();
        return { delivered, pending: 0 };
      }
      try {
        const refused = await postEvents(coreUrl, [...batch.values()], timeoutMs, this.env.CORE_API_KEY);
        const keys = [...batch.keys()];
        if (refused.length > 0) {
          console.warn(`session outbox: the core rejected ${refused.length} forwarded event(s); kept under rejected:`);
          const moved: Record<string, Event> = {};
          for (const i of refused) {
            const key = keys[i];
            const event = key === undefined ? undefined : batch.get(key);
            if (key !== undefined && event !== undefined) moved[key.replace('outbox:', 'rejected:')] = event;
          }
          await putAll(storage, moved);
        }
        await deleteAll(storage, keys);
        delivered += batch.size - refused.length;
        await storage.delete('attempt');
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof DeliveryFailed && err.permanent) {
          // Retrying cannot help and would hold up every later event: set the batch aside.
          console.warn(`session outbox: the core refused ${batch.size} event(s) for good: ${message}`);
          const moved: Record<string, Event> = {};
          for (const [key, event] of batch) moved[key.replace('outbox:', 'rejected:')] = event;
          await putAll(storage, moved);
          await deleteAll(storage, [...batch.keys()]);
          continue;
        }
        const attempt = ((await storage.get<number>('attempt')) ?? 0) + 1;
        await storage.put('attempt', attempt);
        await storage.setAlarm(Date.now() + retryDelayMs(attempt));
        const pending = (await storage.list({ prefix: 'outbox:' })).size;
        return { delivered, pending, error: message };
      }
    }
  }
}

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += STORAGE_KEYS_PER_CALL) out.push(items.slice(i, i + STORAGE_KEYS_PER_CALL));
  return out;
}

function putAll(storage: DurableObjectStorage, entries: Record<string, unknown>): Promise<unknown> {
  return Promise.all(chunks(Object.entries(entries)).map((part) => storage.put(Object.fromEntries(part))));
}

function deleteAll(storage: DurableObjectStorage, keys: string[]): Promise<unknown> {
  return Promise.all(chunks(keys).map((part) => storage.delete(part)));
}

/**
 * POST /v1/events to the core; resolves on a 2xx (every event durable or already there) with the
 * indexes of the events a 207 said it rejected. Carries the edge's key for the core (the secret
 * CORE_API_KEY, which needs the core's `write` scope) when it has one.
 */
async function postEvents(coreUrl: string, events: Event[], timeoutMs: number, apiKey: string | undefined): Promise<number[]> {
  const url = new URL('/v1/events', coreUrl);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: coreHeaders(apiKey, { 'content-type': 'application/json' }),
      body: JSON.stringify({ events }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new DeliveryFailed(`${url.origin} unreachable: ${err instanceof Error ? err.message : String(err)}`, false);
  }
  const text = await res.text().catch(() => '');
  if (res.ok) {
    if (res.status !== 207) return [];
    try {
      const body = JSON.parse(text) as { results?: { index?: unknown; status?: unknown }[] };
      return (body.results ?? []).filter((r) => r.status === 'rejected' && typeof r.index === 'number').map((r) => r.index as number);
    } catch {
      return [];
    }
  }
  const transient = res.status >= 500 || res.status === 408 || res.status === 429;
  throw new DeliveryFailed(`${url.origin} answered ${res.status} to /v1/events: ${text.slice(0, 300)}`, !transient);
}
