// /v1/users: PUT (create or replace), batch upsert, GET one, list by cursor, PATCH, and DELETE,
// which is the GDPR/CCPA erasure of core/catalog/erase.ts.
import { createRoute } from '@hono/zod-openapi';
import { eraseUser } from '../../catalog/erase.ts';
import { ListQuerySchema, UserBatchSchema, UserInputSchema, UserPatchSchema, UserPutSchema } from '../../domain/schemas.ts';
import type { CoreApp, CoreServices } from '../app.ts';
import { batchStatus, renderBatchResult, validateBatch } from '../validate.ts';
import { IdParams, checkPathId, errorResponses, jsonBody, notFound, notFoundError } from './params.ts';

const tags = ['users'];

export function registerUserRoutes(app: CoreApp, { users, interactions, bus, erasureHooks }: Pick<CoreServices, 'users' | 'interactions' | 'bus' | 'erasureHooks'>): void {
  app.openapi(createRoute({
    method: 'put', path: '/v1/users/{id}', tags, summary: 'Create or replace a user',
    request: { params: IdParams, body: jsonBody(UserPutSchema, 'the whole user; fields left out take their defaults') },
    responses: { 200: { description: 'replaced' }, 201: { description: 'created' }, ...errorResponses },
  }), async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    checkPathId(id, body.id, 'user');
    const { outcome } = await users.upsert({ ...body, id });
    return c.json({ outcome, user: await users.get(id) }, outcome === 'created' ? 201 : 200);
  });

  app.openapi(createRoute({
    method: 'post', path: '/v1/users:batch', tags, summary: 'Create or replace up to 10,000 users',
    request: { body: jsonBody(UserBatchSchema, 'valid entries are stored, invalid ones reported one by one') },
    responses: { 200: { description: 'every entry stored' }, 207: { description: 'some entries rejected; see results' }, ...errorResponses },
  }), async (c) => {
    const batch = validateBatch(c.req.valid('json').users, UserInputSchema, { field: 'users' });
    if (batch.accepted.length > 0) await users.upsertMany(batch.accepted);
    const body = renderBatchResult(batch);
    return c.json(body, batchStatus(body));
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/users/{id}', tags, summary: 'Get a user',
    request: { params: IdParams },
    responses: { 200: { description: 'the user' }, ...errorResponses, ...notFound },
  }), async (c) => {
    const { id } = c.req.valid('param');
    const user = await users.get(id);
    if (user === undefined) throw notFoundError('user', id);
    return c.json(user, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/users', tags, summary: 'List users in id order',
    request: { query: ListQuerySchema },
    responses: { 200: { description: '`users` and, unless this is the last page, the `next` cursor' }, ...errorResponses },
  }), async (c) => {
    const { cursor, limit } = c.req.valid('query');
    const page = await users.list(cursor === undefined || cursor === '' ? { limit } : { cursor, limit });
    return c.json({ users: page.rows, ...(page.next === undefined ? {} : { next: page.next }) }, 200);
  });

  app.openapi(createRoute({
    method: 'patch', path: '/v1/users/{id}', tags, summary: 'Change some fields of a user',
    request: { params: IdParams, body: jsonBody(UserPatchSchema, 'lists and scalars replace; attributes merge key by key') },
    responses: { 200: { description: 'the user after the change' }, ...errorResponses, ...notFound },
  }), async (c) => {
    const { id } = c.req.valid('param');
    const user = await users.patch(id, c.req.valid('json'));
    if (user === undefined) throw notFoundError('user', id);
    return c.json(user, 200);
  });

  app.openapi(createRoute({
    method: 'delete', path: '/v1/users/{id}', tags,
    summary: 'Erase a user (GDPR/CCPA): profile, events and derived state; says what it removed',
    request: { params: IdParams },
    responses: { 200: { description: 'the erasure report; safe to repeat' }, ...errorResponses },
  }), async (c) => {
    const { id } = c.req.valid('param');
    // With the bus, the erasure is recorded in the log too, so a replay honours it.
    return c.json(await eraseUser(id, { users, interactions, bus, ...(erasureHooks ? { hooks: erasureHooks } : {}) }), 200);
  });
}
