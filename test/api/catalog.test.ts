// /v1/items and /v1/users through the real app on a real SQLite catalog and embedded log.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestCore, range } from './harness.ts';
import type { TestCore } from './harness.ts';

let core: TestCore;
beforeEach(async () => { core = await openTestCore(); });
afterEach(async () => { await core.close(); });

describe('/v1/items', () => {
  it('PUT creates then replaces, GET reads it, PATCH merges, DELETE removes', async () => {
    const put = await core.call('PUT', '/v1/items/book-1', { categories: ['books'], tags: ['new'], text: 'A book', attributes: { price: 9.5 }, hidden: false });
    expect(put.status).toBe(201);
    expect(await put.json()).toMatchObject({ outcome: 'created', item: { id: 'book-1', categories: ['books'], text: 'A book' } });

    const again = await core.call('PUT', '/v1/items/book-1', { id: 'book-1', categories: ['novels'], attributes: { price: 10 } });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ outcome: 'updated', item: { categories: ['novels'], tags: [], text: '' } });

    const patch = await core.call('PATCH', '/v1/items/book-1', { hidden: true, attributes: { author: 'Le Guin' } });
    expect(patch.status).toBe(200);
    expect(await patch.json()).toMatchObject({ id: 'book-1', hidden: true, categories: ['novels'], attributes: { price: 10, author: 'Le Guin' } });

    const get = await core.call('GET', '/v1/items/book-1');
    expect(get.status).toBe(200);
    expect(await get.json()).toMatchObject({ id: 'book-1', hidden: true, attributes: { price: 10, author: 'Le Guin' } });

    const del = await core.call('DELETE', '/v1/items/book-1');
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ id: 'book-1', deleted: true });
    const gone = await core.call('GET', '/v1/items/book-1');
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: { code: 'not_found', message: "no item 'book-1'; create it with PUT /v1/items/book-1" } });
    expect((await core.call('DELETE', '/v1/items/book-1')).status).toBe(404);
    expect((await core.call('PATCH', '/v1/items/book-1', { hidden: false })).status).toBe(404);
  });

  it('refuses a PUT whose body id differs from the path', async () => {
    const res = await core.call('PUT', '/v1/items/a', { id: 'b' });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: { code: 'id_mismatch', details: [{ path: 'id' }] } });
    expect((await core.call('GET', '/v1/items/a')).status).toBe(404);
  });

  it('stores the valid entries of a 10,000-item batch and reports the invalid ones (207)', async () => {
    const bad = new Set([17, 4_242, 9_999]);
    const items = range(10_000, (i) => (bad.has(i) ? { id: `item-${i}`, categories: 'not-a-list' } : { id: `item-${i}`, categories: [`c${i % 7}`] }));
    const res = await core.call('POST', '/v1/items:batch', { items });
    expect(res.status).toBe(207);
    const body = await res.json() as { accepted: number; rejected: number; results: { index: number; status: string; errors?: { path: string }[] }[] };
    expect(body).toMatchObject({ accepted: 9_997, duplicate: 0, rejected: 3 });
    expect(body.results).toHaveLength(10_000);
    expect(body.results.filter((r) => r.status === 'rejected').map((r) => [r.index, r.errors?.[0]?.path]))
      .toEqual([[17, 'items[17].categories'], [4_242, 'items[4242].categories'], [9_999, 'items[9999].categories']]);
    expect(await core.runtime.catalog.items.count()).toBe(9_997);
    expect((await core.call('GET', '/v1/items/item-4242')).status).toBe(404);
    expect(await (await core.call('GET', '/v1/items/item-4243')).json()).toMatchObject({ categories: ['c1'] });
  }, 60_000);

  it('pages through 2,500 items with limit 1000, each once, in id order', async () => {
    const res = await core.call('POST', '/v1/items:batch', { items: range(2_500, (i) => ({ id: `p-${String(i).padStart(4, '0')}` })) });
    expect(res.status).toBe(200);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await core.call('GET', `/v1/items?limit=1000${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
      expect(page.status).toBe(200);
      const body = await page.json() as { items: { id: string }[]; next?: string };
      seen.push(...body.items.map((i) => i.id));
      cursor = body.next;
      pages++;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(2_500);
    expect(new Set(seen).size).toBe(2_500);
    expect(seen).toEqual([...seen].sort());
  });

  it('rejects a limit over 1000 in our error format', async () => {
    const res = await core.call('GET', '/v1/items?limit=1001');
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: { details: [{ path: 'limit' }] } });
  });
});

describe('/v1/users', () => {
  it('PUT, GET, PATCH, list, batch', async () => {
    expect((await core.call('PUT', '/v1/users/u1', { attributes: { country: 'NZ' } })).status).toBe(201);
    expect((await core.call('PUT', '/v1/users/u1', { attributes: { country: 'AU' } })).status).toBe(200);
    const patched = await core.call('PATCH', '/v1/users/u1', { attributes: { plan: 'pro' } });
    expect(await patched.json()).toMatchObject({ id: 'u1', attributes: { country: 'AU', plan: 'pro' } });
    expect(await (await core.call('GET', '/v1/users/u1')).json()).toMatchObject({ id: 'u1', attributes: { country: 'AU', plan: 'pro' } });
    expect((await core.call('GET', '/v1/users/nobody')).status).toBe(404);

    const batch = await core.call('POST', '/v1/users:batch', { users: [{ id: 'u2' }, { id: 'u 3' }, { id: 'u4', attributes: { age: 30 } }] });
    expect(batch.status).toBe(207);
    expect(await batch.json()).toMatchObject({ accepted: 2, rejected: 1, results: [{ index: 0, status: 'accepted' }, { index: 1, status: 'rejected' }, { index: 2, status: 'accepted' }] });

    const list = await core.call('GET', '/v1/users?limit=2');
    const first = await list.json() as { users: { id: string }[]; next: string };
    expect(first.users.map((u) => u.id)).toEqual(['u1', 'u2']);
    const rest = await (await core.call('GET', `/v1/users?limit=2&cursor=${encodeURIComponent(first.next)}`)).json();
    expect(rest).toEqual({ users: [expect.objectContaining({ id: 'u4' })] });
  });
});

describe('/v1/openapi.json', () => {
  it('documents every route and the entry schemas', async () => {
    const res = await core.call('GET', '/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = await res.json() as { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    expect(routes).toEqual([
      'DELETE /v1/items/{id}', 'DELETE /v1/users/{id}',
      'GET /v1/items', 'GET /v1/items/{id}', 'GET /v1/users', 'GET /v1/users/{id}',
      'PATCH /v1/items/{id}', 'PATCH /v1/users/{id}',
      'POST /v1/events', 'POST /v1/items:batch', 'POST /v1/users:batch',
      'PUT /v1/items/{id}', 'PUT /v1/users/{id}',
    ]);
    for (const name of ['ItemInput', 'UserInput', 'EventInput', 'EventBatch', 'EventsBody', 'Error']) expect(doc.components.schemas).toHaveProperty(name);
    for (const [, ref] of JSON.stringify(doc).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) expect(doc.components.schemas, `dangling $ref ${ref}`).toHaveProperty(ref ?? '');
  });
});
