// The engine end to end on a synthetic catalog of 1,000,000 items (issue 5, "A scale run"): the
// `serve` suite's figures for a core whose catalog is ~600 times ml-100k's.
// Data, generated once into the OS temp dir and reused: `kestrel generate` (KESTREL_SCALE_SERVE_ITEMS
// items, default 1,000,000; 2,000 users; 300,000 events), `kestrel import`, and `kestrel train
// --from-bus --epochs 3` (the model's relevance is not what this measures; epochs are capped so
// the training fits in the run). Then `kestrel serve` on the embedded index, timed from start to
// ready (snapshot of every item and the HNSW build), its memory, and recommendations at
// concurrency 1 and 8 with the server's CPU per request and the stage means from /metrics.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../cli/main.ts';
import { clearServedLog, cpuSeconds, startCoreProcess } from '../core-process.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';
import { load, loadGenerator, stageMeans } from './serve.ts';

const ITEMS = Number(process.env.KESTREL_SCALE_SERVE_ITEMS ?? 1_000_000);
const USERS = 2_000;
const EVENTS = 300_000;
const SEED = 11;
const EPOCHS = 3;
const SECONDS_PER_LEVEL = Number(process.env.KESTREL_BENCH_SECONDS ?? 15);
const LEVELS = [1, 8];
const DATA = join(tmpdir(), `kestrel-bench-scale-serve-${ITEMS}i-${USERS}u-${EVENTS}e-s${SEED}`);
/** The serve suite's quotas: about 1,000 distinct candidates ranked per request. */
const CONFIG = { quotas: { 'two-tower': 1000, 'item-item': 300, 'co-visitation': 150, content: 100, trending: 100, fresh: 50 }, maxCandidates: 1000 };
/** The snapshot of a million items and the HNSW build of their vectors take minutes. */
const START_TIMEOUT_MS = 60 * 60_000;

async function step(notes: Record<string, string | number>, name: string, argv: string[]): Promise<void> {
  const t0 = performance.now();
  if ((await main(argv)) !== 0) throw new Error(`kestrel ${argv.join(' ')} failed`);
  notes[`${name}_s`] = Math.round((performance.now() - t0) / 1000);
}

async function ensureModel(notes: Record<string, string | number>): Promise<void> {
  if (existsSync(join(DATA, 'models', 'current.json'))) {
    notes.data = `reused ${DATA}`;
    return;
  }
  const generated = join(DATA, 'generated');
  await step(notes, 'generate', ['generate', '--users', String(USERS), '--items', String(ITEMS), '--events', String(EVENTS), '--seed', String(SEED), '--out', generated]);
  await step(notes, 'import', ['import', '--data', DATA, generated]);
  await step(notes, 'train', ['train', '--from-bus', '--data', DATA, '--out', join(DATA, 'models'), '--epochs', String(EPOCHS)]);
}

function rssMiB(pid: number | undefined): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

export const suite: BenchSuite = {
  description: `GET /v1/recommendations end to end on a synthetic catalog of ${ITEMS.toLocaleString('en')} items (embedded HNSW, ≈1,000 candidates ranked)`,
  // The 1M run is the suite's own file; a smaller catalog's goes beside it (scale-serve-100k.json).
  ...(ITEMS === 1_000_000 ? {} : { resultName: `scale-serve-${ITEMS % 1000 === 0 ? `${ITEMS / 1000}k` : ITEMS}` }),
  async run(notes) {
    await ensureModel(notes);
    clearServedLog(DATA);
    const config = join(DATA, 'bench-serving.json');
    writeFileSync(config, JSON.stringify(CONFIG));
    const users = Array.from({ length: USERS }, (_, i) => `u${i}`);
    // A data folder served before keeps its HNSW graph on disk: the start then loads it instead of building it.
    const built = !existsSync(join(DATA, 'index'));
    const t0 = performance.now();
    const core = await startCoreProcess(['--data', DATA, '--serving-config', config], async (url) => (await fetch(`${url}/readyz`)).status === 200, START_TIMEOUT_MS);
    const rows: BenchRow[] = [{ name: 'startup', metric: 'start_to_ready_s', value: (performance.now() - t0) / 1000, unit: 's' }];
    try {
      const rss = rssMiB(core.child.pid);
      if (rss !== undefined) rows.push({ name: 'startup', metric: 'server_rss', value: rss, unit: 'MiB' });
      await load(core.url, 4, 3, (n) => users[(n * 7919) % USERS] ?? 'u0', USERS);
      for (const c of LEVELS) {
        const before = cpuSeconds(core.child.pid);
        const r = await load(core.url, c, SECONDS_PER_LEVEL, (n) => users[(n * 7919) % USERS] ?? 'u0', USERS);
        const after = cpuSeconds(core.child.pid);
        const name = `c${c}`;
        rows.push(
          { name, metric: 'p50_ms', value: r.p50, unit: 'ms' },
          { name, metric: 'p99_ms', value: r.p99, unit: 'ms' },
          { name, metric: 'requests_per_s', value: r.requests / r.seconds, unit: 'req/s' },
          { name, metric: 'errors', value: r.errors, unit: 'requests' },
        );
        if (before !== undefined && after !== undefined && r.requests > 0) {
          rows.push({ name, metric: 'server_cpu_ms_per_request', value: ((after - before) * 1000) / r.requests, unit: 'ms' });
        }
        if (c === 1) notes.candidates_per_request = Math.round(r.candidates.reduce((s, v) => s + v, 0) / Math.max(1, r.candidates.length));
      }
      for (const [stage, mean] of await stageMeans(core.url)) rows.push({ name: `stage:${stage}`, metric: 'mean_ms', value: mean * 1000, unit: 'ms' });
      const rssAfter = rssMiB(core.child.pid);
      if (rssAfter !== undefined) rows.push({ name: 'after load', metric: 'server_rss', value: rssAfter, unit: 'MiB' });
    } finally {
      await core.stop();
    }
    notes.dataset = `kestrel generate --users ${USERS} --items ${ITEMS} --events ${EVENTS} --seed ${SEED}, imported and trained with --from-bus --epochs ${EPOCHS}; data in ${DATA}`;
    notes.request = `GET /v1/recommendations/{user}?n=20, the ${USERS} users round robin, keep-alive, closed loop, load from ${loadGenerator()}, ${SECONDS_PER_LEVEL} s per level`;
    notes.serving_config = JSON.stringify(CONFIG);
    notes.startup = `start_to_ready_s: from spawning kestrel serve to /readyz 200 (catalog snapshot, item tower for items the model has no rows for, ${built ? 'HNSW build of every item vector' : 'HNSW graph loaded from the data folder, built by an earlier start'})`;
    return rows;
  },
};
