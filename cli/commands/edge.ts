import { resolve } from 'node:path';
import { dataPaths } from '../../core/paths.ts';
import { startEdgeRuntime } from '../edge-runtime.ts';
import { parseCommandLine, parsePort, UsageError } from '../command.ts';
import type { Command } from '../command.ts';

const help = `Usage: kestrel edge [--core URL] [--port 8787] [--host 127.0.0.1] [--data DIR | --state DIR] [--var NAME=VALUE ...]

Runs the edge Worker (edge/index.ts, with the bindings of wrangler.toml) locally in workerd, with
no proxy in front of it: workerd itself listens on the port (\`wrangler dev\`, still there for
development, adds a proxy hop: ~1.5 ms a request at concurrency 1 and 6-13 ms at 8 on a 2-core
machine, \`npm run bench -- edge\`). The Worker is bundled as \`wrangler deploy\`
would, without the network. Its local state (cached slates, session Durable Objects, KV) is kept
in a folder across runs. Prints the URL and runs until interrupted (Ctrl-C).

Options:
      --core <url>      The core the edge talks to (default: CORE_URL of wrangler.toml, http://127.0.0.1:8080).
      --port <port>     Port to listen on (default 8787; 0 picks a free one).
      --host <address>  Address to listen on (default 127.0.0.1).
      --data <dir>      Keep the edge's state in <dir>/edge-state, as \`kestrel start\` does
                        (default data folder: $KESTREL_DATA_DIR or .kestrel).
      --state <dir>     Keep the edge's state in <dir> itself.
      --var <name=value>
                        Override one of wrangler.toml's [vars], e.g. --var CORE_TIMEOUT_MS=500 or
                        --var EXPERIMENTS='[...]' (repeatable).
  -h, --help            Show this help.`;

function parseVar(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq < 1) throw new UsageError(`--var takes NAME=VALUE, got '${text}'`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

export const edgeCommand: Command = {
  name: 'edge',
  summary: 'Run the edge Worker locally in workerd (no wrangler dev proxy)',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      core: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      state: { type: 'string' },
      var: { type: 'string', multiple: true },
    }, false);
    if (values.data !== undefined && values.state !== undefined) throw new UsageError('give --data or --state, not both');
    if (values.core !== undefined && !URL.canParse(values.core)) throw new UsageError(`--core must be a URL such as http://127.0.0.1:8080, got '${values.core}'`);
    const port = parsePort(values.port, 8787, '--port');
    const host = values.host ?? '127.0.0.1';
    const stateDir = values.state !== undefined ? resolve(values.state) : resolve(dataPaths(values.data).dir, 'edge-state');

    const vars = Object.fromEntries((values.var ?? []).map(parseVar));
    const edge = await startEdgeRuntime({ host, port, stateDir, vars, ...(values.core !== undefined ? { coreUrl: values.core } : {}) });
    console.log([
      `Kestrel edge is running in workerd at ${edge.url}`,
      `  core   ${values.core ?? 'CORE_URL of wrangler.toml'}`,
      `  state  ${stateDir}`,
      `  try    curl '${edge.url}/healthz'`,
      'Press Ctrl-C to stop.',
    ].join('\n'));
    return new Promise<number>((done) => {
      const stop = () => {
        edge.close().then(() => {
          console.log('Kestrel edge stopped.');
          done(0);
        }, (err: unknown) => {
          console.error(`kestrel edge: stopping workerd failed: ${err instanceof Error ? err.message : String(err)}`);
          done(1);
        });
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
