// Serving routes (issue 5): recommendations for a user, the candidate slate for the edge, similar
// items and popular items, all answered by the engine of the model the registry marks current.
import { createRoute, z } from '@hono/zod-openapi';
import { encodeSlate, SLATE_CONTENT_TYPE, slateToJson } from '../../domain/slate.ts';
import { encodeRecommendation } from '../../serving/engine.ts';
import type { RecommendRequest, ServingEngine } from '../../serving/engine.ts';
import type { EnginePool } from '../../serving/engine-pool.ts';
import type { FeatureLog } from '../../serving/feature-log.ts';
import type { ServingHost } from '../../serving/host.ts';
import { IdSchema } from '../../domain/schemas.ts';
import type { CoreApp } from '../app.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, notFound, notFoundError } from './params.ts';

export interface ServingServices {
  host: ServingHost;
  featureLog?: FeatureLog;
  /** Engine threads (serving/engine-pool.ts): recommendations and slates run there when one is ready. */
  pool?: EnginePool;
}

const tags = ['recommendations'];
export const MAX_RECOMMENDATIONS = 500;
export const MAX_SLATE = 5000;
const MAX_LIST_VALUES = 100;

const count = (max: number, fallback: number) => z.coerce
  .number({ error: (iss) => `must be a whole number from 1 to ${max}; got ${JSON.stringify(iss.input)}` })
  .int({ error: (iss) => `is ${JSON.stringify(iss.input)}; use a whole number from 1 to ${max}` })
  .min(1, { error: `must be at least 1` })
  .max(max, { error: `must be at most ${max}` })
  .default(fallback);

/** A comma-separated list of ids or names: `a,b,c`. */
const list = (what: string) => z.string()
  .transform((s) => s.split(',').map((v) => v.trim()).filter((v) => v !== ''))
  .refine((v) => v.length <= MAX_LIST_VALUES, { error: `holds more than ${MAX_LIST_VALUES} ${what}` })
  .optional();

/**
 * `where=brand:acme,brand:zeta,price:10`: attribute predicates. One name with several values
 * matches any of them; several names must all match. A value that reads as a number matches the
 * number and the text (query strings carry no types).
 */
const where = z.string()
  .max(4096, { error: 'is longer than 4,096 characters' })
  .transform((text, ctx) => {
    const out: Record<string, (string | number)[]> = {};
    for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
      const colon = part.indexOf(':');
      if (colon <= 0) {
        ctx.addIssue({ code: 'custom', message: `'${part}' is not name:value; write attribute predicates as where=brand:acme,price:10` });
        return z.NEVER;
      }
      const name = part.slice(0, colon).trim();
      const value = part.slice(colon + 1).trim();
      const values = (out[name] ??= []);
      values.push(value);
      const number = Number(value);
      if (value !== '' && Number.isFinite(number)) values.push(number);
    }
    return out;
  })
  .optional();

const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1').optional();

const UserParams = z.object({ userId: IdSchema });
const ItemParams = z.object({ id: IdSchema });

const RecommendQuery = z.object({
  n: count(MAX_RECOMMENDATIONS, 20),
  category: list('categories').meta({ description: 'only items in one of these categories (comma-separated)' }),
  excludeCategory: list('categories').meta({ description: 'never items in any of these categories (comma-separated)' }),
  where: where.meta({ description: 'attribute predicates, e.g. brand:acme,brand:zeta,price:10 (same name: any value; names: all)' }),
  exclude: list('item ids').meta({ description: 'never these items (comma-separated ids)' }),
  explain: flag.meta({ description: 'add each item\'s ranker features, their contributions and the retrieval scores' }),
});

const noModel = { 503: { description: 'no model is serving yet' } } as const;

function engineOf(host: ServingHost): ServingEngine {
  const engine = host.engine;
  if (engine === undefined) {
    const status = host.status();
    const why = status.loading !== undefined ? `model ${status.loading} is still loading; retry in a few seconds`
      : status.error ?? 'the model registry has no current model: train one with `kestrel train --from-bus --out <models>` and start the core with --models <models>';
    throw new ApiError(503, 'no_model', `no model is serving: ${why}`);
  }
  return engine;
}

/**
 * `remote` on an engine thread when the pool has a ready one, else (or when the thread failed or
 * died mid-request) `local` on the main thread's engine.
 */
async function onEngine<T>(pool: EnginePool | undefined, remote: (pool: EnginePool) => Promise<T> | undefined, local: () => Promise<T>): Promise<T> {
  const sent = pool === undefined ? undefined : remote(pool);
  if (sent !== undefined) {
    try {
      return await sent;
    } catch {
      // Served here instead: an error of the request itself comes back from the local engine too.
    }
  }
  return local();
}

export function registerRecommendationRoutes(app: CoreApp, { host, featureLog, pool }: ServingServices): void {
  app.openapi(createRoute({
    method: 'get', path: '/v1/recommendations/{userId}', tags,
    summary: 'Recommendations for a user: retrieved, ranked, diversified; unknown users get popular, trending and fresh items',
    request: { params: UserParams, query: RecommendQuery },
    responses: { 200: { description: '`items` best first, with scores and sources, and the `requestId` to send back with events' }, ...errorResponses, ...noModel },
  }), async (c) => {
    const { userId } = c.req.valid('param');
    const q = c.req.valid('query');
    const request: RecommendRequest = {
      n: q.n, requestId: c.get('requestId'),
      ...(q.category ? { categories: q.category } : {}), ...(q.excludeCategory ? { excludeCategories: q.excludeCategory } : {}),
      ...(q.exclude ? { exclude: q.exclude } : {}), ...(q.explain ? { explain: true } : {}), ...(q.where ? { attributes: q.where } : {}),
    };
    // JSON from here on: an engine thread's answer arrives as text, and is sent and logged as it is.
    const { body, served } = await onEngine(pool, (p) => p.recommend(userId, request), async () => {
      const engine = engineOf(host);
      return encodeRecommendation(await engine.track(() => engine.recommend(userId, request)));
    });
    featureLog?.recordEncoded(served);
    return c.body(body, 200, { 'content-type': 'application/json' });
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/candidates/{userId}', tags,
    summary: 'The candidate slate for the edge: ranked candidates with compact embeddings (JSON, or binary with Accept: application/vnd.kestrel.slate)',
    request: { params: UserParams, query: z.object({ n: count(MAX_SLATE, 500) }) },
    responses: { 200: { description: 'the slate' }, ...errorResponses, ...noModel },
  }), async (c) => {
    const { userId } = c.req.valid('param');
    const { n } = c.req.valid('query');
    const request: RecommendRequest = { n, requestId: c.get('requestId') };
    const slate = await onEngine(pool, (p) => p.candidates(userId, request), () => {
      const engine = engineOf(host);
      return engine.track(() => engine.candidates(userId, request));
    });
    if ((c.req.header('accept') ?? '').includes(SLATE_CONTENT_TYPE)) {
      const bytes = encodeSlate(slate);
      return c.body(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, 200, { 'content-type': SLATE_CONTENT_TYPE });
    }
    return c.json(slateToJson(slate), 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/items/{id}/similar', tags, summary: 'Items similar to an item (embedding neighbours and co-visitation)',
    request: { params: ItemParams, query: z.object({ n: count(MAX_RECOMMENDATIONS, 20) }) },
    responses: { 200: { description: '`items` best first' }, ...errorResponses, ...notFound, ...noModel },
  }), async (c) => {
    const { id } = c.req.valid('param');
    const { n } = c.req.valid('query');
    const engine = engineOf(host);
    const items = await engine.track(() => engine.similar(id, n));
    if (items === undefined) throw notFoundError('item', id);
    return c.json({ item: id, modelVersion: engine.version, items }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/popular', tags, summary: 'Popular items (time-decayed), overall or in one category',
    request: { query: z.object({ n: count(MAX_RECOMMENDATIONS, 20), category: z.string().min(1).max(256).optional() }) },
    responses: { 200: { description: '`items` best first' }, ...errorResponses, ...noModel },
  }), async (c) => {
    const { n, category } = c.req.valid('query');
    const engine = engineOf(host);
    const items = engine.popular(n, category);
    if (items === undefined) throw new ApiError(404, 'not_found', `no category '${category ?? ''}' in the catalog; leave 'category' out for all items`);
    return c.json({ modelVersion: engine.version, ...(category !== undefined ? { category } : {}), items }, 200);
  });
}
