import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';

describe('edge worker inside workerd', () => {
  it('answers /healthz and runs its WASM kernel', async () => {
    const res = await SELF.fetch('https://edge.test/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', tier: 'edge', kernels: { wasm: 'ok' }, apiKeys: 'off' });
  });

  it('reports itself unready with the reason when the core cannot be reached', async () => {
    const res = await SELF.fetch('https://edge.test/readyz');
    // No core runs for this test: CORE_URL points at a closed port.
    expect(res.status).toBe(503);
    const body: { status: string; reason: string } = await res.json();
    expect(body.status).toBe('unready');
    expect(body.reason.length).toBeGreaterThan(0);
  });

  it('renders unknown routes as a JSON 404', async () => {
    const res = await SELF.fetch('https://edge.test/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});
