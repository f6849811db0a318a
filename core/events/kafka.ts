// The Kafka EventBus (kafkajs): topic `events` keyed by userId (per-user order within a
// partition), an idempotent producer, acks=all, a consumer group per subscription with manual
// commits.
//
// When Kafka cannot take a batch (unreachable, or no ack within `sendTimeoutMs`), the batch is
// appended to a local spool, the embedded SegmentLog, and acknowledged once durable there. While
// anything is spooled, every later batch is spooled too, behind it, so each user's order holds;
// a drainer replays the spool to Kafka in order and commits its spool position (and deletes
// drained segments) only after Kafka acknowledged. Once the spool is drained, publishes go
// straight to Kafka again. An acknowledged event is never lost; it can arrive twice (a send that
// timed out may still have been written, and is replayed from the spool): at-least-once,
// consumers dedupe by `Event.id`, which the Event contract makes the idempotency key.
//
// A publish goes out through two idempotent producers side by side, this thread's for the even
// partitions and one on a thread of its own (kafka-producer.thread.ts) for the odd ones, each
// message to its user's partition as kafkajs's DefaultPartitioner picks it; it is acknowledged
// once both halves are, and goes to the spool whole if either fails.
//
// Each subscription's kafkajs consumer runs on a thread of its own (kafka-consumer.thread.ts) and
// hands its records here undecoded; the subscriber's handler and commits run on this thread.
//
// A subscription made while Kafka does not answer starts its consumer in the background, trying
// again until Kafka answers, so a core can start (and take events into the spool) during an
// outage. Subscribers read Kafka only: spooled events become visible once drained. An offset commit that
// fails because Kafka is away resolves anyway (reported to `onTransientError`), unlike the port's
// "resolves once durable": rejecting would stop the subscription for good, and an uncommitted
// batch is only delivered again, which at-least-once allows.
import { logLevel } from 'kafkajs';
import type { KafkaConfig, Message, Producer } from 'kafkajs';
import type { Event } from '../domain/event.ts';
import { EncodedDelivery, commitPositions, decodeEvent, encodeEvent } from './bus.ts';
import type { Delivery, EventBus, SubscribeOptions, Subscription } from './bus.ts';
import { kafkaClient, parseAddress } from './kafka-client.ts';
import type { KafkaClientSettings } from './kafka-client.ts';
import { consumerThread, retriable, runConsumer } from './kafka-consumer.ts';
import type { ConsumerSettings, PartitionRecords, RunningConsumer } from './kafka-consumer.ts';
import { KeyPartitioner, murmur2 } from './kafka-partitioner.ts';
import { producerThread } from './kafka-producer.ts';
import type { SecondProducer } from './kafka-producer.ts';
import { HEADER_BYTES, SegmentLog, framedRecords } from './log/segment-log.ts';

/** The spool's consumer group: its committed position is where the drainer resumes. */
const DRAIN_GROUP = 'kafka-drainer';
const DRAIN_CHUNK_BYTES = 1024 * 1024;
/** Longest pause between a waiting subscription's attempts to start its consumer. */
const CONNECT_RETRY_MAX_MS = 10_000;

export interface KafkaBusOptions {
  brokers: string[];
  /** Default `events`. */
  topic?: string;
  /** Partitions of the topic when the bus creates it. Default 6. */
  partitions?: number;
  clientId?: string;
  /** Folder of the local spool (a SegmentLog). */
  spoolDir: string;
  /**
   * Open every broker connection to this 'host:port' instead of the address the broker
   * advertises (a tunnel or port-forward to a single broker). Threads honour it, unlike a
   * `socketFactory` in `kafka`.
   */
  connectVia?: string;
  /** More kafkajs client settings (ssl, sasl, socketFactory, logLevel...). */
  kafka?: Partial<KafkaConfig>;
  /** A batch Kafka has not acknowledged within this goes to the spool. Default 5,000 ms. */
  sendTimeoutMs?: number;
  /** Pause between the drainer's attempts while Kafka is away. Default 1,000 ms. */
  retryMs?: number;
  /**
   * Most bytes a subscription's consumer asks for per fetch, all partitions together (and at most
   * 1 MiB of them from one partition): what kafkajs decodes in one go. On the event loop that is
   * how long it holds requests up: default 256 KiB there (~1,000 events of ~230 bytes). On its
   * own thread, default 6 MiB: a partition's batch is one projector transaction, and SQLite
   * stores ~180 events (what 256 KiB over 6 partitions came to) at twice the cost per event of
   * ~4,500 (1 MiB).
   */
  fetchMaxBytes?: number;
  /**
   * Run each subscription's kafkajs consumer on a thread of its own, at a lower priority, so that
   * fetching and decoding stay off the event loop that serves requests (~4 ms per 1,000 events).
   * Default true; a `kafka` setting a thread cannot take (a function: socketFactory, an OAuth
   * token provider...) keeps the consumer on the event loop.
   */
  consumerThread?: boolean;
  /**
   * Send the odd partitions' share of each publish through a second producer on a thread of its
   * own, while this thread's producer sends the even ones: kafkajs's encoding (~10 µs a message)
   * then runs on both cores. Default true, under the same condition as `consumerThread`.
   */
  producerThread?: boolean;
  /** A subscription's handler failed and that consumer stopped; also what `onTransientError` defaults to. */
  onError?: (error: unknown) => void;
  /**
   * Kafka unreachable or slow, and nothing lost: a batch went to the spool (no ack within
   * `sendTimeoutMs`), a drain attempt failed and will be retried, or an offset commit failed and
   * those events will be delivered again. Default `onError`.
   */
  onTransientError?: (error: unknown) => void;
}

export interface KafkaBus extends EventBus {
  /** Bytes of acknowledged events waiting in the spool for Kafka (for monitoring). */
  spooledBytes(): number;
  /** True while publishes go to the spool. */
  readonly spooling: boolean;
  /** The consumer groups subscribed while Kafka did not answer, still trying to connect. */
  connecting(): string[];
  /** Resolves once nothing waits in the spool and publishes go straight to Kafka again. */
  drained(): Promise<void>;
}

/** The producers a send goes through: `second` (with the partition count) when it runs on a thread. */
interface Link {
  producer: Producer;
  second?: SecondProducer;
  partitions?: number;
}

interface PendingPublish {
  /** Keyed by user id, valued with the event's UTF-8 JSON (encodeEvent). */
  messages: readonly Message[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from Kafka within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const toMessage = (event: Event, value: Buffer = encodeEvent(event)): Message => ({ key: event.userId, value });

export async function openKafkaBus(options: KafkaBusOptions): Promise<KafkaBus> {
  const topic = options.topic ?? 'events';
  const sendTimeoutMs = options.sendTimeoutMs ?? 5_000;
  const retryMs = options.retryMs ?? 1_000;
  const onError = options.onError ?? (() => undefined);
  const onTransientError = options.onTransientError ?? onError;
  const kafkaConfig: KafkaConfig = {
    clientId: options.clientId ?? 'kestrel-core',
    brokers: options.brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    ...options.kafka,
  };
  if (options.connectVia !== undefined) parseAddress(options.connectVia, 'connectVia');
  const client: KafkaClientSettings = { config: kafkaConfig, ...(options.connectVia === undefined ? {} : { connectVia: options.connectVia }) };
  const kafka = kafkaClient(client);
  const spool = await SegmentLog.open(options.spoolDir);

  let drained = (await spool.committed(DRAIN_GROUP)) ?? spool.start;
  let spooling = drained < spool.end;
  /** A spool append is in flight: the drainer must not hand publishing back to Kafka. */
  let appending = false;
  let closed = false;
  let producer: Link | undefined;
  let secondProducer: SecondProducer | undefined;
  let topicReady: Promise<void> | undefined;
  const pending: PendingPublish[] = [];
  let flushing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  let wakeDrainer: (() => void) | undefined;
  const consumers = new Set<RunningConsumer>();
  /** Groups subscribed while Kafka did not answer, whose consumer is still trying to start. */
  const waiting = new Set<string>();
  /** Their background attempts, and how to stop each (close waits for them). */
  const connectings = new Set<Promise<void>>();
  const stoppers = new Set<() => Promise<void>>();
  const drainedWaiters: (() => void)[] = [];
  /** The drainer's last send to Kafka succeeded. */
  let kafkaUp = false;
  let progressWaiters: (() => void)[] = [];
  const progress = (): Promise<void> => new Promise((resolve) => progressWaiters.push(resolve));
  function notifyProgress(): void {
    const waiters = progressWaiters;
    progressWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Creates the topic once per bus (concurrent callers share one attempt; a failure is retried). */
  function ensureTopic(): Promise<void> {
    topicReady ??= (async () => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        await admin.createTopics({
          waitForLeaders: true,
          timeout: 30_000,
          topics: [{ topic, numPartitions: options.partitions ?? 6 }],
        });
      } finally {
        await admin.disconnect();
      }
    })().catch((error: unknown) => {
      topicReady = undefined;
      throw error;
    });
    return topicReady;
  }

  /** The topic's partition count, as the broker has it now. */
  async function partitionCount(): Promise<number> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const count = topics[0]?.partitions.length ?? 0;
      if (count < 1) throw new Error(`topic ${topic} has no partitions`);
      return count;
    } finally {
      await admin.disconnect();
    }
  }

  async function connected(): Promise<Link> {
    if (producer !== undefined) return producer;
    const p = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // The Java client's and kafkajs's partition for each user id, computed faster.
      createPartitioner: KeyPartitioner,
      // Finite, so a send to a broker that went away fails and the batch is spooled.
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    const threadClient = options.producerThread === false ? undefined : cloneableClient();
    let link: Link;
    try {
      link = await withTimeout((async (): Promise<Link> => {
        await ensureTopic();
        await p.connect();
        if (threadClient === undefined) return { producer: p };
        if (secondProducer?.gone === true) secondProducer = undefined;
        secondProducer ??= producerThread(threadClient, topic);
        return { producer: p, second: secondProducer, partitions: await partitionCount() };
      })(), sendTimeoutMs, `connecting to ${options.brokers.join(',')}`);
    } catch (error) {
      void p.disconnect().catch(() => undefined);
      throw error;
    }
    producer = link;
    return link;
  }

  function dropProducer(): void {
    const link = producer;
    producer = undefined;
    if (link !== undefined) void link.producer.disconnect().catch(() => undefined);
    secondProducer?.drop();
  }

  async function send(messages: readonly Message[]): Promise<void> {
    const { producer: p, second, partitions } = await connected();
    const what = `sending ${messages.length} events to topic ${topic}`;
    if (second === undefined || partitions === undefined) {
      await withTimeout(p.send({ topic, acks: -1, messages: [...messages] }), sendTimeoutMs, what);
      return;
    }
    // Each partition always goes through the same producer: even ones here, odd ones there.
    const here: Message[] = [];
    const there: Message[] = [];
    const thereTo: number[] = [];
    for (const m of messages) {
      const partition = (murmur2(m.key as string) & 0x7fffffff) % partitions;
      if (partition % 2 === 0) here.push({ key: m.key, value: m.value, partition });
      else {
        there.push(m);
        thereTo.push(partition);
      }
    }
    // Either half failing fails the publish, which goes to the spool whole: the half that did
    // reach Kafka arrives twice, which at-least-once allows.
    await withTimeout(Promise.all([
      here.length > 0 ? p.send({ topic, acks: -1, messages: here }) : undefined,
      there.length > 0 ? second.send(there, thereTo) : undefined,
    ]), sendTimeoutMs, what);
  }

  function enqueue(messages: Message[]): Promise<void> {
    if (closed) return Promise.reject(new Error('the Kafka event bus is closed'));
    if (messages.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      pending.push({ messages, resolve, reject });
      flushing ??= flushLoop();
    });
  }

  async function flushLoop(): Promise<void> {
    while (pending.length > 0) {
      const batch = pending.splice(0);
      const messages = batch.length === 1 ? (batch[0] as PendingPublish).messages : batch.flatMap((p) => p.messages);
      // The flusher is the only appender, so here nothing is being appended: with the spool
      // drained to its end, Kafka can take publishes directly again. (Under a steady stream of
      // publishes, the drainer would rarely see a moment without an append in flight.)
      if (spooling && drained === spool.end) handBack();
      try {
        if (!spooling) {
          try {
            await send(messages);
            for (const p of batch) p.resolve();
            continue;
          } catch (error) {
            onTransientError(error);
            dropProducer();
            kafkaUp = false;
            spooling = true;
          }
        }
        appending = true;
        try {
          await spool.append(messages.map((m) => m.value as Buffer));
        } finally {
          appending = false;
        }
        startDrainer();
        // Durable now. But while Kafka is back and the drainer catches up, hold the ack until
        // this batch reached Kafka: acks then come at Kafka's pace, so a publisher faster than
        // Kafka cannot grow the spool forever and publishing returns to Kafka once it is drained.
        const end = spool.end;
        while (kafkaUp && drained < end && !closed) await progress();
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    flushing = undefined;
  }

  function handBack(): void {
    spooling = false;
    for (const resolve of drainedWaiters.splice(0)) resolve();
  }

  function startDrainer(): void {
    draining ??= drainLoop().finally(() => { draining = undefined; });
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeDrainer = () => { clearTimeout(timer); resolve(); };
    });
  }

  async function drainLoop(): Promise<void> {
    while (!closed && spooling) {
      try {
        const records = await spool.read(drained, DRAIN_CHUNK_BYTES);
        if (records.length === 0) {
          // Synchronous check-and-flip: no append can slip in between.
          if (!appending && drained === spool.end) {
            handBack();
            return;
          }
          await Promise.race([spool.waitForAppend(drained), pause(retryMs)]);
          continue;
        }
        await send(records.map((r) => toMessage(decodeEvent(r.payload, `spool ${options.spoolDir} at byte ${r.offset}`), r.payload)));
        await spool.commit(DRAIN_GROUP, (records.at(-1) as { next: number }).next);
        drained = (records.at(-1) as { next: number }).next;
        kafkaUp = true;
        notifyProgress();
        await spool.deleteBefore(drained);
      } catch (error) {
        onTransientError(error);
        kafkaUp = false;
        notifyProgress();
        dropProducer();
        if (!closed) await pause(retryMs);
      }
    }
  }

  if (spooling) startDrainer();

  /** The kafkajs client settings, when a thread can take them (no functions: socketFactory...). */
  function cloneableClient(): KafkaClientSettings | undefined {
    try {
      return structuredClone(client);
    } catch {
      return undefined;
    }
  }

  /** A consumer on this thread: records go to `onRecords` directly. */
  async function consumerHere(settings: ConsumerSettings, onRecords: (records: PartitionRecords) => Promise<void>): Promise<RunningConsumer> {
    return runConsumer(kafka, settings, onRecords, onError);
  }

  /**
   * Subscribes `group`. When Kafka does not answer (a retriable error: the broker down or
   * unreachable), the subscription is made anyway and its consumer started in the background,
   * tried again with a growing pause up to CONNECT_RETRY_MAX_MS until Kafka answers: a core
   * started while Kafka is away takes events into the spool meanwhile, and projects them once
   * both are back. Other errors (a bad setting, no permission) reject as before.
   */
  async function subscribe({ group, onBatch }: SubscribeOptions): Promise<Subscription> {
    const threadClient = options.consumerThread === false ? undefined : cloneableClient();
    const settings: ConsumerSettings = { topic, group, fetchMaxBytes: options.fetchMaxBytes ?? (threadClient === undefined ? 256 * 1024 : 6 * 1024 * 1024) };
    // Decoded when read: the projector hands the bytes to its worker thread as they are.
    const onRecords = async ({ partition, bytes, ends, offsets }: PartitionRecords): Promise<void> => {
      const source = `topic ${topic} partition ${partition} offset`;
      const deliveries: Delivery[] = new Array(ends.length);
      let start = 0;
      for (let i = 0; i < ends.length; i++) {
        const offset = offsets[i] as number;
        deliveries[i] = new EncodedDelivery(partition, offset, offset + 1, bytes.subarray(start, ends[i]), source);
        start = ends[i] as number;
      }
      await onBatch(deliveries);
    };
    const startConsumer = async (): Promise<RunningConsumer> => {
      await ensureTopic();
      return threadClient === undefined ? consumerHere(settings, onRecords) : consumerThread(threadClient, settings, onRecords, onError);
    };
    let consumer: RunningConsumer | undefined;
    let unsubscribed = false;
    let connecting: Promise<void> | undefined;
    let wake: (() => void) | undefined;
    try {
      consumer = await startConsumer();
      consumers.add(consumer);
    } catch (error) {
      if (!retriable(error)) throw error;
      onTransientError(new Error(`the consumer of group '${group}' cannot reach Kafka (${error instanceof Error ? error.message : String(error)}); trying again in the background`));
      waiting.add(group);
      connecting = (async () => {
        for (let pause = retryMs; !closed && !unsubscribed; pause = Math.min(pause * 2, CONNECT_RETRY_MAX_MS)) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, pause);
            wake = () => { clearTimeout(timer); resolve(); };
          });
          if (closed || unsubscribed) break;
          try {
            const started = await startConsumer();
            if (closed || unsubscribed) {
              await started.close().catch(() => undefined);
              break;
            }
            consumer = started;
            consumers.add(started);
            break;
          } catch (again) {
            // Reported once above; the next tries stay quiet unless the error is not Kafka's absence.
            if (!retriable(again)) {
              onError(again);
              break;
            }
          }
        }
        waiting.delete(group);
      })();
      connectings.add(connecting);
      void connecting.finally(() => connectings.delete(connecting as Promise<void>));
    }
    const stopConnecting = async (): Promise<void> => {
      unsubscribed = true;
      wake?.();
      await connecting;
    };
    stoppers.add(stopConnecting);
    return {
      async commit(deliveries) {
        const positions = commitPositions(deliveries);
        // Deliveries come only from a running consumer; without one there is nothing to commit.
        if (positions.size === 0 || consumer === undefined) return;
        try {
          await consumer.commit(positions);
        } catch (error) {
          // Kafka unreachable or the group rebalancing. Thrown, it would stop this consumer for
          // good (a single core has no other member). Not thrown, the consumer goes on: a later
          // commit covers these offsets, or after kafkajs restarts the consumer they are delivered
          // again, which at-least-once allows (subscribers dedupe by `Event.id`).
          if (!retriable(error)) throw error;
          onTransientError(error);
        }
      },
      async close() {
        stoppers.delete(stopConnecting);
        await stopConnecting();
        if (consumer === undefined) return;
        consumers.delete(consumer);
        await consumer.close();
      },
    };
  }

  return {
    get spooling() {
      return spooling;
    },
    drained() {
      if (!spooling) return Promise.resolve();
      return new Promise((resolve) => drainedWaiters.push(resolve));
    },
    spooledBytes() {
      return spool.end - drained;
    },
    connecting() {
      return [...waiting];
    },
    publish(events) {
      return enqueue(events.map((e) => toMessage(e)));
    },
    publishFramed(records, ends, userIds) {
      let messages: Message[];
      try {
        if (userIds.length !== ends.length) throw new Error(`${ends.length} records but ${userIds.length} user ids`);
        messages = framedRecords(records, ends).map((frame, i) => ({ key: userIds[i] as string, value: frame.subarray(HEADER_BYTES) }));
      } catch (error) {
        return Promise.reject(new Error(`publishFramed: ${error instanceof Error ? error.message : String(error)}`));
      }
      return enqueue(messages);
    },
    subscribe,
    async close() {
      closed = true;
      notifyProgress();
      await flushing;
      wakeDrainer?.();
      await draining;
      for (const stop of [...stoppers]) await stop();
      await Promise.all([...connectings]);
      for (const c of [...consumers]) await c.close().catch(() => undefined);
      consumers.clear();
      const link = producer;
      producer = undefined;
      await link?.producer.disconnect().catch(() => undefined);
      await secondProducer?.close();
      secondProducer = undefined;
      await spool.close();
    },
  };
}
