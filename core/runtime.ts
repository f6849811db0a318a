// The core's dependencies, built from config: the SQLite catalog, the event bus (the embedded
// log under the data dir, or Kafka with its spool under the data dir) and the projector that
// feeds the catalog from the bus. `kestrel serve` and `kestrel start` both run on this.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiKey } from './api/auth.ts';
import { parseApiKeys } from './api/auth.ts';
import { openIngestPool } from './api/ingest-pool.ts';
import type { CoreServices, ReadinessCheck } from './api/app.ts';
import { DEFAULT_CHECKPOINT_PAGES, DEFAULT_PROJECTOR_GROUP, createProjector, logPositions, openSqliteCatalog } from './catalog/index.ts';
import type { BusPositions, Projector, SqliteCatalog } from './catalog/index.ts';
import { openAppendWorker } from './catalog/sqlite/append-worker.ts';
import type { AppendWorker } from './catalog/sqlite/append-worker.ts';
import { storedEventIds } from './catalog/sqlite/interactions.ts';
import type { EventBus } from './events/bus.ts';
import { openKafkaBus } from './events/kafka.ts';
import type { KafkaBus } from './events/kafka.ts';
import { openLogBus } from './events/log/index.ts';
import { dataPaths } from './paths.ts';
import { checkEventTypeConfig } from './domain/event-types.ts';
import type { EventTypeConfig } from './domain/event-types.ts';
import type { DataPaths } from './paths.ts';
import { openServing } from './serving/index.ts';
import { METRICS_CONTENT_TYPE, MetricsRegistry } from './serving/metrics.ts';
import type { Serving, ServingConfig } from './serving/index.ts';
import { DEFAULT_EVENT_TYPES } from './domain/event-types.ts';

export interface RuntimeConfig {
  /** Default `KESTREL_DATA_DIR` or `.kestrel`. */
  dataDir?: string;
  /**
   * Use Kafka instead of the embedded log; the spool lives in `<dataDir>/spool`. `connectVia`
   * (KafkaBusOptions): every broker connection to that 'host:port', e.g. a proxy a test can cut.
   */
  kafka?: { brokers: string[]; topic?: string; connectVia?: string };
  /** Create users and items that events name before the catalog does. Default true. */
  createUnknown?: boolean;
  log?: (line: string) => void;
  /**
   * Run the projector's SQLite writes on the event loop instead of in a worker thread (for
   * tests and tools that serve no requests; an in-memory catalog needs it). Default false.
   */
  inlineProjector?: boolean;
  /** The interaction types the API accepts, with their training weights. Default DEFAULT_EVENT_TYPES. */
  eventTypes?: readonly EventTypeConfig[];
  /** Serve recommendations from this model registry (issue 5); without it, the data plane only. */
  serving?: ServingConfig;
  /**
   * Threads that prepare POST /v1/events batches (core/api/ingest-pool.ts); 0 leaves the work
   * on the event loop. Default with the embedded log: the cores the process may use, at most 4;
   * with Kafka, 0 (on 2 cores they measured slower there: kafkajs, its threads and the broker
   * fill the cores already).
   */
  ingestThreads?: number;
}

export interface CoreRuntime {
  paths: DataPaths;
  catalog: SqliteCatalog;
  bus: EventBus;
  projector: Projector;
  services: CoreServices;
  readiness: ReadinessCheck[];
  /** The recommendation side, when a model registry was configured. */
  serving?: Serving;
  /**
   * What `/metrics` serves: HTTP requests by route, events ingested, the projector's progress
   * (and how far behind the embedded log it is), Kafka's spool, and serving's own when it runs.
   */
  metrics: CoreMetrics;
  /** One line for the start-up banner: where the data is and which bus. */
  describe: string;
  /** Stops the projector, then closes the bus and the catalog. */
  close(): Promise<void>;
}

export interface CoreMetrics {
  contentType: string;
  render(): Promise<string>;
  observeRequest(route: string, status: number, seconds: number): void;
}

export async function openRuntime(config: RuntimeConfig = {}): Promise<CoreRuntime> {
  const log = config.log ?? console.error;
  const paths = dataPaths(config.dataDir);
  mkdirSync(paths.dir, { recursive: true });
  // With the projector on its worker thread, the worker's connection checkpoints the WAL after
  // its commits; this one, serving requests, waits for twice as much WAL, so that a checkpoint
  // (tens of ms) falls on it only when the worker writes nothing.
  const catalog = openSqliteCatalog(paths.catalog, config.inlineProjector === true ? {} : { checkpointPages: 2 * DEFAULT_CHECKPOINT_PAGES });
  let busError: unknown;
  const logBusError = (error: unknown) => log(`kestrel core: event bus: ${error instanceof Error ? error.message : String(error)}`);
  // While Kafka is away the spool's drainer fails every second, all with the same words: each
  // message is logged at most once a minute.
  const lastLogged = new Map<string, number>();
  const logTransient = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const now = Date.now();
    if (now - (lastLogged.get(message) ?? -Infinity) < TRANSIENT_LOG_MS) return;
    if (lastLogged.size > 100) lastLogged.clear();
    lastLogged.set(message, now);
    log(`kestrel core: event bus: ${message} (the same message again is logged at most once a minute)`);
  };
  const onError = (error: unknown) => {
    busError = error;
    logBusError(error);
  };
  let bus: EventBus;
  let kafka: KafkaBus | undefined;
  // Only the embedded log answers its positions (for `projector.drained()`); Kafka's come
  // through its admin client, which the projector does not need to serve.
  let positions: BusPositions | undefined;
  try {
    if (config.kafka === undefined) {
      const logBus = await openLogBus(paths.eventLog, { onError });
      positions = logPositions(logBus);
      bus = logBus;
    } else {
      const { brokers, topic, connectVia } = config.kafka;
      kafka = await openKafkaBus({
        brokers, topic, spoolDir: join(paths.dir, 'spool'), onError, ...(connectVia === undefined ? {} : { connectVia }),
        // Kafka away: the spool holds the events and the 'event-bus' check says so until it drains.
        // Not the projector's failure, which would keep /readyz at 503 after Kafka returned.
        onTransientError: logTransient,
      });
      bus = kafka;
    }
  } catch (error) {
    catalog.close();
    throw error;
  }
  // /metrics: the data plane's series here, serving's (below) on the same registry.
  const registry = new MetricsRegistry();
  const requests = registry.counter('kestrel_http_requests_total', 'HTTP requests to /v1 by route and status', ['route', 'status']);
  const requestSeconds = registry.histogram('kestrel_http_request_duration_seconds', 'Time to answer /v1 requests, by route', ['route']);
  const ingested = registry.counter('kestrel_events_ingested_total',
    'Events in POST /v1/events answers, by outcome: accepted (durable in the bus), duplicate (stored or sent before), rejected (invalid)', ['outcome']);
  const projected = registry.counter('kestrel_projector_events_total',
    'Events the projector took from the bus into the catalog, by result: inserted, duplicate (stored already), erased (of a user erased after them), unknown (user or item unknown and not created)', ['result']);
  const projectedBatches = registry.counter('kestrel_projector_batches_total', 'Batches the projector stored and committed');
  const lag = positions === undefined ? undefined
    : registry.gauge('kestrel_projector_lag_bytes', 'Bytes of the embedded log the projector has not stored in the catalog yet (it falls behind under bursts and catches up)');
  const spooled = kafka === undefined ? undefined
    : registry.gauge('kestrel_event_spool_bytes', 'Bytes of accepted events waiting in the local spool while Kafka is unreachable');

  // The projector's transactions take ~12 ms per 1,000 events; in a worker thread they no
  // longer hold up the requests this thread serves.
  const writer: AppendWorker | undefined = config.inlineProjector === true ? undefined : openAppendWorker(paths.catalog);
  const projector = createProjector({
    bus, store: writer ?? catalog.interactions, createUnknown: config.createUnknown ?? true, positions,
    onBatch: (report) => {
      projectedBatches.inc();
      projected.inc({ result: 'inserted' }, report.inserted);
      projected.inc({ result: 'duplicate' }, report.duplicates);
      projected.inc({ result: 'erased' }, report.erased);
      projected.inc({ result: 'unknown' }, report.unknown);
    },
  });
  let closed = false;
  try {
    await projector.start();
  } catch (error) {
    await bus.close().catch(() => undefined);
    await writer?.close().catch(() => undefined);
    catalog.close();
    throw error;
  }

  const knownIds = storedEventIds(catalog.db);
  const ingestThreads = config.ingestThreads ?? (config.kafka === undefined ? undefined : 0);
  const ingest = ingestThreads !== 0
    ? openIngestPool({
      ...(ingestThreads === undefined ? {} : { threads: ingestThreads }), ...(config.eventTypes ? { eventTypes: config.eventTypes } : {}),
      catalog: paths.catalog,
      onError: (error) => log(`kestrel core: ${error.message}`),
    })
    : undefined;
  const services: CoreServices = {
    items: catalog.items,
    users: catalog.users,
    interactions: catalog.interactions,
    bus,
    storedEventIds: async (ids) => knownIds(ids),
    ...(config.eventTypes ? { eventTypes: config.eventTypes } : {}),
    ...(ingest ? { ingest } : {}),
    onEvents: ({ accepted, duplicate, rejected }) => {
      ingested.inc({ outcome: 'accepted' }, accepted);
      ingested.inc({ outcome: 'duplicate' }, duplicate);
      ingested.inc({ outcome: 'rejected' }, rejected);
    },
  };

  const readiness: ReadinessCheck[] = [
    { name: 'catalog', check: async () => { if (closed) throw new Error('the catalog is closed'); catalog.db.prepare('SELECT 1').get(); } },
    {
      name: 'event-bus',
      check: async () => {
        if (closed) throw new Error('the event bus is closed');
        if (kafka?.spooling === true) throw new Error(`Kafka unreachable; ${kafka.spooledBytes()} bytes of accepted events wait in the local spool`);
        const connecting = kafka?.connecting() ?? [];
        if (connecting.length > 0) throw new Error(`Kafka unreachable; the consumer of ${connecting.map((g) => `'${g}'`).join(', ')} keeps trying to connect`);
      },
    },
    {
      name: 'projector',
      check: async () => {
        if (closed) throw new Error('the projector is stopped');
        if (busError !== undefined) throw new Error(`the projector failed: ${busError instanceof Error ? busError.message : String(busError)}`);
      },
    },
  ];

  let serving: Serving | undefined;
  if (config.serving !== undefined) {
    try {
      serving = await openServing(config.serving, {
        dataDir: paths.dir, interactions: catalog.interactions, eventTypes: config.eventTypes ?? DEFAULT_EVENT_TYPES, log, registry,
      });
    } catch (error) {
      closed = true;
      await ingest?.close().catch(() => undefined);
      await projector.stop().catch(() => undefined);
      await bus.close().catch(() => undefined);
      await writer?.close().catch(() => undefined);
      catalog.close();
      throw error;
    }
    services.serving = serving.services;
    services.erasureHooks = serving.erasureHooks;
    const host = serving.host;
    readiness.push({
      name: 'model',
      check: async () => {
        const status = host.status();
        if (status.version === undefined) {
          throw new Error(status.loading !== undefined ? `model ${status.loading} is loading` : status.error ?? `no current model in ${config.serving?.models ?? ''}: train one with \`kestrel train --out\``);
        }
      },
    });
    const pool = serving.services.pool;
    if (pool !== undefined) {
      readiness.push({
        name: 'engine-threads',
        check: async () => {
          // Requests are served meanwhile, by the main thread's engine.
          if (pool.ready < pool.size) throw new Error(`${pool.ready} of ${pool.size} engine threads have a model loaded`);
        },
      });
    }
  }

  const metrics: CoreMetrics = {
    contentType: METRICS_CONTENT_TYPE,
    observeRequest(route, status, seconds) {
      requests.inc({ route, status: String(status) });
      requestSeconds.observe({ route }, seconds);
    },
    async render() {
      serving?.refreshMetrics();
      if (lag !== undefined && positions !== undefined && !closed) {
        const [head, done] = await Promise.all([positions.head(), positions.committed(DEFAULT_PROJECTOR_GROUP)]);
        let behind = 0;
        for (const [partition, end] of head) behind += Math.max(0, end - (done.get(partition) ?? 0));
        lag.set({}, behind);
      }
      spooled?.set({}, kafka?.spooledBytes() ?? 0);
      return registry.render();
    },
  };

  return {
    paths,
    catalog,
    bus,
    projector,
    services,
    readiness,
    metrics,
    ...(serving ? { serving } : {}),
    describe: `data ${paths.dir}, events ${config.kafka === undefined ? `embedded log ${paths.eventLog}` : `Kafka ${config.kafka.brokers.join(',')} topic ${config.kafka.topic ?? 'events'} (spool ${join(paths.dir, 'spool')})`}`,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await serving?.close();
        await ingest?.close();
        await projector.stop();
        await bus.close();
        await writer?.close();
      } finally {
        catalog.close();
      }
    },
  };
}

/**
 * API keys from `--api-keys FILE`, else from the env `KESTREL_API_KEYS` (the same JSON), else
 * none. Both hold `{ "keys": [{ "key": "...", "scopes": ["read", "write"], "name": "..." }] }`.
 */
export function loadApiKeys(file: string | undefined, env = process.env.KESTREL_API_KEYS): ApiKey[] {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the API keys file ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
    return parseApiKeys(parseJson(text, file), file);
  }
  if (env !== undefined && env.trim() !== '') return parseApiKeys(parseJson(env, 'KESTREL_API_KEYS'), 'KESTREL_API_KEYS');
  return [];
}

/**
 * Event types from `--event-types FILE`, else from the env `KESTREL_EVENT_TYPES` (the same JSON),
 * else undefined (the built-in set). Both hold `{ "eventTypes": [{ "name": "view", "weight": 1 }] }`
 * or the bare array; the list replaces the built-in one, so name every type the API should accept.
 */
export function loadEventTypes(file: string | undefined, env = process.env.KESTREL_EVENT_TYPES): EventTypeConfig[] | undefined {
  let source: string;
  let text: string;
  if (file !== undefined) {
    source = file;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the event types file ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else if (env !== undefined && env.trim() !== '') {
    source = 'KESTREL_EVENT_TYPES';
    text = env;
  } else {
    return undefined;
  }
  return parseEventTypes(parseJson(text, source), source);
}

export function parseEventTypes(json: unknown, source: string): EventTypeConfig[] {
  const list = Array.isArray(json) ? json : typeof json === 'object' && json !== null && 'eventTypes' in json ? json.eventTypes : undefined;
  if (!Array.isArray(list)) throw new Error(`${source}: expected { "eventTypes": [{ "name": "view", "weight": 1 }, ...] }`);
  const types = list.map((entry: unknown, i): EventTypeConfig => {
    if (typeof entry !== 'object' || entry === null) throw new Error(`${source}: eventTypes[${i}] must be an object { "name", "weight" }`);
    const { name, weight } = entry as { name?: unknown; weight?: unknown };
    if (typeof name !== 'string') throw new Error(`${source}: eventTypes[${i}].name must be a string`);
    if (typeof weight !== 'number') throw new Error(`${source}: eventTypes[${i}].weight must be a number (negative for negative feedback, 0 for exposure)`);
    return { name, weight };
  });
  try {
    checkEventTypeConfig(types);
  } catch (error) {
    throw new Error(`${source}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return types;
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${source} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The same transient event-bus message (Kafka away) is logged at most this often. */
const TRANSIENT_LOG_MS = 60_000;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Refuses to serve the API open beyond this machine: with no keys the server must listen on
 * loopback. On loopback without keys it runs open and says so loudly.
 */
export function checkOpenApi(keys: readonly ApiKey[], host: string, log: (line: string) => void): void {
  if (keys.length > 0) return;
  if (!LOOPBACK.has(host)) {
    throw new Error(`no API keys configured and --host ${host} is not loopback: anyone who can reach it could write and erase data. Pass --api-keys FILE or set KESTREL_API_KEYS (see README, "REST API")`);
  }
  log([
    '!!! WARNING: no API keys configured; the /v1 API is OPEN to anyone who can reach',
    `!!! ${host}. Fine for local development; for anything else pass --api-keys FILE or set KESTREL_API_KEYS.`,
  ].join('\n'));
}
