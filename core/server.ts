import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCoreApp } from './api/app.ts';
import type { CoreOptions } from './api/app.ts';

export interface RunningCore {
  url: string;
  close(): Promise<void>;
}

/**
 * How long an idle keep-alive connection stays open (Node's default is 5 s). A client or load
 * balancer that keeps connections longer than the server does sends, now and then, a request on
 * one the server is closing at that moment and gets a reset (a 502 from the balancer): AWS's
 * load balancers idle out at 60 s, Node's own agents never. At 65 s the other side closes
 * first; closing the server still ends idle connections at once.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Starts the core's HTTP server; resolves once it listens. Port 0 picks a free port. */
export function startCore(options: CoreOptions & { port: number; host?: string }): Promise<RunningCore> {
  const app = createCoreApp(options);
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    let server: ServerType | undefined;
    try {
      server = serve({ fetch: app.fetch, port: options.port, hostname: host }, (info: AddressInfo) => {
        resolve({
          url: `http://${host}:${info.port}`,
          close: () => new Promise<void>((done, fail) => server?.close((e) => (e ? fail(e) : done()))),
        });
      });
      if (server instanceof Server) {
        server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
        // Node's advice: longer than keepAliveTimeout, so a request's headers on a reused
        // connection are not cut short by the headers timer.
        server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
      }
      server.once('error', reject);
    } catch (err) {
      reject(err);
    }
  });
}
