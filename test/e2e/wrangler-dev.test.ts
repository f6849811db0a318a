// The development path stays working: the Worker under `wrangler dev` (local mode, state in a
// temporary folder) answers its health check with the WASM kernel running, takes an event into the
// session Durable Object, and, with no core behind it, still answers a recommendation with 200 and
// a warning (the fallback). `kestrel edge` (test/e2e/edge-command.test.ts) is what serves; this is
// the loop a developer edits in.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadServer, freePort } from '../support/net.ts';

const READY_TIMEOUT_MS = 120_000;

describe('the edge under wrangler dev', () => {
  let child: ChildProcess | undefined;
  let state = '';
  let url = '';
  let output = '';
  let dead: Awaited<ReturnType<typeof deadServer>> | undefined;

  beforeAll(async () => {
    state = await mkdtemp(join(tmpdir(), 'kestrel-wrangler-dev-'));
    dead = await deadServer();
    const [port, deadCore] = [await freePort(), dead.port];
    url = `http://127.0.0.1:${port}`;
    const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
    child = spawn(process.execPath, [wrangler, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', state,
      '--var', `CORE_URL:http://127.0.0.1:${deadCore}`, '--var', 'CORE_TIMEOUT_MS:500'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // No update check, no telemetry: nothing leaves the machine.
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_HIDE_BANNER: 'true', CI: '1' },
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`wrangler dev did not answer ${url}/healthz:\n${output}`);
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }, READY_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    await rm(state, { recursive: true, force: true });
    await dead?.close();
  });

  it('runs the WASM kernel, keeps an event in the session, and falls back without a core', async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ status: 'ok', tier: 'edge', kernels: { wasm: 'ok' } });

    const event = { id: `wd-${Date.now()}`, type: 'click', userId: 'dev-user', itemId: 'dev-item', timestamp: Date.now() };
    const posted = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
    const body = await posted.json() as { accepted: number; delivery: { pending: number } };
    expect(posted.status, JSON.stringify(body)).toBe(200);
    // Stored in the session's outbox, waiting for a core that is not there.
    expect(body).toMatchObject({ accepted: 1, delivery: { pending: 1 } });

    const res = await fetch(`${url}/v1/recommendations/dev-user?n=5`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ served_from: 'fallback', items: [], warning: expect.stringContaining('unreachable') });
  });
});
