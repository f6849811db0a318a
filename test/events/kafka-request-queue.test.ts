// The mend of kafkajs's RequestQueue (core/events/kafka-request-queue.ts): no timer while nothing
// waits, kafkajs's own schedule while something does. The Kafka contract and API tests run every
// request through the mended queue against a real broker.
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { mendKafkaRequestQueue } from '../../core/events/kafka-request-queue.ts';

interface Queue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  scheduleCheckPendingRequests(): void;
  checkPendingRequests(): void;
}

const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as new (options: object) => Queue;
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const queues: Queue[] = [];

function newQueue(): Queue {
  const q = new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 1_000, enforceRequestTimeout: false, clientId: 'test', broker: 'localhost:1', logger: quiet });
  queues.push(q);
  return q;
}

afterEach(() => {
  for (const q of queues.splice(0)) if (q.throttleCheckTimeoutId) clearTimeout(q.throttleCheckTimeoutId);
});

describe('kafkajs RequestQueue, mended', () => {
  it('applies to the kafkajs installed here', () => {
    expect(mendKafkaRequestQueue()).toBe(true);
    expect(mendKafkaRequestQueue()).toBe(true);
  });

  it('sets no timer while nothing waits, and checks a waiting request again after 10 ms or when a throttle ends', async () => {
    mendKafkaRequestQueue();
    const idle = newQueue();
    idle.scheduleCheckPendingRequests();
    expect(idle.throttleCheckTimeoutId).toBeNull();
    // checkPendingRequests ends by scheduling: with nothing pending the loop stops there.
    idle.checkPendingRequests();
    expect(idle.throttleCheckTimeoutId).toBeNull();

    const waiting = newQueue();
    const checks: number[] = [];
    const t0 = Date.now();
    waiting.checkPendingRequests = () => { checks.push(Date.now() - t0); };
    waiting.pending.push({});
    waiting.scheduleCheckPendingRequests();
    expect(waiting.throttleCheckTimeoutId).not.toBeNull();
    const first = waiting.throttleCheckTimeoutId;
    waiting.scheduleCheckPendingRequests();
    expect(waiting.throttleCheckTimeoutId).toBe(first);
    await expect.poll(() => checks.length, { timeout: 1_000, interval: 5 }).toBe(1);

    const throttled = newQueue();
    const at: number[] = [];
    throttled.checkPendingRequests = () => { at.push(Date.now()); };
    throttled.pending.push({});
    throttled.throttledUntil = Date.now() + 60;
    throttled.scheduleCheckPendingRequests();
    await expect.poll(() => at.length, { timeout: 1_000, interval: 5 }).toBe(1);
    expect(at[0]).toBeGreaterThanOrEqual(throttled.throttledUntil - 2);
  });
});
