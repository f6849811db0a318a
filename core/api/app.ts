import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { ApiError } from './errors.ts';

/** A dependency the core needs before it can serve: resolves when reachable, throws why not. */
export type ReadinessCheck = { name: string; check: () => Promise<void> };

export interface CoreOptions {
  version: string;
  readiness?: ReadinessCheck[];
  log?: (line: string) => void;
}

type CoreEnv = { Variables: { requestId: string } };

export function createCoreApp({ version, readiness = [], log = console.error }: CoreOptions) {
  const app = new Hono<CoreEnv>();
  app.use(requestId());

  app.get('/healthz', (c) => c.json({ status: 'ok', tier: 'core', version }));

  app.get('/readyz', async (c) => {
    const results = await Promise.all(readiness.map(async ({ name, check }) => {
      try {
        await check();
        return { name, ok: true as const };
      } catch (err) {
        return { name, ok: false as const, reason: err instanceof Error ? err.message : String(err) };
      }
    }));
    const ready = results.every((r) => r.ok);
    return c.json({ status: ready ? 'ready' : 'unready', checks: results }, ready ? 200 : 503);
  });

  app.notFound((c) => {
    const err = new ApiError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}; see /healthz`);
    return c.json(err.toJSON(), 404);
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(err.toJSON(), err.status);
    const id = c.get('requestId');
    log(`[${id}] ${err.stack ?? err.message}`);
    return c.json({ error: { code: 'internal', message: 'internal error', details: [], requestId: id } }, 500);
  });

  return app;
}
