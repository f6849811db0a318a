// The embedded EventBus: one ordered SegmentLog on disk. One partition, not one per hash(userId):
// every publish already shares one group-committed fdatasync, so more files would add flushes
// without adding disk bandwidth on a single machine, and one order keeps each user's order
// (and the global order a projector replays) trivially. The partition number stays in
// `Delivery` for the Kafka adapter's sake; here it is always 0.
import type { Event } from '../../domain/event.ts';
import { EncodedDelivery, commitPositions } from '../bus.ts';
import type { Delivery, EventBus, SubscribeOptions, Subscription } from '../bus.ts';
import { SegmentLog, frameTexts, framedRecords } from './segment-log.ts';
import type { SegmentLogOptions } from './segment-log.ts';

/** How a decode error names a record of the log in `dir` (`whereEncoded` adds the byte offset). */
export function logSource(dir: string): string {
  return `event log ${dir} at byte`;
}

/** Bytes a consumer reads per step; a batch handed to `onBatch` is at most about this big. */
const READ_CHUNK_BYTES = 1024 * 1024;

export interface LogBusOptions extends SegmentLogOptions {
  /** Where a subscription's handler error goes; defaults to console.error. */
  onError?: (error: unknown) => void;
}

export async function openLogBus(dir: string, options: LogBusOptions = {}): Promise<EventBus & { log: SegmentLog; publishFramed: NonNullable<EventBus['publishFramed']> }> {
  const log = await SegmentLog.open(dir, options);
  const subscriptions = new Set<Subscription>();

  async function subscribe({ group, onBatch }: SubscribeOptions): Promise<Subscription> {
    let position = (await log.committed(group)) ?? log.start;
    let stopped = false;
    let wake: (() => void) | undefined;
    const stop = new Promise<void>((resolve) => { wake = resolve; });

    const loop = (async () => {
      while (!stopped) {
        const records = await log.read(position, READ_CHUNK_BYTES);
        if (records.length === 0) {
          await Promise.race([log.waitForAppend(position), stop]);
          continue;
        }
        const source = logSource(dir);
        const deliveries: Delivery[] = records.map((r) => new EncodedDelivery(0, r.offset, r.next, r.payload, source));
        await onBatch(deliveries);
        position = (records.at(-1) as { next: number }).next;
      }
    })().catch((error: unknown) => {
      stopped = true;
      (options.onError ?? console.error)(error);
    });

    const subscription: Subscription = {
      async commit(deliveries) {
        const next = commitPositions(deliveries).get(0);
        if (next !== undefined) await log.commit(group, next);
      },
      async close() {
        stopped = true;
        wake?.();
        await loop;
        subscriptions.delete(subscription);
      },
    };
    subscriptions.add(subscription);
    return subscription;
  }

  return {
    log,
    // The bytes encodeEvent makes (UTF-8 JSON), framed into one block per publish.
    publish: (events: readonly Event[]) => {
      let frames: Buffer[];
      try {
        frames = frameTexts(events.map((e) => JSON.stringify(e)));
      } catch (error) {
        return Promise.reject(error);
      }
      return log.appendFramed(frames);
    },
    publishFramed: (records: Uint8Array, ends: ArrayLike<number>) => {
      let frames: Buffer[];
      try {
        frames = framedRecords(records, ends);
      } catch (error) {
        return Promise.reject(new Error(`publishFramed: ${error instanceof Error ? error.message : String(error)}`));
      }
      return log.appendFramed(frames);
    },
    subscribe,
    async close() {
      for (const s of [...subscriptions]) await s.close();
      await log.close();
    },
  };
}
