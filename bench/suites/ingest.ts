// Event ingestion into each EventBus adapter: batches of 1,000 events published and awaited
// until durable (fdatasync for the embedded log, acks=all for Kafka), one publisher at a time
// and four at once (what concurrent POST /v1/events requests look like; the group commit shares
// flushes between them). The `http-*` rows send the same batches as `POST /v1/events` bodies
// to the real core server (`startCore` on a runtime in a temp dir, the projector consuming as it
// would in production) and time each request until its 2xx, which means durable in the bus.
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
import { quantile } from '../harness.ts';
import { send } from '../http-load.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const BATCH = 1_000;
const BATCHES = 200;
const WARMUP_BATCHES = 10;
const USERS = 10_000;
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

/**
 * POST /v1/events to a `kestrel serve` process on a fresh data folder (embedded log, or Kafka with
 * `topic`), with `concurrency` clients on keep-alive connections; also the server's CPU per batch.
 */
async function measureHttp(name: string, dataDir: string, concurrency: number, salt: string, topic?: string): Promise<BenchRow[]> {
  const core = await startCoreProcess(
    ['--data', dataDir, ...(topic === undefined ? [] : ['--kafka', brokers.join(','), '--topic', topic])],
    async (url) => (await fetch(`${url}/readyz`)).ok,
  );
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const endpoint = new URL('/v1/events', core.url);
  try {
    let cpu0: number | undefined;
    let threads0: Record<string, number> | undefined;
    const rows = await measureWith((batch) => ({
      body: JSON.stringify({ events: batch }),
      expect: `{"accepted":${batch.length},"duplicate":0,"rejected":0,`,
    }), async ({ body, expect }) => {
      const res = await send(agent, endpoint, 'POST', body);
      if (res.status !== 200 || !res.body.startsWith(expect)) throw new Error(`POST /v1/events answered ${res.status}: ${res.body.slice(0, 300)}`);
    }, name, concurrency, salt, () => {
      threads0 = threadCpuSeconds(core.child.pid);
      cpu0 = cpuSeconds(core.child.pid);
    });
    const cpu1 = cpuSeconds(core.child.pid);
    // The projector stores the events after they were acknowledged, and under load falls behind:
    // its share of the CPU comes after the last answer. Wait until the server idles.
    const cpu2 = await idleCpu(core.child.pid);
    if (cpu0 !== undefined && cpu1 !== undefined && cpu2 !== undefined) {
      rows.push({ name: `${name}-c${concurrency}`, metric: 'server_cpu_ms_per_batch', value: ((cpu1 - cpu0) * 1000) / BATCHES, unit: 'ms' });
      rows.push({ name: `${name}-c${concurrency}`, metric: 'server_cpu_ms_per_batch_stored', value: ((cpu2 - cpu0) * 1000) / BATCHES, unit: 'ms' });
    }
    // The stored CPU split by thread: the event loop, the ingest threads, the projector's SQLite
    // writer, Kafka's threads, V8's and libuv's helpers.
    const threads2 = threadCpuSeconds(core.child.pid);
    if (threads0 !== undefined && threads2 !== undefined) {
      for (const [group, ms] of Object.entries(threadCpuMsPer(threads0, threads2, BATCHES))) {
        if (ms > 0) rows.push({ name: `${name}-c${concurrency}-thread:${group}`, metric: 'cpu_ms_per_batch_stored', value: ms, unit: 'ms' });
      }
    }
    return rows;
  } finally {
    agent.destroy();
    await core.stop();
  }
}

/**
 * The process's CPU seconds once it idles: under 50 ms of CPU in half a second (a tenth of a
 * core; an idle core on Kafka polls at ~7%), so the projector has stored what it was behind on
 * (at most 60 s).
 */
async function idleCpu(pid: number | undefined): Promise<number | undefined> {
  let last = cpuSeconds(pid);
  for (let waited = 0; last !== undefined && waited < 60_000; waited += 500) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = cpuSeconds(pid);
    if (now === undefined) return undefined;
    if (now - last < 0.05) return now;
    last = now;
  }
  return last;
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
      event: 'JSON Event with requestId, position and a 2-key context (~230 bytes)',
      http: 'http-* rows: POST /v1/events { events: [1,000] } to a kestrel serve process on 127.0.0.1 (fresh data folder; validation, duplicate check, publish, projector consuming alongside) from node:http clients in the bench process (bodies JSON-encoded before the clock starts, answers checked by their leading counts); latency is request to 2xx; server_cpu_ms_per_batch: CPU of the server process, every thread, per batch, from the first measured request to the last answer; server_cpu_ms_per_batch_stored: the same until the server idles after it, the projector having stored every event; <row>-thread:<group> rows split that by thread (/proc/<pid>/task/*: main = the event loop, kestrel-* = the worker threads of that role, other = V8 and libuv helper threads and threads that ended)',
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
          notes.kafka = `Apache Kafka 4.4 (scripts/kafka.sh) at ${brokers.join(',')}, topic of 6 partitions, idempotent producer, acks=all`;
        } finally {
          const admin = new Kafka({ clientId: 'kestrel-bench-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
          await admin.connect();
          await admin.deleteTopics({ topics: [topic, `${topic}-http-c1`, `${topic}-http-c4`], timeout: 60_000 }).catch(() => undefined);
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
