// The catalog projector: a consumer group on the EventBus that writes each delivered batch into
// the InteractionStore in one transaction and only then commits the bus offsets. Delivery is
// at-least-once (a crash between the two replays the batch); the store's insert is idempotent
// on event id, so the effect is exactly once. The API path only publishes; this fills SQLite,
// and replaying the log from the start (a new group) rebuilds it.
import { encodedDelivery } from '../events/bus.ts';
import type { Delivery, EncodedEvent, EventBus, Subscription } from '../events/bus.ts';
import type { SegmentLog } from '../events/log/segment-log.ts';
import type { AppendOptions, AppendReport, InteractionStore } from './ports.ts';

export const DEFAULT_PROJECTOR_GROUP = 'catalog-projector';

/**
 * Where a bus stands, per partition, for `drained()`: `head` is one past the last durable event,
 * `committed` where a group resumes. The EventBus port leaves these out (Kafka answers them
 * through its admin client), so the projector is handed them.
 */
export interface BusPositions {
  head(): Promise<ReadonlyMap<number, number>>;
  committed(group: string): Promise<ReadonlyMap<number, number>>;
}

export interface ProjectorOptions {
  bus: EventBus;
  /**
   * The catalog's store, or `openAppendWorker(path)` to store off the event loop; a store with
   * `appendEncoded` is handed the bus's records as bytes, undecoded.
   */
  store: Pick<InteractionStore, 'append'> & { appendEncoded?: (records: readonly EncodedEvent[], options: AppendOptions) => Promise<AppendReport> };
  group?: string;
  /** Create users and items that events name before the catalog does (items as stubs). Default true. */
  createUnknown?: boolean;
  /** Needed by `drained()`. For the embedded log bus: `logPositions(bus)`. */
  positions?: BusPositions;
  /** Called after each batch is stored and committed. */
  onBatch?: (report: AppendReport, deliveries: readonly Delivery[]) => void;
}

export interface ProjectorTotals extends AppendReport {
  batches: number;
}

export interface Projector {
  start(): Promise<void>;
  /** Stops consuming; what was delivered but not yet committed is delivered again next start. */
  stop(): Promise<void>;
  /**
   * Resolves once everything published before the call is stored and committed; rejects if the
   * projector failed. For tests and for /readyz.
   */
  drained(): Promise<void>;
  readonly totals: ProjectorTotals;
}

/** Positions of the embedded log bus (one partition, 0). */
export function logPositions(bus: { log: SegmentLog }): BusPositions {
  return {
    head: async () => new Map([[0, bus.log.end]]),
    committed: async (group) => new Map([[0, (await bus.log.committed(group)) ?? bus.log.start]]),
  };
}

/** The encoded records behind every delivery, or undefined if any was built another way. */
function encodedAll(deliveries: readonly Delivery[]): EncodedEvent[] | undefined {
  const out: EncodedEvent[] = [];
  for (const d of deliveries) {
    const e = encodedDelivery(d);
    if (e === undefined) return undefined;
    out.push(e);
  }
  return out;
}

interface Waiter {
  head: ReadonlyMap<number, number>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export function createProjector(options: ProjectorOptions): Projector {
  const { bus, store, positions } = options;
  const group = options.group ?? DEFAULT_PROJECTOR_GROUP;
  const createUnknown = options.createUnknown ?? true;
  const totals: ProjectorTotals = { batches: 0, inserted: 0, duplicates: 0, erased: 0, unknown: 0, erasures: 0, createdUsers: 0, createdItems: 0 };
  /** Committed resume position per partition, as far as this process has seen. */
  const committed = new Map<number, number>();
  let waiters: Waiter[] = [];
  let failure: unknown;
  let subscription: Subscription | undefined;

  const reached = (target: ReadonlyMap<number, number>): boolean =>
    [...target].every(([partition, position]) => (committed.get(partition) ?? 0) >= position);

  function settle(): void {
    waiters = waiters.filter((w) => {
      if (failure !== undefined) w.reject(failure);
      else if (reached(w.head)) w.resolve();
      else return true;
      return false;
    });
  }

  async function start(): Promise<void> {
    if (subscription !== undefined) return;
    failure = undefined;
    if (positions !== undefined) {
      for (const [partition, position] of await positions.committed(group)) {
        if ((committed.get(partition) ?? -1) < position) committed.set(partition, position);
      }
    }
    // The log bus may deliver before `subscribe` returns; hold the first commit until it does.
    let ready: (s: Subscription) => void = () => {};
    const subscribed = new Promise<Subscription>((resolve) => { ready = resolve; });
    subscription = await bus.subscribe({
      group,
      onBatch: async (deliveries) => {
        try {
          const encoded = store.appendEncoded === undefined ? undefined : encodedAll(deliveries);
          const report = encoded === undefined || store.appendEncoded === undefined
            ? await store.append(deliveries.map((d) => d.event), { createUnknown })
            : await store.appendEncoded(encoded, { createUnknown });
          await (await subscribed).commit(deliveries);
          totals.batches++;
          for (const k of ['inserted', 'duplicates', 'erased', 'unknown', 'erasures', 'createdUsers', 'createdItems'] as const) totals[k] += report[k];
          for (const d of deliveries) {
            if ((committed.get(d.partition) ?? -1) < d.next) committed.set(d.partition, d.next);
          }
          options.onBatch?.(report, deliveries);
        } catch (error) {
          failure = error;
          throw error;
        } finally {
          settle();
        }
      },
    });
    ready(subscription);
  }

  return {
    start,
    async stop() {
      const s = subscription;
      subscription = undefined;
      if (s !== undefined) await s.close();
      for (const w of waiters) w.reject(new Error(`projector '${group}' stopped before it caught up`));
      waiters = [];
    },
    async drained() {
      if (positions === undefined) throw new Error(`projector '${group}': drained() needs the 'positions' option (for the embedded log bus: positions: logPositions(bus))`);
      if (failure !== undefined) throw failure;
      const target = await positions.head();
      if (reached(target)) return;
      await new Promise<void>((resolve, reject) => {
        waiters.push({ head: target, resolve, reject });
      });
    },
    totals,
  };
}
