import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { infraServices, serviceStatus } from '../../scripts/infra.ts';
import { parseCommandLine } from '../command.ts';
import type { Command } from '../command.ts';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

interface Check {
  what: string;
  /** Resolves to what was found; throws with what is wrong. */
  probe: () => Promise<string>;
  fix: string;
}

const help = `Usage: kestrel doctor

Prints what Kestrel needs on this machine, what is installed and running, and for anything
missing the command that fixes it. Exits 0 when everything is in place, 1 otherwise.

Options:
  -h, --help  Show this help.`;

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const MIN_NODE = [20, 3];
const MIN_JAVA = 17;

async function versionOf(cmd: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await run(cmd, args);
  const first = `${stdout}${stderr}`.split('\n').find((l) => l.trim() !== '');
  return (first ?? '').replace(/\x1b\[[0-9;]*m/g, '').trim();
}

/** `name version` of an installed package, found from its entry point (exports may hide package.json). */
function installed(pkg: string): string {
  for (let dir = dirname(require.resolve(pkg)); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const meta = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (meta.name === pkg) return `${pkg} ${meta.version ?? '?'}`;
  }
  throw new Error(`${pkg} resolves, but its package.json was not found`);
}

/** The package loads in this Node (native addons included); `use` exercises it further. */
function loads(pkg: string, use?: (mod: unknown) => void): () => Promise<string> {
  return async () => {
    const mod: unknown = require(pkg);
    use?.(mod);
    return installed(pkg);
  };
}

const checks: Check[] = [
  {
    what: 'Node.js',
    fix: 'install Node.js 20 (Debian: apt-get install nodejs npm)',
    probe: async () => {
      const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
      const ok = major > (MIN_NODE[0] ?? 0) || (major === MIN_NODE[0] && minor >= (MIN_NODE[1] ?? 0));
      if (!ok) throw new Error(`found ${process.versions.node}, need >= ${MIN_NODE.join('.')}`);
      return process.versions.node;
    },
  },
  {
    what: 'SQLite (better-sqlite3)',
    fix: 'npm ci',
    probe: loads('better-sqlite3', (Database) => {
      if (typeof Database !== 'function') throw new Error('unexpected export');
      new (Database as new (f: string) => { close(): void })(':memory:').close();
    }),
  },
  { what: 'embedded HNSW (hnswlib-node)', fix: 'npm ci', probe: loads('hnswlib-node') },
  { what: 'ONNX Runtime (node)', fix: 'npm ci', probe: loads('onnxruntime-node') },
  { what: 'ONNX Runtime (web)', fix: 'npm ci', probe: async () => installed('onnxruntime-web') },
  { what: 'Dawn WebGPU (webgpu)', fix: 'npm ci', probe: loads('webgpu') },
  { what: 'workerd (wrangler)', fix: 'npm ci', probe: async () => installed('wrangler') },
  {
    what: 'WASM kernels',
    fix: 'npm run build:wasm',
    probe: async () => {
      const file = new URL('../../wasm/build/release.wasm', import.meta.url);
      if (!existsSync(file)) throw new Error('wasm/build/release.wasm is missing');
      return 'wasm/build/release.wasm';
    },
  },
  {
    what: 'Python 3 with venv (Milvus)',
    fix: 'apt-get install python3 python3-venv',
    probe: async () => {
      await run('python3', ['-c', 'import venv, ensurepip']);
      return versionOf('python3', ['--version']);
    },
  },
  {
    what: `Java ${MIN_JAVA}+ (Kafka)`,
    fix: 'apt-get install openjdk-17-jre-headless',
    probe: async () => {
      const v = await versionOf('java', ['-version']);
      const major = Number(/version "(\d+)/.exec(v)?.[1] ?? 0);
      if (major < MIN_JAVA) throw new Error(`found '${v}', need ${MIN_JAVA}+`);
      return v;
    },
  },
  { what: 'Maven (fetches the Kafka jars)', fix: 'apt-get install maven', probe: () => versionOf('mvn', ['-v']) },
  {
    what: 'Vulkan loader + SwiftShader (CPU WebGPU)',
    fix: 'bash scripts/webgpu.sh start',
    probe: async () => {
      const { stdout } = await run('ldconfig', ['-p']);
      if (!stdout.includes('libvulkan.so.1')) throw new Error('libvulkan.so.1 not found');
      if (!existsSync(SWIFTSHADER_ICD)) throw new Error(`${SWIFTSHADER_ICD} not found (Debian package chromium)`);
      return `libvulkan.so.1, ${SWIFTSHADER_ICD}`;
    },
  },
  ...infraServices.map((service): Check => ({
    what: service === 'webgpu' ? 'webgpu driver usable by Dawn' : `${service} running`,
    fix: `npx kestrel infra up ${service}`,
    probe: async () => {
      const { running, line } = await serviceStatus(service);
      if (!running) throw new Error(line || 'not running');
      return line;
    },
  })),
];

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Show what is installed and running, and how to fix what is missing',
  help,
  async run(argv) {
    parseCommandLine(argv, {}, false);
    const results = await Promise.all(checks.map(async (c) => {
      try {
        return { c, ok: true, text: await c.probe() };
      } catch (err) {
        return { c, ok: false, text: err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err) };
      }
    }));
    const width = Math.max(...checks.map((c) => c.what.length));
    for (const { c, ok, text } of results) {
      console.log(`${ok ? 'ok     ' : 'MISSING'}  ${c.what.padEnd(width)}  ${text}${ok ? '' : `\n         ${' '.repeat(width)}  fix: ${c.fix}`}`);
    }
    const missing = results.filter((r) => !r.ok).length;
    console.log(missing === 0 ? '\nEverything Kestrel needs is here.' : `\n${missing} missing; run the fix commands above.`);
    return missing === 0 ? 0 : 1;
  },
};
