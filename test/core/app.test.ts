import { describe, expect, it } from 'vitest';
import { createCoreApp } from '../../core/api/app.ts';
import { ApiError } from '../../core/api/errors.ts';

describe('core app', () => {
  it('answers /healthz with its tier and version', async () => {
    const res = await createCoreApp({ version: '1.2.3' }).request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', tier: 'core', version: '1.2.3' });
  });

  it('is ready only when every readiness check passes, and says which failed and why', async () => {
    const app = createCoreApp({
      version: 't',
      readiness: [
        { name: 'catalog', check: async () => {} },
        { name: 'vector-index', check: async () => { throw new Error('connect ECONNREFUSED 127.0.0.1:19530'); } },
      ],
    });
    const res = await app.request('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'unready',
      checks: [
        { name: 'catalog', ok: true },
        { name: 'vector-index', ok: false, reason: 'connect ECONNREFUSED 127.0.0.1:19530' },
      ],
    });
  });

  it('renders an ApiError with its status, code, message and details', async () => {
    const app = createCoreApp({ version: 't' });
    app.get('/boom', () => {
      throw new ApiError(422, 'too_many_categories', "item 'x' has 40 categories over the limit of 32", [{ path: 'categories', message: 'at most 32' }]);
    });
    const res = await app.request('/boom');
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({
      error: { code: 'too_many_categories', message: "item 'x' has 40 categories over the limit of 32", details: [{ path: 'categories', message: 'at most 32' }] },
    });
  });

  it('turns any other error into a 500 carrying a request id, and logs it under that id', async () => {
    const logged: string[] = [];
    const app = createCoreApp({ version: 't', log: (line) => logged.push(line) });
    app.get('/bug', () => {
      throw new TypeError('undefined is not a function');
    });
    const res = await app.request('/bug');
    expect(res.status).toBe(500);
    const body: { error: { code: string; requestId: string } } = await res.json();
    expect(body.error.code).toBe('internal');
    expect(body.error.requestId).toMatch(/.{8,}/);
    expect(logged.some((l) => l.startsWith(`[${body.error.requestId}]`) && l.includes('undefined is not a function'))).toBe(true);
  });

  it('answers unknown routes with a JSON 404 that names the route', async () => {
    const res = await createCoreApp({ version: 't' }).request('/v1/nothing', { method: 'POST' });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'not_found', message: expect.stringContaining('POST /v1/nothing') } });
  });
});
