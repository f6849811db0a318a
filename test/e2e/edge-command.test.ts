// `kestrel edge` for real: the Worker in workerd (cli/edge-runtime.ts, no wrangler dev proxy), in
// front of a real core started with the CLI on generated data. Checks what a user sees over HTTP:
// health, a miss then a hit, an event kept by the session Durable Object (its impressions move the
// item down) and delivered to the core, and that a restart on the same state folder still has the
// cached slate and the session. The first run is the CLI command (stopped with SIGINT); the restart
// goes through the module the command uses.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEdgeRuntime } from '../../cli/edge-runtime.ts';
import { freePort } from '../support/net.ts';

const BIN = fileURLToPath(new URL('../../bin/kestrel.js', import.meta.url));
const DATASET = ['--users', '120', '--items', '80', '--events', '6000', '--seed', '23'];
/** One arm, relevance order, no exploration: the order depends on the scores and the session alone. */
const EXPERIMENTS = JSON.stringify([{ id: 'e2e', arms: [{ name: 'relevance', weight: 1, params: { mmrLambda: 1, exploreShare: 0 } }] }]);
const USER = 'u1';
const READY_TIMEOUT_MS = 120_000;

interface Recommendations {
  items: { id: string }[];
  served_from: string;
}

function kestrel(args: string[]): void {
  execFileSync(process.execPath, [BIN, ...args], { stdio: 'pipe', env: { ...process.env, KESTREL_API_KEYS: '' } });
}

/** Starts a CLI process and resolves once its output contains `ready`. */
async function running(args: string[], ready: string): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KESTREL_API_KEYS: '' } });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!output.includes(ready)) {
    if (child.exitCode !== null) throw new Error(`kestrel ${args.join(' ')} exited ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`kestrel ${args.join(' ')} did not print '${ready}':\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGINT');
  return exited;
}

async function recommendations(edgeUrl: string): Promise<Recommendations> {
  const res = await fetch(`${edgeUrl}/v1/recommendations/${USER}?n=10`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as Recommendations;
}

describe('kestrel edge', () => {
  let root = '';
  let coreUrl = '';
  let core: ChildProcess | undefined;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kestrel-edge-e2e-'));
    const data = join(root, 'core');
    kestrel(['generate', ...DATASET, '--out', join(root, 'generated')]);
    kestrel(['import', '--data', data, join(root, 'generated')]);
    kestrel(['train', '--from-bus', '--data', data, '--out', join(data, 'models'), '--epochs', '2']);
    const port = await freePort();
    coreUrl = `http://127.0.0.1:${port}`;
    core = (await running(['serve', '--data', data, '--port', String(port)], 'Press Ctrl-C to stop.')).child;
    // Serving once the model is loaded: the core hands out slates.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await fetch(`${coreUrl}/v1/candidates/${USER}?n=10`).catch(() => undefined))?.status !== 200) {
      if (Date.now() > deadline) throw new Error(`the core at ${coreUrl} served no slate within ${READY_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    if (core) await stop(core);
    await rm(root, { recursive: true, force: true });
  });

  it('serves misses, hits and events in workerd, and keeps its cache and sessions across a restart', async () => {
    const state = join(root, 'edge-state');
    const port = await freePort();
    const edgeUrl = `http://127.0.0.1:${port}`;
    const edge = await running(['edge', '--core', coreUrl, '--port', String(port), '--state', state, '--var', `EXPERIMENTS=${EXPERIMENTS}`], 'Press Ctrl-C to stop.');
    let top: string | undefined;
    try {
      expect(edge.output()).toContain(`Kestrel edge is running in workerd at ${edgeUrl}`);
      const health = await fetch(`${edgeUrl}/healthz`);
      expect(await health.json()).toMatchObject({ status: 'ok', tier: 'edge', kernels: { wasm: 'ok' } });
      const ready = await fetch(`${edgeUrl}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready', core: coreUrl });

      const miss = await recommendations(edgeUrl);
      expect(miss.served_from).toBe('core');
      expect(miss.items).toHaveLength(10);
      const hit = await recommendations(edgeUrl);
      expect(hit.served_from).toBe('edge-cache');
      expect(hit.items.map((i) => i.id)).toEqual(miss.items.map((i) => i.id));

      // Impressions of the top item go to the user's SessionState object, which counts them (the
      // shown penalty moves the item down) and forwards them to the core (`delivered`: the core
      // answered 2xx).
      top = hit.items[0]?.id;
      if (top === undefined) throw new Error('no recommendations');
      const item = top;
      const events = Array.from({ length: 30 }, (_, i) => ({ id: `edge-e2e-${i}`, type: 'impression', userId: USER, itemId: item, timestamp: Date.now() }));
      const posted = await fetch(`${edgeUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
      expect(posted.status).toBe(200);
      expect(await posted.json()).toMatchObject({ accepted: 30, rejected: 0, delivery: { delivered: 30, pending: 0 } });
      const afterEvents = await recommendations(edgeUrl);
      expect(afterEvents.served_from).toBe('edge-cache');
      expect(afterEvents.items[0]?.id).not.toBe(top);
    } finally {
      expect(await stop(edge.child)).toBe(0);
    }
    // Stopped by its own handler (workerd disposed, the bundle removed), not by a library's exit on SIGINT.
    expect(edge.output()).toContain('Kestrel edge stopped.');
    await expect(fetch(`${edgeUrl}/healthz`)).rejects.toThrow();

    // Same state folder, a fresh workerd: the slate is still cached and the session still counts the impressions.
    const restarted = await startEdgeRuntime({ port: 0, coreUrl, stateDir: state, vars: { EXPERIMENTS } });
    try {
      const after = await recommendations(restarted.url);
      expect(after.served_from).toBe('edge-cache');
      expect(after.items[0]?.id).not.toBe(top);
    } finally {
      await restarted.close();
    }
    await expect(fetch(`${restarted.url}/healthz`)).rejects.toThrow();
  }, 180_000);
});
