import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseCommandLine, parsePort } from '../command.ts';
import type { Command } from '../command.ts';
import { startFullCore } from './serve.ts';

const help = `Usage: kestrel start [--core-port 8080] [--edge-port 8787] [--host 127.0.0.1] [--data DIR] [--kafka BROKERS] [--api-keys FILE]
                     [--event-types FILE]

Starts Kestrel on its embedded defaults: the regional core (Node: REST API, SQLite catalog,
embedded event log and its projector, as \`kestrel serve\` runs it) and the edge Worker (workerd,
through wrangler dev), each on loopback, then prints their URLs and health checks. Runs until
interrupted (Ctrl-C), then stops both and closes the bus and the catalog.

Options:
      --core-port <port>  Port of the core (default 8080).
      --edge-port <port>  Port of the edge Worker (default 8787).
      --host <address>    Address both listen on (default 127.0.0.1).
      --data <dir>        Data folder of the core (default $KESTREL_DATA_DIR or .kestrel).
      --kafka <brokers>   Events to Kafka (host:port,...) instead of the embedded log.
      --api-keys <file>   API keys of the core (default $KESTREL_API_KEYS; none: open, loopback only).
      --event-types <file>
                          Interaction types and weights the core accepts (see \`kestrel serve --help\`).
  -h, --help              Show this help.`;

const EDGE_READY_TIMEOUT_MS = 60_000;
const root = fileURLToPath(new URL('../../', import.meta.url));

async function health(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return `${res.status} ${await res.text()}`;
}

/** Runs the Worker under `wrangler dev` and resolves once it answers /healthz. */
async function startEdge(host: string, edgePort: number, coreUrl: string): Promise<ChildProcess> {
  const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
  const child = spawn(process.execPath, [wrangler, 'dev', '--ip', host, '--port', String(edgePort),
    '--var', `CORE_URL:${coreUrl}`, '--show-interactive-dev-session=false', '--log-level', 'warn'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    // No telemetry and no fetch of the Request.cf template: Kestrel never downloads at run time.
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`wrangler dev exited with code ${code}`))));
  const deadline = Date.now() + EDGE_READY_TIMEOUT_MS;
  const url = `http://${host}:${edgePort}/healthz`;
  for (;;) {
    const answered = await Promise.race([exited, health(url).then(() => true, () => false)]);
    if (answered) return child;
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`the edge did not answer ${url} within ${EDGE_READY_TIMEOUT_MS / 1000}s`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export const startCommand: Command = {
  name: 'start',
  summary: 'Start the core and the edge locally on embedded defaults',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      'core-port': { type: 'string' },
      'edge-port': { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      kafka: { type: 'string' },
      'api-keys': { type: 'string' },
      'event-types': { type: 'string' },
    }, false);
    const host = values.host ?? '127.0.0.1';
    const corePort = parsePort(values['core-port'], 8080, '--core-port', 1);
    const edgePort = parsePort(values['edge-port'], 8787, '--edge-port', 1);

    const running = await startFullCore({ port: corePort, host, data: values.data, kafka: values.kafka, apiKeys: values['api-keys'], eventTypes: values['event-types'] });
    const { core } = running;
    let edge: ChildProcess;
    try {
      edge = await startEdge(host, edgePort, core.url);
    } catch (err) {
      await running.close();
      throw err;
    }
    const edgeUrl = `http://${host}:${edgePort}`;
    console.log([
      'Kestrel is running (embedded defaults).',
      `  core  ${core.url}   GET /healthz -> ${await health(`${core.url}/healthz`)}`,
      `        ${core.url}   GET /readyz  -> ${await health(`${core.url}/readyz`)}`,
      `        ${running.runtime.describe}`,
      `  edge  ${edgeUrl}   GET /healthz -> ${await health(`${edgeUrl}/healthz`)}`,
      `        ${edgeUrl}   GET /readyz  -> ${await health(`${edgeUrl}/readyz`)}`,
      'Press Ctrl-C to stop.',
    ].join('\n'));

    return new Promise<number>((resolve) => {
      let stopping = false;
      const stop = async (code: number) => {
        if (stopping) return;
        stopping = true;
        edge.kill('SIGTERM');
        try {
          await running.close();
        } catch (err) {
          console.error(`kestrel start: closing the core failed: ${err instanceof Error ? err.message : String(err)}`);
          code = 1;
        }
        resolve(code);
      };
      process.once('SIGINT', () => void stop(0));
      process.once('SIGTERM', () => void stop(0));
      edge.once('exit', (code) => {
        if (!stopping) console.error(`kestrel start: the edge exited (code ${code}); stopping the core`);
        void stop(stopping ? 0 : 1);
      });
    });
  },
};
