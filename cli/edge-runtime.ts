// The edge Worker on the local machine, in workerd with no proxy in front of it (`kestrel edge`,
// and the edge of `kestrel start`). `wrangler dev` puts a proxy worker and its own HTTP hop in
// front of workerd (issue 6 measured ~15 ms a request at concurrency 8; `npm run bench -- edge`,
// 6-13 ms on the 2-core machine); this runs the Worker through
// Miniflare's API instead: Node only spawns and configures workerd, and workerd itself listens on
// the port. A request is answered by Miniflare's entry worker (in workerd; it adds the `cf` object
// and routes to our Worker over an in-process service binding), then by the Worker. With request
// logging off, Node's loopback server is reached only for a 500 that carries a stack (Miniflare's
// pretty error page), never on the ordinary path.
//
// Nothing about the Worker is written here twice: the bundle is what `wrangler deploy` would upload
// (its `--dry-run --outdir`, no network), and the bindings (vars, Durable Objects and their SQLite
// migrations, KV, ...) come from wrangler.toml through wrangler's own `unstable_readConfig` and
// `unstable_getMiniflareWorkerOptions`, so a binding added there is served here as it is.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerOptions } from 'miniflare';

const root = fileURLToPath(new URL('../', import.meta.url));
/** The Worker's configuration, shared with `wrangler dev` and `wrangler deploy`. */
export const WRANGLER_CONFIG = join(root, 'wrangler.toml');
const BUNDLE_TIMEOUT_MS = 120_000;

// Loaded on first use: together they take ~4 s to import, which every other CLI command would pay.
const loadWrangler = () => withoutSignalHandlers(() => import('wrangler'));
const loadMiniflare = () => import('miniflare');

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Runs `fn` and takes back the SIGINT/SIGTERM handlers it installed. Importing wrangler installs
 * one that calls `process.exit()` and each Miniflare one that exits with 130; either would end
 * `kestrel start` on Ctrl-C before the core closes its event log and catalog. Shutdown is the
 * caller's: it calls `close()`. (Miniflare's `exit` hook stays: workerd never outlives Node.)
 */
async function withoutSignalHandlers<T>(fn: () => Promise<T> | T): Promise<T> {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  try {
    return await fn();
  } finally {
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
      }
    }
  }
}

/** The Worker's compatibility date in its wrangler config, for other Workers served beside it. */
export async function compatibilityDate(configPath = WRANGLER_CONFIG): Promise<string | undefined> {
  return (await loadWrangler()).unstable_readConfig({ config: configPath }).compatibility_date;
}

export interface WorkerBundle {
  /** Folder holding the entry module and the modules it imports (the .wasm kernels). */
  dir: string;
  /** The entry module, an ES module file inside `dir`. */
  main: string;
  /** Every file wrangler would upload, with its size in bytes. */
  files: { name: string; bytes: number }[];
}

/**
 * Bundles the Worker exactly as `wrangler deploy` would (esbuild, `define`, module rules: the
 * `*.wasm` imports stay separate CompiledWasm modules) into `outDir`, without deploying or touching
 * the network.
 */
export async function bundleWorker(outDir: string, configPath = WRANGLER_CONFIG): Promise<WorkerBundle> {
  const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [wrangler, 'deploy', '--dry-run', '--config', configPath, '--outdir', outDir], {
      cwd: root,
      timeout: BUNDLE_TIMEOUT_MS,
      // No telemetry, and no banner, whose update check asks the npm registry for wrangler's latest
      // version: Kestrel never reaches the network at run time.
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_HIDE_BANNER: 'true', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_LOG: 'warn' },
    }, (err, stdout, stderr) => (err ? reject(new Error(`bundling the edge Worker (wrangler deploy --dry-run) failed: ${err.message}\n${stdout}${stderr}`)) : resolve()));
  });
  const config = (await loadWrangler()).unstable_readConfig({ config: configPath });
  if (config.main === undefined) throw new Error(`${configPath} names no \`main\` module for the Worker`);
  const main = join(outDir, basename(config.main).replace(/\.[cm]?[jt]sx?$/, '.js'));
  const files = [];
  for (const name of await readdir(outDir)) {
    if (name.endsWith('.map') || name === 'README.md') continue;
    files.push({ name, bytes: (await stat(join(outDir, name))).size });
  }
  return { dir: outDir, main, files };
}

export interface WorkerdServer {
  /** Base URL, e.g. http://127.0.0.1:8787 (the real port when 0 was asked for). */
  url: string;
  close(): Promise<void>;
}

export interface ListenOptions {
  host: string;
  port: number;
  /** Root of persistent local state (Cache API, Durable Objects, KV, ...); none: in memory. */
  persistRoot?: string;
}

/**
 * Serves one Worker from workerd on `host:port` through Miniflare, with request logging off so
 * that no request goes through Node (see the comment at the top). Warnings and errors of the
 * runtime are printed.
 */
export async function serveInWorkerd(worker: WorkerOptions, listen: ListenOptions): Promise<WorkerdServer> {
  const { Log, LogLevel, Miniflare } = await loadMiniflare();
  const mf = await withoutSignalHandlers(() => new Miniflare({
    host: listen.host,
    port: listen.port,
    ...(listen.persistRoot !== undefined ? { defaultPersistRoot: listen.persistRoot } : {}),
    logRequests: false,
    log: new Log(LogLevel.WARN),
    // The default `cf` object is fetched from workers.cloudflare.com; Kestrel never downloads at run time.
    cf: false,
    workers: [worker],
  }));
  let url: URL;
  try {
    url = await mf.ready;
  } catch (err) {
    await mf.dispose().catch(() => undefined);
    throw err;
  }
  return { url: url.origin, close: () => mf.dispose() };
}

export interface EdgeRuntimeOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default 8787; 0: any free port). */
  port?: number;
  /** The core the Worker talks to: overrides CORE_URL of wrangler.toml. */
  coreUrl?: string;
  /** Folder of the edge's local state: cached slates, session Durable Objects, KV. Kept across runs. */
  stateDir: string;
  /** Overrides of wrangler.toml's [vars] (e.g. EXPERIMENTS, CORE_TIMEOUT_MS). */
  vars?: Record<string, string>;
  /** Another wrangler config than the repository's wrangler.toml. */
  configPath?: string;
}

export interface EdgeRuntime extends WorkerdServer {
  /** The bundle being served (removed on close). */
  bundle: WorkerBundle;
}

/** Bundles the edge Worker and serves it from workerd with wrangler.toml's bindings; see the top of this file. */
export async function startEdgeRuntime(options: EdgeRuntimeOptions): Promise<EdgeRuntime> {
  const configPath = options.configPath ?? WRANGLER_CONFIG;
  const outDir = await mkdtemp(join(tmpdir(), 'kestrel-edge-bundle-'));
  try {
    const bundle = await bundleWorker(outDir, configPath);
    const { unstable_getMiniflareWorkerOptions, unstable_readConfig } = await loadWrangler();
    const config = unstable_readConfig({ config: configPath });
    const { workerOptions } = unstable_getMiniflareWorkerOptions(config);
    const vars = { ...options.vars, ...(options.coreUrl !== undefined ? { CORE_URL: options.coreUrl } : {}) };
    const server = await serveInWorkerd({
      ...workerOptions,
      // The name keys the Durable Objects' storage: the same as `wrangler dev`'s, so state it kept still opens.
      name: config.name,
      modules: true,
      scriptPath: bundle.main,
      modulesRoot: bundle.dir,
      bindings: { ...workerOptions.bindings, ...vars },
    }, {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 8787,
      // wrangler dev's layout (`--persist-to DIR` keeps state in DIR/v3), so either can reopen it.
      persistRoot: join(options.stateDir, 'v3'),
    });
    return {
      ...server,
      bundle,
      async close() {
        try {
          await server.close();
        } finally {
          await rm(outDir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await rm(outDir, { recursive: true, force: true });
    throw err;
  }
}
