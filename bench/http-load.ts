// A closed-loop HTTP load generator: `concurrency` clients on keep-alive connections, each sending
// its next GET as soon as the last one answered (autocannon's model, without the dependency).
// node:http rather than fetch: fetch's own overhead (~0.3 ms a request on this machine) would be
// a large share of a sub-millisecond Worker's latency.
import { Agent, request } from 'node:http';
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
