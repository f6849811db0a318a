// API keys (401/403 in our error format), the body limit (413), malformed JSON (400) and /readyz,
// through the app and through a real listening server.
import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseApiKeys } from '../../core/api/auth.ts';
import { checkOpenApi, loadApiKeys } from '../../core/runtime.ts';
import { startCore } from '../../core/server.ts';
import { event, openTestCore } from './harness.ts';
import type { TestCore } from './harness.ts';

const READER = 'reader-key-0123456789';
const WRITER = 'writer-key-0123456789';
const keys = parseApiKeys({ keys: [{ key: READER, scopes: ['read'], name: 'dashboard' }, { key: WRITER, scopes: ['write'], name: 'ingest' }] }, 'test');
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let core: TestCore | undefined;
afterEach(async () => { await core?.close(); core = undefined; });

describe('API keys', () => {
  it('401 without a key or with an unknown one, 403 without the scope; write implies read', async () => {
    core = await openTestCore({ apiKeys: keys });
    const none = await core.call('GET', '/v1/items');
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: { code: 'unauthenticated', message: 'send an API key as "Authorization: Bearer <key>"', details: [] } });
    const unknown = await core.call('GET', '/v1/items', undefined, bearer('not-a-key-at-all-000'));
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ error: { code: 'unauthenticated' } });

    expect((await core.call('GET', '/v1/items', undefined, bearer(READER))).status).toBe(200);
    const forbidden = await core.call('PUT', '/v1/items/a', {}, bearer(READER));
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: 'forbidden', message: expect.stringContaining("needs an API key with the 'write' scope") } });
    expect((await core.call('POST', '/v1/events', event(1), bearer(READER))).status).toBe(403);
    expect((await core.call('DELETE', '/v1/users/u1', undefined, bearer(READER))).status).toBe(403);

    expect((await core.call('PUT', '/v1/items/a', {}, bearer(WRITER))).status).toBe(201);
    expect((await core.call('GET', '/v1/items/a', undefined, bearer(WRITER))).status).toBe(200);
  });

  it('leaves /healthz, /readyz and the OpenAPI document open', async () => {
    core = await openTestCore({ apiKeys: keys });
    expect((await core.call('GET', '/healthz')).status).toBe(200);
    const ready = await core.call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: [{ name: 'catalog', ok: true }, { name: 'event-bus', ok: true }, { name: 'projector', ok: true }] });
    expect((await core.call('GET', '/v1/openapi.json')).status).toBe(200);
  });

  it('loads keys from JSON and says what is wrong with a bad config', () => {
    expect(loadApiKeys(undefined, JSON.stringify({ keys: [{ key: WRITER, scopes: ['read', 'write'] }] }))).toEqual([{ key: WRITER, scopes: ['read', 'write'] }]);
    expect(loadApiKeys(undefined, '')).toEqual([]);
    expect(() => loadApiKeys(undefined, '{"keys":[{"key":"short","scopes":["read"]}]}')).toThrow('KESTREL_API_KEYS: keys[0].key must be a string of at least 16 characters');
    expect(() => loadApiKeys(undefined, '{"keys":[{"key":"long-enough-key-0000","scopes":["admin"]}]}')).toThrow('keys[0].scopes must be a non-empty array of "read" and "write"');
    expect(() => loadApiKeys('/nonexistent/keys.json')).toThrow('cannot read the API keys file /nonexistent/keys.json');
    const warned: string[] = [];
    checkOpenApi([], '127.0.0.1', (l) => warned.push(l));
    expect(warned.join('\n')).toContain('WARNING: no API keys configured');
    expect(() => checkOpenApi([], '0.0.0.0', () => undefined)).toThrow('no API keys configured and --host 0.0.0.0 is not loopback');
  });
});

describe('bad requests', () => {
  it('413 for a body over the limit, 400 for malformed JSON, both in our format', async () => {
    core = await openTestCore();
    const huge = JSON.stringify({ events: [{ ...event(1), context: { pad: 'x'.repeat(33 * 1024 * 1024) } }] });
    const tooBig = await core.app.request('/v1/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: huge });
    expect(tooBig.status).toBe(413);
    expect(await tooBig.json()).toEqual({ error: { code: 'payload_too_large', message: 'request body is over the size limit; split it into smaller batches', details: [] } });

    const malformed = await core.app.request('/v1/items/a', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"categories": [' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { code: 'malformed_json', message: expect.stringContaining('request body is not valid JSON') } });
  });
});

describe('a real listening server', () => {
  it('judges a body by its Content-Length, or counts a chunked one, against the limit; the valid ones are read whole', async () => {
    core = await openTestCore();
    const server = await startCore({ port: 0, version: 'test', services: core.runtime.services, maxBodyBytes: 4096 });
    const post = (chunks: string[], headers: Record<string, string>) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (const chunk of chunks) req.write(chunk);
      req.end();
    });
    const padded = (pad: number) => JSON.stringify({ events: [event(1, 'u1', 'i1'), { ...event(2, 'u1', 'i2'), context: { pad: 'x'.repeat(pad) } }] });
    try {
      const small = padded(100);
      // Content-Length: over the limit is refused before the body is read; under it, parsed whole.
      const tooLong = await post([padded(5000)], { 'content-length': String(Buffer.byteLength(padded(5000))) });
      expect(tooLong.status).toBe(413);
      expect(JSON.parse(tooLong.body)).toMatchObject({ error: { code: 'payload_too_large' } });
      const fits = await post([small], { 'content-length': String(Buffer.byteLength(small)) });
      expect(fits.status).toBe(200);
      expect(JSON.parse(fits.body)).toMatchObject({ accepted: 2, rejected: 0 });
      // Chunked (no Content-Length): counted as it arrives.
      const chunked = padded(5000);
      const tooMany = await post([chunked.slice(0, 3000), chunked.slice(3000)], { 'transfer-encoding': 'chunked' });
      expect(tooMany.status).toBe(413);
      const smallChunked = JSON.stringify({ events: [event(3, 'u1', 'i3')] });
      const fitsChunked = await post([smallChunked.slice(0, 20), smallChunked.slice(20)], { 'transfer-encoding': 'chunked' });
      expect(fitsChunked.status).toBe(200);
      expect(JSON.parse(fitsChunked.body)).toMatchObject({ accepted: 1 });
    } finally {
      await server.close();
    }
  });

  it("keeps an idle keep-alive connection past Node's default (5 s, closed at ~6), and closing the server still ends it at once", async () => {
    core = await openTestCore();
    const server = await startCore({ port: 0, version: 'test', services: core.runtime.services });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = () => new Promise<{ status: number; port: number | undefined }>((resolve, reject) => {
      request(`${server.url}/healthz`, { agent }, (res) => {
        const port = res.socket.localPort;
        res.resume().on('end', () => resolve({ status: res.statusCode ?? 0, port }));
      }).on('error', reject).end();
    });
    let closed = false;
    try {
      const first = await get();
      await new Promise((resolve) => setTimeout(resolve, 7_000));
      const second = await get();
      expect([first.status, second.status]).toEqual([200, 200]);
      // The same connection: the server did not close it while idle.
      expect(second.port).toBe(first.port);
      const t0 = performance.now();
      await server.close();
      closed = true;
      expect(performance.now() - t0).toBeLessThan(2_000);
    } finally {
      agent.destroy();
      if (!closed) await server.close();
    }
  }, 20_000);

  it('serves the API over HTTP with keys, and closes cleanly', async () => {
    core = await openTestCore();
    const server = await startCore({ port: 0, version: 'test', services: core.runtime.services, readiness: core.runtime.readiness, apiKeys: keys });
    try {
      const put = await fetch(`${server.url}/v1/items/http-1`, { method: 'PUT', headers: { 'content-type': 'application/json', ...bearer(WRITER) }, body: JSON.stringify({ categories: ['x'] }) });
      expect(put.status).toBe(201);
      const ev = await fetch(`${server.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(WRITER) }, body: JSON.stringify({ events: [event(1, 'u1', 'http-1')] }) });
      expect(ev.status).toBe(200);
      expect(await ev.json()).toMatchObject({ accepted: 1 });
      const get = await fetch(`${server.url}/v1/items/http-1`, { headers: bearer(READER) });
      expect(await get.json()).toMatchObject({ id: 'http-1', categories: ['x'] });
      expect((await fetch(`${server.url}/v1/items/http-1`)).status).toBe(401);
      await core.runtime.projector.drained();
      expect(await core.runtime.catalog.interactions.itemCounts('http-1')).toEqual({ click: 1 });
    } finally {
      await server.close();
    }
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});
