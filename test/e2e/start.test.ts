// `npm start` for real: the CLI brings up the full core (API, catalog, embedded log, projector)
// and the edge (workerd via wrangler dev), the edge reaches the core, and Ctrl-C stops both. On an
// empty data folder the quickstart first generates data, trains a model and prints example requests.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/net.ts';

describe('kestrel start', () => {
  it('fills an empty data folder, trains, serves core and edge, prints example requests, and SIGINT stops both', async () => {
    const [corePort, edgePort] = [await freePort(), await freePort()];
    const bin = fileURLToPath(new URL('../../bin/kestrel.js', import.meta.url));
    const data = await mkdtemp(join(tmpdir(), 'kestrel-start-'));
    const child = spawn(process.execPath, [bin, 'start', '--core-port', String(corePort), '--edge-port', String(edgePort), '--data', data, '--users', '150', '--items', '100', '--events', '8000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KESTREL_API_KEYS: '' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await expect.poll(() => output, { timeout: 240_000, interval: 250 }).toContain('Press Ctrl-C to stop.');
      expect(output).toContain('Quickstart: training a model');
      expect(output).toMatch(/curl 'http:\/\/127\.0\.0\.1:\d+\/v1\/recommendations\/[^']+'\n\s+-> 200 personal: \S+/);
      expect(output).toMatch(/a-new-user\?n=5'\n\s+-> 200 anonymous: \S+/);
      expect(output).toMatch(/curl 'http:\/\/127\.0\.0\.1:\d+\/v1\/recommendations\/[^']+'\n\s+-> 200 edge, served from core: \S+/);
      expect(output).toContain(`core  http://127.0.0.1:${corePort}`);

      const core = await fetch(`http://127.0.0.1:${corePort}/healthz`);
      expect(await core.json()).toMatchObject({ status: 'ok', tier: 'core' });
      const coreReady = await fetch(`http://127.0.0.1:${corePort}/readyz`);
      expect(await coreReady.json()).toMatchObject({ status: 'ready' });
      const put = await fetch(`http://127.0.0.1:${corePort}/v1/items/e2e-1`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"categories":["x"]}' });
      expect(put.status).toBe(201);
      const edge = await fetch(`http://127.0.0.1:${edgePort}/healthz`);
      expect(await edge.json()).toEqual({ status: 'ok', tier: 'edge', kernels: { wasm: 'ok' }, apiKeys: 'off' });
      const ready = await fetch(`http://127.0.0.1:${edgePort}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', core: `http://127.0.0.1:${corePort}` });
    } finally {
      child.kill('SIGINT');
    }
    expect(await exit).toBe(0);
    await rm(data, { recursive: true, force: true });
    await expect(fetch(`http://127.0.0.1:${corePort}/healthz`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${edgePort}/healthz`)).rejects.toThrow();
  }, 300_000);
});
