// A mend for kafkajs 2.2.4's RequestQueue (kafkajs issues #1556 and #1704, unfixed upstream): with
// nothing waiting to be sent, `scheduleCheckPendingRequests` still sets a timer, with a negative
// delay (`throttledUntil` is -1), whose callback schedules the next one: every connection spins a
// 1 ms timer loop for as long as it is open. Measured on an idle `kestrel serve --kafka`: the
// consumer thread alone took ~5% of a core. Here the method schedules only when a request waits
// (`push` calls it as soon as one does), and otherwise as kafkajs does: at the end of a
// client-side throttle, or after 10 ms. Applied once per thread, before any client is made, and
// only to the method as 2.2.4 has it: another version keeps its own.
import { createRequire } from 'node:module';

/** Check again this soon when requests wait and no throttle says when (kafkajs's value). */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

let mended: boolean | undefined;

/** The method as it runs after the mend; exported for its test. */
export function scheduleCheckPendingRequests(this: RequestQueueLike): void {
  if (this.pending.length === 0 || this.throttleCheckTimeoutId) return;
  const throttled = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, throttled > 0 ? throttled : CHECK_PENDING_REQUESTS_INTERVAL);
}

/** Mends kafkajs's RequestQueue in this thread; true when it did (now or before). */
export function mendKafkaRequestQueue(): boolean {
  if (mended !== undefined) return mended;
  mended = false;
  try {
    const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueLike };
    const original = RequestQueue.prototype.scheduleCheckPendingRequests;
    // The 2.2.4 body: schedules even with nothing pending, at throttledUntil - now.
    const source = typeof original === 'function' ? original.toString() : '';
    if (source.includes('this.throttledUntil - Date.now()') && source.includes('if (this.pending.length > 0)')) {
      RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
      mended = true;
    }
  } catch {
    // Another layout of the package: leave it as it is.
  }
  return mended;
}
