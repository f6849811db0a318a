// The ingest bench's open loop (bench/http-load.ts, fixedRate): requests leave on their schedule
// whatever the answers' pace, and each is timed from when it was due.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedRate } from '../../bench/http-load.ts';

let server: Server | undefined;

/** A server on a free loopback port; `handle` gets each request's body. */
async function serve(handle: (body: string, res: ServerResponse) => void): Promise<URL> {
  server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => handle(body, res));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`);
}

afterEach(async () => {
  await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
  server = undefined;
});

const ok = (status: number): string | undefined => (status === 200 ? undefined : `status ${status}`);

describe('fixedRate', () => {
  it('sends on its schedule while earlier requests still wait for their answers', async () => {
    const seen: string[] = [];
    const url = await serve((body, res) => {
      seen.push(body);
      setTimeout(() => res.end('{"ok":true}'), 40);
    });
    const bodies = Array.from({ length: 30 }, (_, i) => `{"n":${i}}`);
    const result = await fixedRate(url, bodies, 200, ok);
    // One request at a time would take 30 × 40 ms; on the schedule the last leaves at ~145 ms.
    expect(result.seconds).toBeLessThan(0.6);
    expect(result.maxInFlight).toBeGreaterThanOrEqual(4);
    expect(result.requests).toBe(30);
    expect(result.p50).toBeGreaterThanOrEqual(39);
    expect([...seen].sort()).toEqual([...bodies].sort());
  });

  it('charges the requests that fell due while the server stalled, not only the one it held', async () => {
    let n = 0;
    const url = await serve((_, res) => {
      // The 2nd request stalls this thread (the server's and the load generator's) for 300 ms:
      // the ~30 requests due meanwhile leave late, and each is timed from when it was due.
      if (++n === 2) {
        const until = performance.now() + 300;
        while (performance.now() < until) { /* busy */ }
      }
      res.end('{}');
    });
    const result = await fixedRate(url, Array.from({ length: 40 }, () => '{}'), 100, ok);
    expect(result.max).toBeGreaterThanOrEqual(250);
    // Timed from when they left, all but the 2nd would take a millisecond or so.
    expect(result.p50).toBeGreaterThanOrEqual(50);
  });

  it('rejects once every request settled when an answer fails the check, naming it', async () => {
    let n = 0;
    const url = await serve((_, res) => {
      res.statusCode = ++n === 3 ? 503 : 200;
      res.end('{}');
    });
    await expect(fixedRate(url, Array.from({ length: 5 }, () => '{}'), 100, ok)).rejects.toThrow(/1 of 5 requests failed; the first: request \d: status 503/);
    expect(n).toBe(5);
  });

  it('refuses a rate that is not positive', async () => {
    await expect(fixedRate(new URL('http://127.0.0.1:9/'), ['{}'], 0, ok)).rejects.toThrow(/positive rate/);
  });
});
