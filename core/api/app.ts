import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { MiddlewareHandler } from 'hono';
import { requestId } from 'hono/request-id';
import type { ErasureHook } from '../catalog/erase.ts';
import type { InteractionStore, ItemStore, UserStore } from '../catalog/ports.ts';
import { MAX_BODY_BYTES } from '../domain/limits.ts';
import type { EventTypeConfig } from '../domain/schemas.ts';
import { eventInputSchema } from '../domain/schemas.ts';
import type { EventBus } from '../events/bus.ts';
import { requireApiKey } from './auth.ts';
import type { ApiKey } from './auth.ts';
import { ApiError } from './errors.ts';
import { registerEventRoutes } from './routes/events.ts';
import type { IngestPool } from './ingest-pool.ts';
import { registerItemRoutes } from './routes/items.ts';
import { registerUserRoutes } from './routes/users.ts';
import { registerRecommendationRoutes } from './routes/recommendations.ts';
import type { ServingServices } from './routes/recommendations.ts';
import { registerEntrySchemas, toApiError, validationHook } from './validate.ts';

/** A dependency the core needs before it can serve: resolves when reachable, throws why not. */
export type ReadinessCheck = { name: string; check: () => Promise<void> };

/** What the `/v1` data-plane routes run on (core/runtime.ts builds it from config). */
export interface CoreServices {
  items: ItemStore;
  users: UserStore;
  interactions: InteractionStore;
  bus: EventBus;
  /** The ids among these already stored, so a re-sent event is reported as `duplicate`. */
  storedEventIds?: (ids: readonly string[]) => Promise<ReadonlySet<string>>;
  /** Default DEFAULT_EVENT_TYPES. */
  eventTypes?: readonly EventTypeConfig[];
  /** Server clock, epoch ms (the "not far in the future" rule). */
  now?: () => number;
  /** The recommendation routes (issue 5); without it the core serves the data plane only. */
  serving?: ServingServices;
  /** Derived state erasure must also remove (DELETE /v1/users/{id}), by name. */
  erasureHooks?: Record<string, ErasureHook>;
  /**
   * Threads that prepare POST /v1/events batches (ingest-pool.ts), used when the bus takes
   * encoded records (`publishFramed`); they validate with `eventTypes` and the wall clock, not `now`.
   */
  ingest?: IngestPool;
  /** Told each POST /v1/events answer's counts (for the core's metrics). */
  onEvents?: (counts: { accepted: number; duplicate: number; rejected: number }) => void;
}

export interface CoreOptions {
  version: string;
  readiness?: ReadinessCheck[];
  log?: (line: string) => void;
  /** Without it the core serves only its health checks. */
  services?: CoreServices;
  /** API keys for `/v1`; none (or empty) runs the API open. */
  apiKeys?: readonly ApiKey[];
  /** Default MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /** Prometheus text for `/metrics`, and a per-request observer; without it the route is absent. */
  metrics?: { render(): string | Promise<string>; contentType: string; observeRequest?(route: string, status: number, seconds: number): void };
}

export type CoreEnv = { Variables: { requestId: string } };
export type CoreApp = OpenAPIHono<CoreEnv>;

export function createCoreApp({ version, readiness = [], log = console.error, services, apiKeys = [], maxBodyBytes = MAX_BODY_BYTES, metrics }: CoreOptions): CoreApp {
  const app = new OpenAPIHono<CoreEnv>({ defaultHook: validationHook });
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

  const observe = metrics?.observeRequest;
  if (observe !== undefined) {
    app.use('/v1/*', async (c, next) => {
      const t0 = performance.now();
      await next();
      // The route pattern (/v1/recommendations/:userId), not the path: one series per route.
      observe(`${c.req.method} ${c.req.routePath}`, c.res.status, (performance.now() - t0) / 1000);
    });
  }

  if (metrics !== undefined) {
    // Like the health checks, outside /v1: a scraper needs no API key and reads no catalog data.
    app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType }));
  }

  if (services !== undefined) {
    const eventSchema = eventInputSchema({ eventTypes: services.eventTypes, now: services.now ?? Date.now });
    // The document describes the API; it holds no data, so it needs no key.
    app.doc31('/v1/openapi.json', {
      openapi: '3.1.0',
      info: { title: 'Kestrel core API', version },
      security: apiKeys.length > 0 ? [{ apiKey: [] }] : [],
    });
    app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', { type: 'http', scheme: 'bearer', description: 'an API key with the read or write scope' });
    if (apiKeys.length > 0) app.use('/v1/*', requireApiKey(apiKeys));
    app.use('/v1/*', limitBody(maxBodyBytes));
    registerItemRoutes(app, services);
    registerUserRoutes(app, services);
    registerEventRoutes(app, services, eventSchema);
    if (services.serving !== undefined) registerRecommendationRoutes(app, services.serving);
    registerEntrySchemas(app.openAPIRegistry, eventSchema);
  }

  app.notFound((c) => {
    const err = new ApiError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}; see /healthz`);
    return c.json(err.toJSON(), 404);
  });

  app.onError((err, c) => {
    const mapped = toApiError(err);
    if (mapped instanceof ApiError) return c.json(mapped.toJSON(), mapped.status);
    const id = c.get('requestId');
    log(`[${id}] ${err.stack ?? err.message}`);
    return c.json({ error: { code: 'internal', message: 'internal error', details: [], requestId: id } }, 500);
  });

  return app;
}

/**
 * The body limit, without touching the body when it need not. Hono's bodyLimit reads
 * `c.req.raw.body`, and on @hono/node-server that builds a whole web Request for every request,
 * GETs included (~0.15 ms each in the serving profile), and makes the JSON body go through a web
 * stream instead of being read straight off the socket (~3 ms of a 1,000-event POST). A request
 * with no body passes; one with a Content-Length is judged by it (Node's parser delivers exactly
 * that many bytes); only a chunked body is counted as it streams in, by Hono's middleware.
 */
function limitBody(maxSize: number): MiddlewareHandler {
  const streamed = bodyLimit({ maxSize, onError: () => { throw new HTTPException(413); } });
  return async (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return next();
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > maxSize) throw new HTTPException(413);
      return next();
    }
    return streamed(c, next);
  };
}
