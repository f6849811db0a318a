// End-to-end serving: GET /v1/recommendations/{user}?n=20 against a real `kestrel serve` process
// on an ml-100k model, with about 1,000 candidates ranked per request, at concurrency 1, 8 and 32
// (closed loop: each client sends its next request when the last one answered, keep-alive).
// Rows per setup: the embedded HNSW with the ONNX ranker (on the main thread, and on two engine threads,
// --engine-threads 2) and with the WASM ranker, and Milvus (main thread, two engine threads) when one answers at $MILVUS_ADDRESS (default
// 127.0.0.1:19530; `bash scripts/milvus.sh start`). The stage breakdown comes from /metrics.
//
// ml-100k is read from ../shared/datasets/ml-100k (or $KESTREL_ML100K), imported into a core data
// folder under the OS temp dir and trained from there once (`kestrel train --from-bus`); later runs
// reuse that model. The load generator shares the machine's two cores with the server: wrk when
// installed, else node:http in this process (KESTREL_BENCH_LOADGEN picks; see loadGenerator).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkMilvusReachable } from '../../core/retrieval/milvus-index.ts';
import { main } from '../../cli/main.ts';
import { clearServedLog, startCoreProcess, startServerProcess, threadCpuMsPer, threadCpuSeconds } from '../core-process.ts';
import type { CoreProcess } from '../core-process.ts';
import { quantile } from '../harness.ts';
import { send, wrkAvailable, wrkLoad } from '../http-load.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FLOOR = fileURLToPath(new URL('../floor-server.ts', import.meta.url));
const DATASET = resolve(process.env.KESTREL_ML100K ?? join(ROOT, '../shared/datasets/ml-100k'));
const DATA = join(tmpdir(), 'kestrel-bench-serve-ml100k');
const MILVUS = process.env.MILVUS_ADDRESS ?? '127.0.0.1:19530';
const SECONDS_PER_LEVEL = Number(process.env.KESTREL_BENCH_SECONDS ?? 15);
const LEVELS = [1, 8, 32];
/** Quotas that fuse to about 1,000 distinct candidates per ml-100k user (1,682 items less what they rated). */
const CONFIG = { quotas: { 'two-tower': 1000, 'item-item': 300, 'co-visitation': 150, content: 100, trending: 100, fresh: 50 }, maxCandidates: 1000 };

async function ensureModel(): Promise<void> {
  if (existsSync(join(DATA, 'models', 'current.json'))) return;
  if (!existsSync(DATASET)) throw new Error(`no ml-100k at ${DATASET}: set KESTREL_ML100K to the folder holding u.data`);
  if ((await main(['import', '--data', DATA, DATASET])) !== 0) throw new Error('kestrel import failed');
  if ((await main(['train', '--from-bus', '--data', DATA, '--out', join(DATA, 'models')])) !== 0) throw new Error('kestrel train failed');
}

/**
 * The Milvus setups wait up to 1 s for the search: with the default 50 ms deadline, searches
 * that run late under load are answered from the exact scores instead (and after three in a row
 * Milvus is skipped for a while), so those rows would no longer measure Milvus.
 */
const MILVUS_CONFIG = { ...CONFIG, sourceTimeoutMs: 1000 };

function startServer(extra: string[], serving: object = CONFIG): Promise<CoreProcess> {
  const config = join(DATA, 'bench-serving.json');
  writeFileSync(config, JSON.stringify(serving));
  return startCoreProcess(['--data', DATA, '--serving-config', config, ...extra], async (url) => (await fetch(`${url}/readyz`)).status === 200);
}

export interface Level {
  requests: number;
  p50: number;
  p99: number;
  errors: number;
  seconds: number;
  /** Candidates ranked per request (all sources' counts), from the responses checked. */
  candidates: number[];
}

/** ml-100k's users 1..943, spread round robin. */
const ML100K_USER = (n: number) => String(1 + ((n * 7919) % 943));

/**
 * The load generator: wrk when it is installed (`apt-get install wrk`), else node:http in this
 * process; KESTREL_BENCH_LOADGEN=node or =wrk picks one. On two shared cores wrk leaves the server
 * ~0.35–0.45 ms more CPU per request (measured: wrk ~0.07 ms a request, node:http 0.41–0.51).
 */
export function loadGenerator(): 'wrk' | 'node' {
  const chosen = process.env.KESTREL_BENCH_LOADGEN;
  if (chosen === 'node' || chosen === 'wrk') return chosen;
  if (chosen !== undefined && chosen !== '') throw new Error(`KESTREL_BENCH_LOADGEN must be wrk or node, got '${chosen}'`);
  return wrkAvailable() ? 'wrk' : 'node';
}

/**
 * GET /v1/recommendations/{userOf(i)}?n=20 in a closed loop at `concurrency` for `seconds`. Request
 * i goes to user `userOf(i)`; the users repeat after `cycle` requests (wrk is handed that many paths).
 * With wrk, 20 requests sent afterwards one at a time check the answers (20 items) and count the
 * candidates; with node:http every answer is checked.
 */
export async function load(url: string, concurrency: number, seconds: number, userOf: (n: number) => string = ML100K_USER, cycle = 943): Promise<Level> {
  const path = (n: number) => `/v1/recommendations/${encodeURIComponent(userOf(n))}?n=20`;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const candidates: number[] = [];
  let errors = 0;
  const check = async (n: number): Promise<number> => {
    const start = performance.now();
    try {
      const res = await send(agent, new URL(path(n), url));
      const body = JSON.parse(res.body) as { items?: unknown[]; sources?: Record<string, { candidates: number }> };
      if (res.status !== 200 || body.items?.length !== 20) errors++;
      else candidates.push(Object.values(body.sources ?? {}).reduce((s, r) => s + r.candidates, 0));
    } catch {
      errors++;
    }
    return performance.now() - start;
  };
  try {
    if (loadGenerator() === 'wrk') {
      const r = await wrkLoad(url, Array.from({ length: cycle }, (_, i) => path(i)), concurrency, seconds);
      for (let i = 0; i < 20; i++) await check(i);
      return { requests: r.requests, p50: r.p50, p99: r.p99, errors: r.errors + errors, seconds: r.seconds, candidates };
    }
    const latencies: number[] = [];
    let n = 0;
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) latencies.push(await check(n++));
    }));
    latencies.sort((a, b) => a - b);
    return { requests: latencies.length, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), errors, seconds: (performance.now() - t0) / 1000, candidates };
  } finally {
    agent.destroy();
  }
}

/** Failed, timed-out or skipped retrievals per source so far, from /metrics (sources with none left out). */
export async function retrievalErrors(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^kestrel_retrieval_errors_total\{source="([^"]+)"\} (\S+)$/gm)) {
    const n = Number(m[2]);
    if (n > 0) out.set(m[1] ?? '', n);
  }
  return out;
}

/** Mean seconds per stage from the Prometheus histogram sums and counts. */
export async function stageMeans(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sums = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^kestrel_stage_duration_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)$/gm)) {
    (m[1] === 'sum' ? sums : counts).set(m[2] ?? '', Number(m[3]));
  }
  const out = new Map<string, number>();
  for (const [stage, sum] of sums) out.set(stage, sum / Math.max(1, counts.get(stage) ?? 1));
  return out;
}

/** The reference server (bench/floor-server.ts), doing `workMs` of CPU a request and answering `bytes`. */
function startFloor(workMs: number, bytes: number): Promise<CoreProcess> {
  const argv = ['--import', 'tsx', FLOOR, '--work-ms', workMs.toFixed(3), '--bytes', String(bytes), '--threads', '2'];
  return startServerProcess('the floor server', argv, async (url) => (await fetch(url)).ok, 60_000);
}

async function milvusUp(): Promise<boolean> {
  try {
    await checkMilvusReachable(MILVUS, 3000);
    return true;
  } catch {
    return false;
  }
}

export const suite: BenchSuite = {
  description: 'GET /v1/recommendations end to end on an ml-100k model (≈1,000 candidates ranked), embedded HNSW and Milvus',
  async run(notes) {
    await ensureModel();
    clearServedLog(DATA);
    const rows: BenchRow[] = [];
    /**
     * The setups, in this order. `floor` is the reference server (bench/floor-server.ts) of the
     * same shape as the two-engine-thread row and doing, per request, the CPU that row's engine
     * threads measured at c8, in fixed work: the p99 this machine allows a server of that cost.
     */
    const setups: { name: string; args: string[]; serving?: object; floor?: true }[] = [
      { name: 'embedded', args: [] },
      { name: 'embedded-2-threads', args: ['--engine-threads', '2'] },
      { name: 'floor', args: [], floor: true },
      { name: 'embedded-wasm-ranker', args: ['--ranker', 'wasm'] },
    ];
    if (await milvusUp()) {
      setups.push(
        { name: 'milvus', args: ['--milvus', MILVUS], serving: MILVUS_CONFIG },
        { name: 'milvus-2-threads', args: ['--milvus', MILVUS, '--engine-threads', '2'], serving: MILVUS_CONFIG },
      );
    } else {
      notes.milvus = `no Milvus answering at ${MILVUS}: its rows are left out (bash scripts/milvus.sh start)`;
    }
    /** The two-engine-thread row's engine CPU per request at c8, and the size of its answers. */
    let engineMs: number | undefined;
    let answerBytes = 2600;
    for (const setup of setups) {
      if (setup.floor === true && engineMs === undefined) continue;
      const core = setup.floor === true
        ? await startFloor(engineMs ?? 0, answerBytes)
        : await startServer(setup.args, setup.serving);
      const { url } = core;
      try {
        // Warm-up, long enough for every engine thread's JIT as well.
        await load(url, 4, 6);
        if (setup.name === 'embedded-2-threads') answerBytes = Buffer.byteLength(await (await fetch(`${url}/v1/recommendations/1?n=20`)).text());
        for (const c of LEVELS) {
          const cpuBefore = threadCpuSeconds(core.child.pid);
          const r = await load(url, c, SECONDS_PER_LEVEL);
          const cpuAfter = threadCpuSeconds(core.child.pid);
          const name = `${setup.name}-c${c}`;
          if (cpuBefore !== undefined && cpuAfter !== undefined && r.requests > 0) {
            const split = threadCpuMsPer(cpuBefore, cpuAfter, r.requests);
            rows.push({ name, metric: 'server_cpu_ms_per_request', value: Object.values(split).reduce((sum, ms) => sum + ms, 0), unit: 'ms' });
            // Where it went: the event loop, the engine threads, V8's and libuv's helpers, ...
            for (const [group, ms] of Object.entries(split)) if (ms > 0) rows.push({ name: `${name}-thread:${group}`, metric: 'cpu_ms_per_request', value: ms, unit: 'ms' });
            if (setup.name === 'embedded-2-threads' && c === 8) engineMs = split['kestrel-engine'];
          }
          rows.push(
            { name, metric: 'p50_ms', value: r.p50, unit: 'ms' },
            { name, metric: 'p99_ms', value: r.p99, unit: 'ms' },
            { name, metric: 'requests_per_s', value: r.requests / r.seconds, unit: 'req/s' },
            { name, metric: 'errors', value: r.errors, unit: 'requests' },
          );
          if (c === LEVELS[0] && setup.floor !== true) notes[`${setup.name}_candidates_per_request`] = Math.round(r.candidates.reduce((s, v) => s + v, 0) / Math.max(1, r.candidates.length));
        }
        if (setup.floor === true) {
          notes.floor = `bench/floor-server.ts: node:http and two worker threads, the less busy one taking each request and doing fixed work calibrated to ${(engineMs ?? 0).toFixed(2)} ms of CPU (the embedded-2-threads row's engine threads at c8), answering ${answerBytes} bytes; its rows give the p99 this machine allows a server of that cost and shape, in the same run`;
          continue;
        }
        for (const [stage, mean] of await stageMeans(url)) rows.push({ name: `${setup.name}-stage:${stage}`, metric: 'mean_ms', value: mean * 1000, unit: 'ms' });
        // A two-tower search that failed or ran late was answered from the exact scores instead.
        for (const [source, n] of await retrievalErrors(url)) rows.push({ name: `${setup.name}-source:${source}`, metric: 'retrieval_errors', value: n, unit: 'requests' });
      } finally {
        await core.stop();
      }
    }
    notes.dataset = `ml-100k (${DATASET}), model trained with kestrel train --from-bus, data in ${DATA}`;
    notes.request = `GET /v1/recommendations/{user}?n=20, users 1..943 round robin, keep-alive, closed loop, load from ${loadGenerator() === 'wrk' ? 'wrk -t1 (one thread)' : 'node:http in the bench process'}`;
    notes.seconds_per_level = SECONDS_PER_LEVEL;
    notes.serving_config = JSON.stringify(CONFIG);
    notes.milvus_serving_config = JSON.stringify(MILVUS_CONFIG);
    notes.load_generator = 'same machine as the server (2 cores shared)';
    notes.server_cpu = 'server_cpu_ms_per_request: CPU time of the kestrel serve process (every thread, /proc/<pid>/stat) over the level, divided by its requests; <level>-thread:<group> rows split it by thread (/proc/<pid>/task/*: main = the event loop, kestrel-* = the worker threads of that role, other = V8 and libuv helper threads and threads that ended)';
    return rows;
  },
};
