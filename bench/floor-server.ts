// The serve bench's reference server: what this machine allows a server of Kestrel's shape.
// node:http on the main thread hands each request to the less busy of two worker threads (as
// `kestrel serve --engine-threads 2` does), which does a fixed amount of arithmetic and answers
// with a JSON body of 20 items the size of a recommendations answer. Its work per request is
// fixed, not a timed spin: a spin that waits for the clock ends on time even when the VM takes
// the core away for a while, and would show a steadier machine than there is.
//
// Run as its own process, like `kestrel serve`, so that the load generator and its CPU are apart:
//   node --import tsx bench/floor-server.ts --work-ms 2.0 [--bytes 2600] [--threads 2]
// It calibrates its work unit on the main thread (CPU time, ~0.4 s), starts the threads, and
// prints the units per request, `listening on http://127.0.0.1:<port>` and `Press Ctrl-C to stop.`
// (bench/core-process.ts, startServerProcess).
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { typescriptWorker } from '../core/threads.ts';

/** One unit: a 64-wide row times a 64×64 matrix, on arrays made once. */
const WIDTH = 64;

function workUnits(): (units: number) => number {
  const matrix = Float32Array.from({ length: WIDTH * WIDTH }, (_, i) => ((i * 7919) % 1000) / 1000);
  const row = Float32Array.from({ length: WIDTH }, (_, i) => ((i * 104729) % 1000) / 1000);
  const out = new Float32Array(WIDTH);
  return (units) => {
    for (let u = 0; u < units; u++) {
      for (let j = 0; j < WIDTH; j++) {
        let sum = 0;
        for (let k = 0; k < WIDTH; k++) sum += (row[k] ?? 0) * (matrix[k * WIDTH + j] ?? 0);
        out[j] = sum;
      }
      row[u % WIDTH] = (out[u % WIDTH] ?? 0) * 1e-3;
    }
    return out[0] ?? 0;
  };
}

/** Work units per CPU millisecond on this thread, measured over about `ms` of CPU after a warm-up. */
export function unitsPerCpuMs(ms = 400): number {
  const work = workUnits();
  work(20_000);
  const start = process.cpuUsage();
  let units = 0;
  let spent = 0;
  while (spent < ms) {
    work(2_000);
    units += 2_000;
    const used = process.cpuUsage(start);
    spent = (used.user + used.system) / 1000;
  }
  return units / spent;
}

/** A body shaped like `GET /v1/recommendations?n=20`'s, padded to `bytes`. */
export function answerBody(bytes: number): string {
  const items = Array.from({ length: 20 }, (_, k) => ({ id: `i${k}`, score: 1 - k / 20, sources: ['two-tower'] }));
  const bare = JSON.stringify({ items, pad: '' });
  return JSON.stringify({ items, pad: 'x'.repeat(Math.max(0, bytes - bare.length)) });
}

interface ThreadData {
  units: number;
  body: string;
}

function serveThread(data: ThreadData): void {
  const work = workUnits();
  parentPort?.on('message', (id: number) => {
    work(data.units);
    parentPort?.postMessage(id);
  });
}

function option(args: readonly string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} takes a number of at least 0, got '${args[at + 1] ?? ''}'`);
  return value;
}

function main(args: readonly string[]): void {
  const workMs = option(args, '--work-ms', 1);
  const bytes = option(args, '--bytes', 2600);
  const threads = Math.max(1, Math.round(option(args, '--threads', 2)));
  const units = Math.max(1, Math.round(workMs * unitsPerCpuMs()));
  const body = answerBody(bytes);
  const data: ThreadData = { units, body };
  const workers = Array.from({ length: threads }, () => typescriptWorker(new URL(import.meta.url), data, 'kestrel-floor'));
  const busy = workers.map(() => 0);
  const waiting = new Map<number, ServerResponse>();
  let nextId = 0;
  workers.forEach((worker, w) => worker.on('message', (id: number) => {
    busy[w] = (busy[w] ?? 1) - 1;
    const res = waiting.get(id);
    waiting.delete(id);
    res?.writeHead(200, { 'content-type': 'application/json' }).end(body);
  }));
  const server = createServer((req, res) => {
    req.resume();
    let w = 0;
    for (let t = 1; t < threads; t++) if ((busy[t] ?? 0) < (busy[w] ?? 0)) w = t;
    busy[w] = (busy[w] ?? 0) + 1;
    const id = nextId++;
    waiting.set(id, res);
    workers[w]?.postMessage(id);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    console.log(`floor server: ${threads} threads, ${units} units (${workMs} ms of CPU) a request, ${body.length}-byte answers`);
    console.log(`listening on http://127.0.0.1:${port}`);
    console.log('Press Ctrl-C to stop.');
  });
  process.once('SIGINT', () => {
    server.close();
    server.closeAllConnections();
    void Promise.all(workers.map((w) => w.terminate())).then(() => process.exit(0));
  });
}

if (!isMainThread) serveThread(workerData as ThreadData);
else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) main(process.argv.slice(2));
