// HTTP load generators for the benches.
// * Closed loops: `concurrency` clients on keep-alive connections, each sending its next GET as
//   soon as the last one answered (autocannon's model, without the dependency). `closedLoop` runs
//   it in this process on node:http rather than fetch: fetch's own overhead (~0.3 ms a request on
//   this machine) would be a large share of a sub-millisecond Worker's latency. `wrkLoad` runs the
//   same loop in wrk, far cheaper where the load generator shares the server's cores.
// * An open loop, `fixedRate`: POSTs sent on a fixed schedule, for the latency at a given rate.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantile } from './harness.ts';

export interface LoadOptions {
  /** Base URL, e.g. http://127.0.0.1:8787. */
  url: string;
  /** The path of the i-th request (0-based, across all clients). */
  path: (i: number) => string;
  concurrency: number;
  /** Stop after this long (ms) ... */
  durationMs?: number;
  /** ... or after this many requests, whichever comes first. */
  requests?: number;
  /** Called with each response body; a false return counts the response as an error. */
  check?: (status: number, body: string) => boolean;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  requestsPerSecond: number;
}

/** One request on `agent` (keep-alive), resolving with the status and the whole body as text. */
export function send(agent: Agent, url: URL, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function closedLoop(options: LoadOptions): Promise<LoadResult> {
  const { concurrency, check } = options;
  const limit = options.requests ?? Number.POSITIVE_INFINITY;
  const end = performance.now() + (options.durationMs ?? Number.POSITIVE_INFINITY);
  if (!Number.isFinite(limit) && options.durationMs === undefined) throw new Error('closedLoop needs durationMs or requests');
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const base = new URL(options.url);
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  try {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < limit && performance.now() < end) {
        const url = new URL(options.path(next++), base);
        const start = performance.now();
        try {
          const { status, body } = await send(agent, url);
          if (status !== 200 || (check !== undefined && !check(status, body))) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - start);
      }
    }));
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, errors, seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), requestsPerSecond: latencies.length / seconds };
}

/** What `fixedRate` measured. */
export interface RateResult {
  /** Requests sent (all of them answered). */
  requests: number;
  /** From the first request's scheduled time to the last answer. */
  seconds: number;
  /** Latency from each request's scheduled send time to its whole answer. */
  p50: number;
  p99: number;
  max: number;
  /** The most requests awaiting an answer at once. */
  maxInFlight: number;
}

/**
 * An open loop: POSTs `bodies[i]` to `url` at `perSecond` requests a second, request i due at i /
 * perSecond seconds from the start whether or not the earlier ones have answered, and times each
 * from when it was due. A closed loop sends no request while its clients wait, so a server that
 * stalls is charged for one slow request; here every request due meanwhile queues behind it and
 * is charged too (no coordinated omission). `check` judges each answer; a request that fails it,
 * or fails to be answered, rejects the run once every request has settled.
 */
export async function fixedRate(
  url: URL, bodies: readonly string[], perSecond: number, check: (status: number, body: string) => string | undefined,
): Promise<RateResult> {
  if (!(perSecond > 0)) throw new RangeError(`fixedRate needs a positive rate, got ${perSecond}`);
  const agent = new Agent({ keepAlive: true });
  const interval = 1000 / perSecond;
  const latencies: number[] = [];
  const failures: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let lastAnswer = 0;
  const t0 = performance.now();
  const sent: Promise<void>[] = [];
  try {
    for (let i = 0; i < bodies.length; i++) {
      const due = t0 + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      sent.push(send(agent, url, 'POST', bodies[i]).then(({ status, body }) => {
        const failure = check(status, body);
        if (failure !== undefined) failures.push(`request ${i}: ${failure}`);
      }, (error: unknown) => {
        failures.push(`request ${i}: ${error instanceof Error ? error.message : String(error)}`);
      }).finally(() => {
        lastAnswer = performance.now();
        latencies.push(lastAnswer - due);
        inFlight--;
      }));
    }
    await Promise.all(sent);
  } finally {
    agent.destroy();
  }
  if (failures.length > 0) throw new Error(`${failures.length} of ${bodies.length} requests failed; the first: ${failures[0]}`);
  latencies.sort((a, b) => a - b);
  return {
    requests: bodies.length, seconds: (lastAnswer - t0) / 1000, maxInFlight,
    p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) ?? 0,
  };
}

/** What `wrkLoad` measured: wrk's own request count, latency percentiles and errors. */
export interface WrkResult {
  requests: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Responses with status ≥ 400, plus connect, read, write and timeout errors. */
  errors: number;
}

/** Whether `wrk` (the C load generator; Debian package `wrk`) is on PATH. */
export function wrkAvailable(): boolean {
  const found = spawnSync('wrk', ['--version'], { stdio: 'ignore' });
  return found.error === undefined;
}

/**
 * A closed loop like `closedLoop`, run by wrk: `concurrency` keep-alive connections on one wrk
 * thread, each sending its next GET when the last one answered, for `seconds`. Request i (across
 * all connections) is `paths[i % paths.length]`. wrk costs ~0.07 ms of CPU a request on this
 * machine where closedLoop costs ~0.4–0.5 ms, so on two shared cores it takes far less from the
 * server it measures. Latencies are wrk's (send to last byte, microsecond resolution).
 */
export function wrkLoad(url: string, paths: readonly string[], concurrency: number, seconds: number): Promise<WrkResult> {
  if (paths.length === 0) throw new Error('wrkLoad needs at least one path');
  const dir = mkdtempSync(join(tmpdir(), 'kestrel-wrk-'));
  const script = join(dir, 'load.lua');
  const tag = 'KESTREL_WRK ';
  writeFileSync(script, [
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}`,
    'local n = 0',
    'request = function()',
    '  local path = paths[(n % #paths) + 1]',
    '  n = n + 1',
    '  return wrk.format("GET", path)',
    'end',
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    `  io.write(string.format('${tag}{"requests":%d,"us":%d,"p50":%d,"p99":%d,"errors":%d}\\n',`,
    '    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),',
    '    e.status + e.connect + e.read + e.write + e.timeout))',
    'end',
  ].join('\n'));
  return new Promise((resolvePromise, reject) => {
    const args = ['-t1', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, url];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      rmSync(dir, { recursive: true, force: true });
      const line = output.split('\n').find((l) => l.startsWith(tag));
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk ${args.join(' ')} exited with ${code}:\n${output}`));
        return;
      }
      const r = JSON.parse(line.slice(tag.length)) as { requests: number; us: number; p50: number; p99: number; errors: number };
      resolvePromise({ requests: r.requests, seconds: r.us / 1e6, p50: r.p50 / 1000, p99: r.p99 / 1000, errors: r.errors });
    });
  });
}
