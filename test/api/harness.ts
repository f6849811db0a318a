// A core app on a real runtime (SQLite catalog + embedded log, or Kafka) in a temp dir, and a
// `call` that sends JSON through `app.request`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCoreApp } from '../../core/api/app.ts';
import type { ApiKey } from '../../core/api/auth.ts';
import type { CoreApp } from '../../core/api/app.ts';
import { openRuntime } from '../../core/runtime.ts';
import type { CoreRuntime, RuntimeConfig } from '../../core/runtime.ts';

export interface TestCore {
  dir: string;
  runtime: CoreRuntime;
  app: CoreApp;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

/**
 * `ingestThreads` defaults to 0 here (the route prepares batches on the event loop; no threads to
 * start per test); with more, the core is returned once they are ready, so batches go to them.
 */
export async function openTestCore(options: { apiKeys?: ApiKey[]; kafka?: RuntimeConfig['kafka']; maxBodyBytes?: number; ingestThreads?: number } = {}): Promise<TestCore> {
  const dir = await mkdtemp(join(tmpdir(), 'kestrel-api-'));
  const logged: string[] = [];
  const runtime = await openRuntime({ dataDir: dir, kafka: options.kafka, log: (l) => logged.push(l), ingestThreads: options.ingestThreads ?? 0 });
  await runtime.services.ingest?.whenReady();
  const app = createCoreApp({
    version: 'test', services: runtime.services, readiness: runtime.readiness, apiKeys: options.apiKeys,
    maxBodyBytes: options.maxBodyBytes, log: (l) => logged.push(l), metrics: runtime.metrics,
  });
  return {
    dir,
    runtime,
    app,
    call: (method, path, body, headers = {}) => Promise.resolve(app.request(path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    })),
    async close() {
      await runtime.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const range = <T,>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

/** A valid event `n` of user `u` on item `i`, a minute ago. */
export function event(n: number | string, userId = 'u1', itemId = 'i1', type = 'click') {
  return { id: `e-${n}`, type, userId, itemId, timestamp: Date.now() - 60_000 };
}
