// The event bus port (issue 3): the core's POST /v1/events publishes into it and awaits
// durability; consumers (the SQLite projector, training) read it in consumer groups with
// committed offsets. Two adapters pass one contract suite (test/contract/event-bus.case.ts):
// the embedded segment log (./log/) and Kafka (./kafka.ts).
import type { Event } from '../domain/event.ts';

/** One event as a consumer sees it, with the position it came from. */
export interface Delivery {
  event: Event;
  /** Kafka partition; the embedded log has one ordered partition, 0. */
  partition: number;
  /** Where the event sits in its partition; increases along the partition. */
  offset: number;
  /**
   * The offset to resume from once this event is processed: `offset + 1` in Kafka, the next
   * record's byte position in the embedded log. Commit it through `Subscription.commit`.
   */
  next: number;
}

/**
 * Called with the next events of one partition, in order. The next call for that partition
 * waits until the returned promise settles; a rejection stops the subscription (the events
 * after the last commit are delivered again to the group's next consumer: at-least-once).
 */
export type BatchHandler = (deliveries: readonly Delivery[]) => Promise<void>;

export interface Subscription {
  /**
   * Records that everything up to and including these deliveries is processed: the group
   * resumes after them. Resolves once the commit is durable, or, when the broker cannot take it
   * right now (Kafka unreachable), once the failure is reported: the deliveries then come again
   * (at-least-once, as after any consumer restart), which consumers absorb by deduplicating on
   * `Event.id`. It rejects only on a fault that retrying would not mend.
   */
  commit(deliveries: readonly Delivery[]): Promise<void>;
  /** Stops delivery. Commits nothing: what was not committed is delivered again. */
  close(): Promise<void>;
}

export interface SubscribeOptions {
  /** The consumer group: a new group starts at the beginning, a known one after its commit. */
  group: string;
  onBatch: BatchHandler;
}

export interface EventBus {
  /**
   * Appends the events, keyed by `userId` (each user's events keep their order), and resolves
   * only once every one of them is durable. Events of one call keep their order; calls
   * resolve in the order they were made per user.
   */
  publish(events: readonly Event[]): Promise<void>;
  /**
   * `publish` for events encoded already, elsewhere (the API's ingest threads): `records` holds
   * them back to back as the embedded log frames them (`frameTexts` of each event's UTF-8 JSON,
   * the bytes `encodeEvent` makes), record i ending at `ends[i]`, its event's user id at
   * `userIds[i]` (Kafka's key). Resolves as `publish` does.
   */
  publishFramed?(records: Uint8Array, ends: ArrayLike<number>, userIds: readonly string[]): Promise<void>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** Stops every subscription and releases files and connections; pending publishes settle first. */
  close(): Promise<void>;
}

/** The highest `next` per partition among `deliveries`: what a commit of them records. */
export function commitPositions(deliveries: readonly Delivery[]): Map<number, number> {
  const positions = new Map<number, number>();
  for (const d of deliveries) {
    if ((positions.get(d.partition) ?? -1) < d.next) positions.set(d.partition, d.next);
  }
  return positions;
}

/** The bytes an event travels as, in both adapters: UTF-8 JSON of the Event. */
export function encodeEvent(event: Event): Buffer {
  return Buffer.from(JSON.stringify(event), 'utf8');
}

export function decodeEvent(bytes: Uint8Array, where: string): Event {
  const parsed: unknown = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${where}: payload is not a JSON object`);
  const e = parsed as Partial<Event>;
  if (typeof e.id !== 'string' || typeof e.userId !== 'string' || typeof e.itemId !== 'string'
    || typeof e.type !== 'string' || typeof e.timestamp !== 'number') {
    throw new Error(`${where}: payload is not an Event (needs string id, type, userId, itemId and a numeric timestamp)`);
  }
  return e as Event;
}

/**
 * A delivery whose event is decoded on first read, with its UTF-8 JSON bytes at hand
 * (`encodedDelivery`): a consumer that only forwards them (the projector, to its worker thread)
 * spends no time on the event loop decoding and cloning events. Both adapters deliver these.
 */
export class EncodedDelivery implements Delivery, EncodedEvent {
  #event: Event | undefined;

  constructor(readonly partition: number, readonly offset: number, readonly next: number, readonly payload: Uint8Array, readonly source: string) {}

  get event(): Event {
    this.#event ??= decodeEvent(this.payload, whereEncoded(this.source, this.offset));
    return this.#event;
  }
}

/**
 * An event as a bus holds it: its UTF-8 JSON, and where it sits, for the message of a payload
 * that is not an Event: `source` names the partition in words ("event log DIR at byte", "topic T
 * partition P offset"), which `offset` completes.
 */
export interface EncodedEvent {
  payload: Uint8Array;
  source: string;
  offset: number;
}

export function whereEncoded(source: string, offset: number): string {
  return `${source} ${offset}`;
}

/** The bytes behind a delivery, or undefined for a delivery built another way. */
export function encodedDelivery(delivery: Delivery): EncodedEvent | undefined {
  return delivery instanceof EncodedDelivery ? delivery : undefined;
}
