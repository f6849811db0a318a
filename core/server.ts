import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createCoreApp } from './api/app.ts';
import type { CoreOptions } from './api/app.ts';

export interface RunningCore {
  url: string;
  close(): Promise<void>;
}

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
      server.once('error', reject);
    } catch (err) {
      reject(err);
    }
  });
}
