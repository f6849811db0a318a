// Global setup of the `edge` test project: provisions a real core for the Worker's tests to talk to.
// Runs in Node (the vitest main process), not in workerd: it generates a small dataset, imports it,
// trains a model with `kestrel train --from-bus`, starts `kestrel serve` on a free port as a child
// process and hands its URL to the tests with `provide` (they read it with `inject`). Teardown stops
// the core and removes the temporary folder. Every step goes through the real CLI (`bin/kestrel.js`),
// the same way a user would run it. A second core serves a copy of the same data and model but
// requires an API key (TEST_CORE_API_KEY), for the tests of the edge's own key to the core.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { deadServer, freePort } from '../support/net.ts';
import { TEST_CORE_API_KEY } from './core-key.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the running core, e.g. http://127.0.0.1:40123. */
    coreUrl: string;
    /** Base URL of a core with the same model that answers /v1 only with TEST_CORE_API_KEY. */
    keyedCoreUrl: string;
    /** A URL on 127.0.0.1 where nothing listens: a core that is down. */
    deadCoreUrl: string;
    /** Users of the generated dataset, most active first. */
    users: string[];
  }
}

const BIN = fileURLToPath(new URL('../../bin/kestrel.js', import.meta.url));
const DATASET = ['--users', '150', '--items', '100', '--events', '8000', '--seed', '17'];
const READY_TIMEOUT_MS = 120_000;
const POLL_MS = 200;

/** Runs the CLI to completion; rejects with its output when it exits non-zero. */
function kestrel(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KESTREL_API_KEYS: '' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`kestrel ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}

/** Waits until the core serves a slate (the model is loaded), or fails with what it printed. */
async function waitForSlates(url: string, user: string, child: ChildProcess, output: () => string, apiKey?: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`kestrel serve exited ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${url}/v1/candidates/${encodeURIComponent(user)}?n=500`, { headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` } });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`the core at ${url} served no slate within ${READY_TIMEOUT_MS} ms (last: ${last}):\n${output()}`);
}

/** The users with the most events, from the generated events.jsonl. */
async function activeUsers(file: string, count: number): Promise<string[]> {
  const tally = new Map<string, number>();
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (line === '') continue;
    const { userId } = JSON.parse(line) as { userId: string };
    tally.set(userId, (tally.get(userId) ?? 0) + 1);
  }
  return [...tally].sort((a, b) => b[1] - a[1]).slice(0, count).map(([u]) => u);
}

interface RunningCore {
  child: ChildProcess;
  output: () => string;
}

/** `kestrel serve` on `data`, with KESTREL_API_KEYS as given ('' for none). */
function serve(data: string, port: number, apiKeys: string): RunningCore {
  const child = spawn(process.execPath, [BIN, 'serve', '--data', data, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KESTREL_API_KEYS: apiKeys },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), 'kestrel-edge-'));
  const generated = join(root, 'generated');
  const data = join(root, 'core');
  const keyedData = join(root, 'keyed-core');
  const children: ChildProcess[] = [];
  // The dead core holds its port for the whole run (a free port left unbound could be taken by a core).
  const dead = await deadServer();
  const teardown = async (): Promise<void> => {
    await dead.close();
    await Promise.all(children.filter((c) => c.exitCode === null).map((c) => {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGINT');
      return exited;
    }));
    await rm(root, { recursive: true, force: true });
  };
  try {
    await kestrel(['generate', ...DATASET, '--out', generated]);
    await kestrel(['import', '--data', data, generated]);
    await kestrel(['train', '--from-bus', '--data', data, '--out', join(data, 'models'), '--epochs', '2']);
    // A copy taken before either core runs: two servers never share one event log.
    await cp(data, keyedData, { recursive: true });
    const users = await activeUsers(join(generated, 'events.jsonl'), 10);
    const [port, keyedPort, deadPort] = [await freePort(), await freePort(), dead.port];
    const url = `http://127.0.0.1:${port}`;
    const keyedUrl = `http://127.0.0.1:${keyedPort}`;
    const open = serve(data, port, '');
    const keyed = serve(keyedData, keyedPort, JSON.stringify({ keys: [{ key: TEST_CORE_API_KEY, scopes: ['read', 'write'], name: 'edge-tests' }] }));
    children.push(open.child, keyed.child);
    await Promise.all([
      waitForSlates(url, users[0] ?? 'nobody', open.child, open.output),
      waitForSlates(keyedUrl, users[0] ?? 'nobody', keyed.child, keyed.output, TEST_CORE_API_KEY),
    ]);
    project.provide('coreUrl', url);
    project.provide('keyedCoreUrl', keyedUrl);
    project.provide('deadCoreUrl', `http://127.0.0.1:${deadPort}`);
    project.provide('users', users);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
