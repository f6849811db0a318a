// Event ingestion into each EventBus adapter: batches of 1,000 events published and awaited
// until durable (fdatasync for the embedded log, acks=all for Kafka), one publisher at a time
// and four at once (what concurrent POST /v1/events requests look like; the group commit shares
// flushes between them). The `http-*` rows send the same batches as `POST /v1/events` bodies
// to the real core server (`startCore` on a runtime in a temp dir, the projector consuming as it
// would in production) and time each request until its 2xx, which means durable in the bus.
// The `-at-` rows send them instead at the rate the issue sets as the goal (50,000 events/s into
// the log, 20,000 into Kafka), on a fixed schedule whatever the answers' pace, and time each from
// when it was due: the latency at that rate, and how far behind the projector falls there.
// The ml-100k `kestrel import` timing comes with the import command.
//
// Kafka rows need a broker at KAFKA_BROKERS (default 127.0.0.1:9092): `bash scripts/kafka.sh
// start` before, `stop` after. Without one, the Kafka rows are left out and a note says so.
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { Event } from '../../core/domain/event.ts';
import type { EventBus } from '../../core/events/bus.ts';
import { openKafkaBus } from '../../core/events/kafka.ts';
import { openLogBus } from '../../core/events/log/index.ts';
import { cpuSeconds, startCoreProcess, threadCpuMsPer, threadCpuSeconds } from '../core-process.ts';
import type { CoreProcess } from '../core-process.ts';
import { quantile } from '../harness.ts';
import { fixedRate, send } from '../http-load.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const BATCH = 1_000;
const BATCHES = 200;
const WARMUP_BATCHES = 10;
const USERS = 10_000;
/** The goals, events/s accepted by POST /v1/events with p99 batch latency under 50 ms. */
const GOAL_LOG = 50_000;
const GOAL_KAFKA = 20_000;
/** How long the `-at-` rows send at the goal's rate. */
const RATE_SECONDS = 20;
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter((b) => b !== '');

function makeBatches(count: number, salt: string): Event[][] {
  return Array.from({ length: count }, (_, b) => Array.from({ length: BATCH }, (_, i) => {
    const n = b * BATCH + i;
    return {
      id: `${salt}-${n}`, type: n % 10 === 0 ? 'purchase' : 'view', userId: `user-${(n * 7919) % USERS}`,
      itemId: `item-${(n * 104729) % 50_000}`, timestamp: 1_764_000_000_000 + n, value: n % 10 === 0 ? 9.99 : undefined,
      requestId: `req-${b}`, position: i % 20, context: { device: i % 2 === 0 ? 'mobile' : 'web', locale: 'en-US' },
    };
  }));
}

/** Publishes every batch with `concurrency` publishers; per-batch latency and overall rate. */
function measure(bus: EventBus, name: string, concurrency: number, salt: string): Promise<BenchRow[]> {
  return measureWith((batch) => batch, (batch) => bus.publish(batch), name, concurrency, salt);
}

/** `prepare` turns each batch into what `send` sends (a request body) before the clock starts. */
async function measureWith<T>(
  prepare: (batch: Event[]) => T, publish: (batch: T) => Promise<void>, name: string, concurrency: number, salt: string,
  starting: () => void = () => undefined,
): Promise<BenchRow[]> {
  for (const batch of makeBatches(WARMUP_BATCHES, `${salt}-warm`)) await publish(prepare(batch));
  const batches = makeBatches(BATCHES, salt).map(prepare);
  const latencies: number[] = [];
  let next = 0;
  // After the batches are prepared, before the first is sent, outside every batch's time.
  starting();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < batches.length) {
      const batch = batches[next++] as T;
      const start = performance.now();
      await publish(batch);
      latencies.push(performance.now() - start);
    }
  }));
  const seconds = (performance.now() - t0) / 1_000;
  latencies.sort((a, b) => a - b);
  const row = `${name}-c${concurrency}`;
  return [
    { name: row, metric: 'events_per_s', value: (BATCHES * BATCH) / seconds, unit: 'events/s' },
    { name: row, metric: 'p50_batch_ms', value: quantile(latencies, 0.5), unit: 'ms' },
    { name: row, metric: 'p99_batch_ms', value: quantile(latencies, 0.99), unit: 'ms' },
  ];
}

/** `kestrel serve` on a fresh data folder: the embedded log, or Kafka with `topic`. */
function startIngestCore(dataDir: string, topic?: string): Promise<CoreProcess> {
  return startCoreProcess(
    ['--data', dataDir, ...(topic === undefined ? [] : ['--kafka', brokers.join(','), '--topic', topic])],
    async (url) => (await fetch(`${url}/readyz`)).ok,
  );
}

/** A batch as its POST /v1/events body, and how the answer of a fresh batch begins. */
function requestOf(batch: Event[]): { body: string; expect: string } {
  return { body: JSON.stringify({ events: batch }), expect: `{"accepted":${batch.length},"duplicate":0,"rejected":0,` };
}

/**
 * The server's CPU per batch: from `before` (taken as the first measured request went) to the last
 * answer, then until it idles, the projector having stored every event, and that split by thread;
 * also how long after the last answer the projector caught up.
 */
async function serverCpuRows(core: CoreProcess, row: string, batches: number, before: { cpu?: number; threads?: Record<string, number> }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const cpu1 = cpuSeconds(core.child.pid);
  // The projector stores the events after they were acknowledged, and under load falls behind:
  // its share of the CPU comes after the last answer. Wait until the server idles.
  const idle = await idleCpu(core.child.pid);
  if (before.cpu !== undefined && cpu1 !== undefined && idle !== undefined) {
    rows.push({ name: row, metric: 'server_cpu_ms_per_batch', value: ((cpu1 - before.cpu) * 1000) / batches, unit: 'ms' });
    rows.push({ name: row, metric: 'server_cpu_ms_per_batch_stored', value: ((idle.cpu - before.cpu) * 1000) / batches, unit: 'ms' });
    rows.push({ name: row, metric: 'stored_after_s', value: idle.afterMs / 1000, unit: 's' });
  }
  // The stored CPU split by thread: the event loop, the ingest threads, the projector's SQLite
  // writer, Kafka's threads, V8's and libuv's helpers.
  const threads2 = threadCpuSeconds(core.child.pid);
  if (before.threads !== undefined && threads2 !== undefined) {
    for (const [group, ms] of Object.entries(threadCpuMsPer(before.threads, threads2, batches))) {
      if (ms > 0) rows.push({ name: `${row}-thread:${group}`, metric: 'cpu_ms_per_batch_stored', value: ms, unit: 'ms' });
    }
  }
  return rows;
}

/**
 * POST /v1/events to a `kestrel serve` process on a fresh data folder (embedded log, or Kafka with
 * `topic`), with `concurrency` clients on keep-alive connections; also the server's CPU per batch.
 */
async function measureHttp(name: string, dataDir: string, concurrency: number, salt: string, topic?: string): Promise<BenchRow[]> {
  const core = await startIngestCore(dataDir, topic);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const endpoint = new URL('/v1/events', core.url);
  try {
    const before: { cpu?: number; threads?: Record<string, number> } = {};
    const rows = await measureWith(requestOf, async ({ body, expect }) => {
      const res = await send(agent, endpoint, 'POST', body);
      if (res.status !== 200 || !res.body.startsWith(expect)) throw new Error(`POST /v1/events answered ${res.status}: ${res.body.slice(0, 300)}`);
    }, name, concurrency, salt, () => {
      before.threads = threadCpuSeconds(core.child.pid);
      before.cpu = cpuSeconds(core.child.pid);
    });
    rows.push(...await serverCpuRows(core, `${name}-c${concurrency}`, BATCHES, before));
    return rows;
  } finally {
    agent.destroy();
    await core.stop();
  }
}

/**
 * POST /v1/events at `eventsPerSecond` for RATE_SECONDS, on the schedule of `fixedRate` (an open
 * loop: each batch timed from when it was due), to a fresh `kestrel serve` as in measureHttp.
 */
async function measureHttpAtRate(name: string, dataDir: string, eventsPerSecond: number, salt: string, topic?: string): Promise<BenchRow[]> {
  const core = await startIngestCore(dataDir, topic);
  const endpoint = new URL('/v1/events', core.url);
  try {
    const warm = new Agent({ keepAlive: true });
    try {
      for (const batch of makeBatches(WARMUP_BATCHES, `${salt}-warm`)) await send(warm, endpoint, 'POST', requestOf(batch).body);
    } finally {
      warm.destroy();
    }
    const count = Math.round((eventsPerSecond / BATCH) * RATE_SECONDS);
    const requests = makeBatches(count, salt).map(requestOf);
    const bodies = requests.map((r) => r.body);
    const before = { threads: threadCpuSeconds(core.child.pid), cpu: cpuSeconds(core.child.pid) };
    // Every batch is fresh and of the same size: one answer's beginning fits all.
    const expect = requests[0]?.expect ?? '';
    const result = await fixedRate(endpoint, bodies, eventsPerSecond / BATCH, (status, body) =>
      status === 200 && body.startsWith(expect) ? undefined : `answered ${status}: ${body.slice(0, 300)}`);
    const row = `${name}-at-${eventsPerSecond / 1000}k`;
    return [
      { name: row, metric: 'events_per_s', value: (count * BATCH) / result.seconds, unit: 'events/s' },
      { name: row, metric: 'p50_batch_ms', value: result.p50, unit: 'ms' },
      { name: row, metric: 'p99_batch_ms', value: result.p99, unit: 'ms' },
      { name: row, metric: 'max_batch_ms', value: result.max, unit: 'ms' },
      { name: row, metric: 'max_in_flight', value: result.maxInFlight, unit: 'requests' },
      ...await serverCpuRows(core, row, count, before),
    ];
  } finally {
    await core.stop();
  }
}

/**
 * The process's CPU seconds once it idles, and how long that took: under 50 ms of CPU in half a
 * second (a tenth of a core; an idle core on Kafka polls at ~7%), so the projector has stored what
 * it was behind on (at most 60 s). `afterMs` counts to the start of the first idle half second.
 */
async function idleCpu(pid: number | undefined): Promise<{ cpu: number; afterMs: number } | undefined> {
  let last = cpuSeconds(pid);
  let waited = 0;
  for (; last !== undefined && waited < 60_000; waited += 500) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = cpuSeconds(pid);
    if (now === undefined) return undefined;
    if (now - last < 0.05) return { cpu: now, afterMs: waited };
    last = now;
  }
  return last === undefined ? undefined : { cpu: last, afterMs: waited };
}

async function kafkaReachable(): Promise<boolean> {
  const admin = new Kafka({ clientId: 'kestrel-bench-probe', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 2_000, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export const suite: BenchSuite = {
  description: `publish batches of ${BATCH.toLocaleString('en')} events into each event bus adapter, awaiting durability`,
  async run(notes) {
    Object.assign(notes, {
      protocol: `${BATCHES} batches of ${BATCH} events after ${WARMUP_BATCHES} warm-up batches; cN = N publishers in flight`,
      rate: `http-*-at-<N>k rows: POST /v1/events at N,000 events/s (the issue's goal: ${GOAL_LOG.toLocaleString('en')} into the log, ${GOAL_KAFKA.toLocaleString('en')} into Kafka) for ${RATE_SECONDS} s after ${WARMUP_BATCHES} warm-up batches, an open loop: batch i sent at i/rate s whatever the earlier answers' pace, its latency from then to its 2xx; events_per_s = events / (first due to last answer); max_in_flight = batches awaiting their answers at once`,
      event: 'JSON Event with requestId, position and a 2-key context (~230 bytes)',
      http: 'http-* rows: POST /v1/events { events: [1,000] } to a kestrel serve process on 127.0.0.1 (fresh data folder; validation, duplicate check, publish, projector consuming alongside) from node:http clients in the bench process (bodies JSON-encoded before the clock starts, answers checked by their leading counts); latency is request to 2xx; server_cpu_ms_per_batch: CPU of the server process, every thread, per batch, from the first measured request to the last answer; server_cpu_ms_per_batch_stored: the same until the server idles after it, the projector having stored every event; stored_after_s: how long after the last answer the server idled, the projector having caught up; <row>-thread:<group> rows split that by thread (/proc/<pid>/task/*: main = the event loop, kestrel-* = the worker threads of that role, other = V8 and libuv helper threads and threads that ended)',
    });
    const rows: BenchRow[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'kestrel-bench-ingest-'));
    try {
      for (const concurrency of [1, 4]) {
        const bus = await openLogBus(join(dir, `log-c${concurrency}`));
        try {
          rows.push(...await measure(bus, 'embedded-log', concurrency, `log-c${concurrency}`));
        } finally {
          await bus.close();
        }
      }
      for (const concurrency of [1, 4]) {
        rows.push(...await measureHttp('http-embedded-log', join(dir, `http-log-c${concurrency}`), concurrency, `http-log-c${concurrency}`));
      }
      rows.push(...await measureHttpAtRate('http-embedded-log', join(dir, 'http-log-rate'), GOAL_LOG, 'http-log-rate'));
      notes['embedded-log'] = `segment log in ${tmpdir()} (fdatasync per group commit)`;

      if (await kafkaReachable()) {
        const topic = `kestrel-bench-ingest-${Date.now()}`;
        try {
          for (const concurrency of [1, 4]) {
            const bus = await openKafkaBus({ brokers, topic, partitions: 6, spoolDir: join(dir, `spool-c${concurrency}`), sendTimeoutMs: 30_000 });
            try {
              rows.push(...await measure(bus, 'kafka', concurrency, `kafka-c${concurrency}`));
              if (bus.spooledBytes() > 0) notes['kafka warning'] = 'some batches went to the spool';
            } finally {
              await bus.close();
            }
          }
          for (const concurrency of [1, 4]) {
            // A topic of its own: the projector's group would otherwise start by consuming the rows above.
            rows.push(...await measureHttp('http-kafka', join(dir, `http-kafka-c${concurrency}`), concurrency, `http-kafka-c${concurrency}`, `${topic}-http-c${concurrency}`));
          }
          rows.push(...await measureHttpAtRate('http-kafka', join(dir, 'http-kafka-rate'), GOAL_KAFKA, 'http-kafka-rate', `${topic}-http-rate`));
          notes.kafka = `Apache Kafka 4.4 (scripts/kafka.sh) at ${brokers.join(',')}, topic of 6 partitions, idempotent producer, acks=all`;
        } finally {
          const admin = new Kafka({ clientId: 'kestrel-bench-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
          await admin.connect();
          await admin.deleteTopics({ topics: [topic, `${topic}-http-c1`, `${topic}-http-c4`, `${topic}-http-rate`], timeout: 60_000 }).catch(() => undefined);
          await admin.disconnect();
        }
      } else {
        notes.kafka = `no broker at ${brokers.join(',')}: Kafka rows left out (bash scripts/kafka.sh start)`;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
