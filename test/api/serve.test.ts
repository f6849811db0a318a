// `kestrel serve` as a process: the full core on a data dir, SIGINT closes the projector, the bus
// and the catalog, and a restart on the same dir has everything.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { event } from './harness.ts';

const bin = fileURLToPath(new URL('../../bin/kestrel.js', import.meta.url));

async function serve(data: string, extra: string[] = []): Promise<{ url: string; output: () => string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data', data, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KESTREL_API_KEYS: '' } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await expect.poll(() => output, { timeout: 30_000, interval: 100 }).toContain('Press Ctrl-C to stop.');
  const url = /listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '';
  return { url, output: () => output, stop: () => { child.kill('SIGINT'); return exit; } };
}

describe('kestrel serve', () => {
  it('runs the full core, warns that it is open, and shuts down cleanly', async () => {
    const data = await mkdtemp(join(tmpdir(), 'kestrel-serve-'));
    try {
      const first = await serve(data);
      expect(first.output()).toContain('WARNING: no API keys configured');
      expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
      const post = await fetch(`${first.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: [event(1, 'u1', 'i1'), event(2, 'u1', 'i2')] }) });
      expect(post.status).toBe(200);
      expect(await first.stop()).toBe(0);

      const second = await serve(data);
      try {
        await expect.poll(async () => (await (await fetch(`${second.url}/v1/items?limit=10`)).json() as { items: unknown[] }).items.length, { timeout: 10_000 }).toBe(2);
        const resend = await fetch(`${second.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event(1, 'u1', 'i1')) });
        expect(await resend.json()).toMatchObject({ accepted: 0, duplicate: 1 });
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  }, 60_000);

  it('accepts the event types of --event-types and refuses the others, naming them', async () => {
    const data = await mkdtemp(join(tmpdir(), 'kestrel-serve-'));
    try {
      const file = join(data, 'event-types.json');
      await writeFile(file, JSON.stringify({ eventTypes: [{ name: 'watch', weight: 2 }, { name: 'hide', weight: -3 }] }));
      const core = await serve(data, ['--event-types', file]);
      try {
        const post = (body: unknown) => fetch(`${core.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const ok = await post({ events: [{ ...event(1, 'u1', 'i1'), type: 'watch' }, { ...event(2, 'u1', 'i2'), type: 'hide' }] });
        expect(await ok.json()).toMatchObject({ accepted: 2 });
        const refused = await post({ ...event(3, 'u1', 'i3'), type: 'click' });
        expect(refused.status).toBe(422);
        expect(JSON.stringify(await refused.json())).toContain('click');
      } finally {
        expect(await core.stop()).toBe(0);
      }
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses to start on an event types file with a mistake, saying what to fix', async () => {
    const data = await mkdtemp(join(tmpdir(), 'kestrel-serve-'));
    try {
      const file = join(data, 'event-types.json');
      await writeFile(file, JSON.stringify({ eventTypes: [{ name: 'watch', weight: 'high' }] }));
      const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data', data, '--event-types', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(output).toContain('eventTypes[0].weight must be a number');
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  }, 30_000);
});
