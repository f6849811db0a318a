// /v1/items: PUT (create or replace), batch upsert, GET one, list by cursor, PATCH, DELETE.
import { createRoute } from '@hono/zod-openapi';
import { ItemBatchSchema, ItemInputSchema, ItemPatchSchema, ItemPutSchema, ListQuerySchema } from '../../domain/schemas.ts';
import type { CoreApp, CoreServices } from '../app.ts';
import { batchStatus, renderBatchResult, validateBatch } from '../validate.ts';
import { IdParams, checkPathId, errorResponses, jsonBody, notFound, notFoundError } from './params.ts';

const tags = ['items'];

export function registerItemRoutes(app: CoreApp, { items }: Pick<CoreServices, 'items'>): void {
  app.openapi(createRoute({
    method: 'put', path: '/v1/items/{id}', tags, summary: 'Create or replace an item',
    request: { params: IdParams, body: jsonBody(ItemPutSchema, 'the whole item; fields left out take their defaults') },
    responses: { 200: { description: 'replaced' }, 201: { description: 'created' }, ...errorResponses },
  }), async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    checkPathId(id, body.id, 'item');
    const { outcome } = await items.upsert({ ...body, id });
    return c.json({ outcome, item: await items.get(id) }, outcome === 'created' ? 201 : 200);
  });

  app.openapi(createRoute({
    method: 'post', path: '/v1/items:batch', tags, summary: 'Create or replace up to 10,000 items',
    request: { body: jsonBody(ItemBatchSchema, 'valid entries are stored, invalid ones reported one by one') },
    responses: { 200: { description: 'every entry stored' }, 207: { description: 'some entries rejected; see results' }, ...errorResponses },
  }), async (c) => {
    const batch = validateBatch(c.req.valid('json').items, ItemInputSchema, { field: 'items' });
    if (batch.accepted.length > 0) await items.upsertMany(batch.accepted);
    const body = renderBatchResult(batch);
    return c.json(body, batchStatus(body));
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/items/{id}', tags, summary: 'Get an item',
    request: { params: IdParams },
    responses: { 200: { description: 'the item' }, ...errorResponses, ...notFound },
  }), async (c) => {
    const { id } = c.req.valid('param');
    const item = await items.get(id);
    if (item === undefined) throw notFoundError('item', id);
    return c.json(item, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/items', tags, summary: 'List items in id order',
    request: { query: ListQuerySchema },
    responses: { 200: { description: '`items` and, unless this is the last page, the `next` cursor' }, ...errorResponses },
  }), async (c) => {
    const { cursor, limit } = c.req.valid('query');
    const page = await items.list(cursor === undefined || cursor === '' ? { limit } : { cursor, limit });
    return c.json({ items: page.rows, ...(page.next === undefined ? {} : { next: page.next }) }, 200);
  });

  app.openapi(createRoute({
    method: 'patch', path: '/v1/items/{id}', tags, summary: 'Change some fields of an item',
    request: { params: IdParams, body: jsonBody(ItemPatchSchema, 'lists and scalars replace; attributes merge key by key') },
    responses: { 200: { description: 'the item after the change' }, ...errorResponses, ...notFound },
  }), async (c) => {
    const { id } = c.req.valid('param');
    const item = await items.patch(id, c.req.valid('json'));
    if (item === undefined) throw notFoundError('item', id);
    return c.json(item, 200);
  });

  app.openapi(createRoute({
    method: 'delete', path: '/v1/items/{id}', tags, summary: 'Delete an item (its interactions stay: they are the users\' history)',
    request: { params: IdParams },
    responses: { 200: { description: 'deleted' }, ...errorResponses, ...notFound },
  }), async (c) => {
    const { id } = c.req.valid('param');
    if (!(await items.delete(id))) throw notFoundError('item', id);
    return c.json({ id, deleted: true }, 200);
  });
}
