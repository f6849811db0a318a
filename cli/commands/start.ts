import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CURRENT_FILE } from '../../core/models/registry.ts';
import { dataPaths } from '../../core/paths.ts';
import type { CoreRuntime } from '../../core/runtime.ts';
import { writeDataset } from '../../training/data/write.ts';
import { startEdgeRuntime } from '../edge-runtime.ts';
import type { EdgeRuntime } from '../edge-runtime.ts';
import { parseCommandLine, parsePort, UsageError } from '../command.ts';
import type { Command } from '../command.ts';
import { importCommand } from './import.ts';
import { startFullCore } from './serve.ts';
import { trainCommand } from './train.ts';

function positiveInteger(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive whole number, got '${value}'`);
  return n;
}

const help = `Usage: kestrel start [--movielens DIR] [--core-port 8080] [--edge-port 8787] [--host 127.0.0.1] [--data DIR]
                     [--kafka BROKERS] [--api-keys FILE] [--event-types FILE] [--no-quickstart]

Starts Kestrel on its embedded defaults: the regional core (Node: REST API, SQLite catalog,
embedded event log and its projector, recommendations, as \`kestrel serve\` runs it) and the edge
Worker (workerd, as \`kestrel edge\` runs it), each on loopback, then prints their URLs, health checks
and a few ready-to-paste requests with their answers. Runs until interrupted (Ctrl-C), then stops
both and closes the bus and the catalog.

Quickstart: when the data folder has no model yet (<data>/models), it first fills an empty
catalog (a generated dataset, or the MovieLens release given by --movielens), then trains a model
from it (\`kestrel train --from-bus\`), so the core starts serving recommendations at once.

Options:
      --core-port <port>  Port of the core (default 8080).
      --edge-port <port>  Port of the edge Worker (default 8787).
      --host <address>    Address both listen on (default 127.0.0.1).
      --data <dir>        Data folder of the core (default $KESTREL_DATA_DIR or .kestrel).
      --kafka <brokers>   Events to Kafka (host:port,...) instead of the embedded log.
      --api-keys <file>   API keys of the core (default $KESTREL_API_KEYS; none: open, loopback only).
      --event-types <file>
                          Interaction types and weights the core accepts (see \`kestrel serve --help\`).
      --movielens <dir>   Quickstart on a MovieLens release (ml-100k, ml-1m, ...) instead of generated data.
      --users/--items/--events <n>
                          Size of the generated quickstart data (default 1000 / 400 / 60000).
      --no-quickstart     Start without importing or training anything.
  -h, --help              Show this help.`;

const EDGE_READY_TIMEOUT_MS = 60_000;

interface QuickstartOptions {
  movielens?: string;
  users: number;
  items: number;
  events: number;
  eventTypes?: string;
}

/**
 * Makes sure the data folder has a model: fills an empty catalog (generated data or a MovieLens
 * release) and trains from it. A folder that already has a model is left as it is.
 */
async function quickstart(data: string | undefined, options: QuickstartOptions): Promise<void> {
  const paths = dataPaths(data);
  const models = join(paths.dir, 'models');
  if (existsSync(join(models, CURRENT_FILE))) return;
  const run = async (command: Command, argv: string[]) => {
    const code = await command.run(argv);
    if (code !== 0) throw new Error(`quickstart: kestrel ${command.name} ${argv.join(' ')} failed (exit ${code})`);
  };
  const types = options.eventTypes ? ['--event-types', options.eventTypes] : [];
  if (!(await catalogHasEvents(paths.catalog))) {
    let source = options.movielens;
    if (source === undefined) {
      source = join(paths.dir, 'quickstart-data');
      console.log(`Quickstart: generating ${options.users} users, ${options.items} items and ${options.events} events into ${source}`);
      await writeDataset(source, { users: options.users, items: options.items, events: options.events, seed: 1 }, { format: 'jsonl' });
    }
    console.log(`Quickstart: importing ${source} into ${paths.dir}`);
    await run(importCommand, ['--data', paths.dir, ...types, source]);
  }
  console.log(`Quickstart: training a model from the catalog into ${models}`);
  await run(trainCommand, ['--from-bus', '--data', paths.dir, '--out', models, ...types]);
}

async function catalogHasEvents(path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT 1 FROM interactions LIMIT 1').get() !== undefined;
  } finally {
    db.close();
  }
}

/** A few requests a newcomer can paste, with the core's answers, shortened. */
async function exampleRequests(coreUrl: string, edgeUrl: string, runtime: CoreRuntime): Promise<string[]> {
  if (runtime.serving?.host.engine === undefined) return [];
  const user = runtime.catalog.db.prepare<[], { user_id: string }>('SELECT user_id FROM interactions GROUP BY user_id ORDER BY count(*) DESC LIMIT 1').get()?.user_id;
  const item = runtime.catalog.db.prepare<[], { item_id: string }>('SELECT item_id FROM interactions GROUP BY item_id ORDER BY count(*) DESC LIMIT 1').get()?.item_id;
  if (user === undefined || item === undefined) return [];
  const lines = ['Try:'];
  const paths = [`/v1/recommendations/${encodeURIComponent(user)}?n=5`, `/v1/items/${encodeURIComponent(item)}/similar?n=5`, '/v1/popular?n=5', '/v1/recommendations/a-new-user?n=5'];
  const urls = [...paths.map((p) => `${coreUrl}${p}`), `${edgeUrl}${paths[0] ?? ''}`];
  for (const url of urls) {
    let answer: string;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json()) as { items?: { id: string; score: number }[]; mode?: string; served_from?: string };
      const how = body.mode ?? (body.served_from !== undefined ? `edge, served from ${body.served_from}` : undefined);
      answer = `${res.status} ${how ? `${how}: ` : ''}${(body.items ?? []).map((i) => i.id).join(', ')}`;
    } catch (error) {
      answer = `failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    lines.push(`  curl '${url}'`, `    -> ${answer}`);
  }
  return lines;
}
async function health(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return `${res.status} ${await res.text()}`;
}

/**
 * Runs the Worker in workerd (cli/edge-runtime.ts: no wrangler dev proxy in front) and resolves
 * once it answers /healthz. Its local state (Cache API slates, session Durable Objects and their
 * outboxes) lives in `stateDir`, beside the core's data: a new data folder starts with an empty
 * edge, not slates of another catalog.
 */
async function startEdge(host: string, edgePort: number, coreUrl: string, stateDir: string): Promise<EdgeRuntime> {
  const edge = await startEdgeRuntime({ host, port: edgePort, coreUrl, stateDir });
  const deadline = Date.now() + EDGE_READY_TIMEOUT_MS;
  const url = `${edge.url}/healthz`;
  for (;;) {
    if (await health(url).then(() => true, () => false)) return edge;
    if (Date.now() > deadline) {
      await edge.close();
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
      movielens: { type: 'string' },
      users: { type: 'string' },
      items: { type: 'string' },
      events: { type: 'string' },
      'no-quickstart': { type: 'boolean' },
    }, false);
    const host = values.host ?? '127.0.0.1';
    const corePort = parsePort(values['core-port'], 8080, '--core-port', 1);
    const edgePort = parsePort(values['edge-port'], 8787, '--edge-port', 1);

    if (values['no-quickstart'] !== true) {
      await quickstart(values.data, {
        ...(values.movielens ? { movielens: values.movielens } : {}),
        users: positiveInteger(values.users, '--users', 1000),
        items: positiveInteger(values.items, '--items', 400),
        events: positiveInteger(values.events, '--events', 60_000),
        eventTypes: values['event-types'],
      });
    }
    const running = await startFullCore({ port: corePort, host, data: values.data, kafka: values.kafka, apiKeys: values['api-keys'], eventTypes: values['event-types'] });
    const { core } = running;
    let edge: EdgeRuntime;
    try {
      edge = await startEdge(host, edgePort, core.url, join(running.runtime.paths.dir, 'edge-state'));
    } catch (err) {
      await running.close();
      throw err;
    }
    const edgeUrl = edge.url;
    console.log([
      'Kestrel is running (embedded defaults).',
      `  core  ${core.url}   GET /healthz -> ${await health(`${core.url}/healthz`)}`,
      `        ${core.url}   GET /readyz  -> ${await health(`${core.url}/readyz`)}`,
      `        ${running.runtime.describe}`,
      `  edge  ${edgeUrl}   GET /healthz -> ${await health(`${edgeUrl}/healthz`)}`,
      `        ${edgeUrl}   GET /readyz  -> ${await health(`${edgeUrl}/readyz`)}`,
      ...(await exampleRequests(core.url, edgeUrl, running.runtime)),
      'Press Ctrl-C to stop.',
    ].join('\n'));

    return new Promise<number>((resolve) => {
      let stopping = false;
      const stop = async (code: number) => {
        if (stopping) return;
        stopping = true;
        try {
          await edge.close();
        } catch (err) {
          console.error(`kestrel start: stopping the edge failed: ${err instanceof Error ? err.message : String(err)}`);
          code = 1;
        }
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
    });
  },
};
