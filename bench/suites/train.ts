// Training speed: examples per second of the two-tower (Covington 2016) and the Wide&Deep ranker
// (Cheng 2016) per kernel backend, side by side with the same networks in PyTorch on CPU
// (bench/train/torch_models.py, run from its own venv; PyTorch is never a Kestrel dependency).
// The WGSL gemm is asynchronous, so it cannot back the synchronous training layers: its row times
// only the gemm calls of one training step on Dawn and is an upper bound, labelled "gemm only".
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { releaseDawnDevice, requestDawnDevice } from '../../core/gpu/dawn.ts';
import { WgslMatmul } from '../../core/gpu/matmul.ts';
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { buildDataset, positiveRows } from '../../training/data/dataset.ts';
import type { Dataset } from '../../training/data/dataset.ts';
import { syntheticEvents } from '../../training/data/sessions.ts';
import { buildWorld } from '../../training/data/synthetic.ts';
import { DEFAULT_WIDE_BUCKETS, DENSE_SIZE } from '../../training/features/feature-state.ts';
import { buildRankerRows } from '../../training/features/ranker-rows.ts';
import type { RankerRows } from '../../training/features/ranker-rows.ts';
import { typescriptMatmul } from '../../training/nn/index.ts';
import type { MatmulBackend } from '../../training/nn/index.ts';
import { trainWideAndDeep } from '../../training/ranker/train.ts';
import { towerInputSpec } from '../../training/two-tower/inputs.ts';
import { trainTwoTower } from '../../training/two-tower/train.ts';
import { quantile, randomMatrix, time } from '../harness.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';
import { loadMl100k, ml100kDir } from './quality.ts';

/** The shapes torch_models.py trains (ml-100k sized); the TS side is set to match. */
const BATCH = 512;
const HISTORY_LENGTH = 50;
const WIDE_BUCKETS = DEFAULT_WIDE_BUCKETS; // 2^18, as torch_models.py's WIDE_ROWS
const ML100K = { users: 943, items: 1682, events: 100_000 };

/** Epochs per TS run: the first is warm-up (JIT, wasm tiering), the median of the rest is reported. */
const WARMUP_EPOCHS = 1;
const TIMED_EPOCHS = 2;
/** The plain-TS backend is ~10× slower: its runs train on a prefix of the rows. */
const TS_TWO_TOWER_ROWS = 20 * BATCH;
const TS_RANKER_ROWS = 100_000;

const TORCH_STEPS = 200;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TORCH_PYTHON = `${ROOT}.infra/torch-venv/bin/python`;
const TORCH_SETUP = `${ROOT}bench/train/setup-torch.sh`;
const TORCH_SCRIPT = `${ROOT}bench/train/torch_models.py`;

type Model = 'two-tower' | 'ranker';

interface TorchResult {
  model: Model;
  examples_per_s: number;
  threads: number;
  cpu_util?: number;
  torch?: string;
}

function median(values: number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

function row(model: Model, backend: string, value: number, unit = 'ex/s', metric = 'examples_per_s'): BenchRow {
  return { name: `${model}/${backend}`, metric, value, unit };
}

async function loadData(notes: Record<string, string | number>): Promise<Dataset> {
  const dir = ml100kDir();
  if (existsSync(`${dir}/u.data`)) {
    notes.dataset = `ml-100k (${dir})`;
    return loadMl100k(dir);
  }
  notes.dataset = `synthetic, ml-100k sized (${ML100K.users} users, ${ML100K.items} items, ${ML100K.events} events): no ml-100k at ${dir}`;
  const world = buildWorld({ ...ML100K, seed: 1 });
  return buildDataset({ events: syntheticEvents(world), items: world.items, users: world.users });
}

/** Wall and CPU examples/s of one TS run: medians over the timed epochs. */
interface Rate {
  wall: number;
  /** Per second of this process's CPU time: less sensitive to other load on the machine. */
  cpu: number;
}

/** Process CPU seconds (user + system) since `from`. */
function cpuSeconds(from: NodeJS.CpuUsage, to: NodeJS.CpuUsage): number {
  return (to.user - from.user + to.system - from.system) / 1e6;
}

/** CPU seconds of each epoch after the warm-up, from the CPU usage taken at each epoch's end. */
function timedCpu(marks: NodeJS.CpuUsage[]): number[] {
  const out: number[] = [];
  for (let e = WARMUP_EPOCHS; e < marks.length; e++) {
    const from = marks[e - 1];
    const to = marks[e];
    if (from && to) out.push(cpuSeconds(from, to));
  }
  return out;
}

/** One two-tower run (validation off, no early stop). */
function twoTowerRate(dataset: Dataset, rows: Int32Array, backend: MatmulBackend): Rate {
  const marks: NodeJS.CpuUsage[] = [];
  const result = trainTwoTower(dataset, rows, {
    backend,
    config: { epochs: WARMUP_EPOCHS + TIMED_EPOCHS, patience: Number.MAX_SAFE_INTEGER, batch: BATCH, historyLength: HISTORY_LENGTH },
    observer: { progress() {}, epochEnd: () => void marks.push(process.cpuUsage()) },
  });
  const perEpoch = Math.floor(rows.length / BATCH) * BATCH;
  return {
    wall: median(result.curve.slice(WARMUP_EPOCHS).map((e) => perEpoch / e.seconds)),
    cpu: median(timedCpu(marks).map((s) => perEpoch / s)),
  };
}

/** One ranker run; validationShare 0 keeps evaluation out of the epoch time. */
function rankerRate(dataset: Dataset, rows: RankerRows, backend: MatmulBackend): Rate {
  const marks: NodeJS.CpuUsage[] = [];
  const { report } = trainWideAndDeep(dataset, rows, WIDE_BUCKETS, {
    backend, batchSize: BATCH, maxEpochs: WARMUP_EPOCHS + TIMED_EPOCHS, patience: Number.MAX_SAFE_INTEGER, validationShare: 0,
    onEpoch: () => void marks.push(process.cpuUsage()),
  });
  return {
    wall: median(report.epochs.slice(WARMUP_EPOCHS).map((e) => (report.trainRows * 1000) / e.ms)),
    cpu: median(timedCpu(marks).map((s) => report.trainRows / s)),
  };
}

interface GemmShape {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  beta: number;
  count: number;
}

/** A backend that computes with `inner` and records each gemm's shape. */
function recording(inner: MatmulBackend, shapes: Map<string, GemmShape>): MatmulBackend {
  return {
    name: inner.name,
    gemm(transA, transB, m, n, k, alpha, a, b, beta, c) {
      const key = `${transA}${transB} ${m}×${n}×${k} α${alpha} β${beta}`;
      const seen = shapes.get(key);
      if (seen) seen.count++;
      else shapes.set(key, { transA, transB, m, n, k, alpha, beta, count: 1 });
      inner.gemm(transA, transB, m, n, k, alpha, a, b, beta, c);
    },
  };
}

/** The gemm calls of exactly one training step of each model (one batch of rows, one epoch). */
function stepShapes(dataset: Dataset, positives: Int32Array, rankerRows: RankerRows, wasm: MatmulBackend): Record<Model, GemmShape[]> {
  const tower = new Map<string, GemmShape>();
  trainTwoTower(dataset, positives.subarray(0, BATCH), {
    backend: recording(wasm, tower), config: { epochs: 1, batch: BATCH, historyLength: HISTORY_LENGTH },
  });
  const ranker = new Map<string, GemmShape>();
  trainWideAndDeep(dataset, { ...rankerRows, length: BATCH }, WIDE_BUCKETS, {
    backend: recording(wasm, ranker), batchSize: BATCH, maxEpochs: 1, validationShare: 0,
  });
  return { 'two-tower': [...tower.values()], ranker: [...ranker.values()] };
}

/** Σ over one step's gemms of the median WGSL time (upload, dispatch, readback) → examples/s. */
async function wgslGemmOnlyRate(wgsl: WgslMatmul, shapes: GemmShape[]): Promise<{ rate: number; stepMs: number }> {
  let stepMs = 0;
  for (const [i, s] of shapes.entries()) {
    const a = randomMatrix(s.m * s.k, 100 + i);
    const b = randomMatrix(s.k * s.n, 200 + i);
    const c = new Float32Array(s.m * s.n);
    const t = await time(() => wgsl.gemm(s.transA, s.transB, s.m, s.n, s.k, s.alpha, a, b, s.beta, c), { warmup: 3, runs: 15 });
    stepMs += t.median * s.count;
  }
  return { rate: (BATCH * 1000) / stepMs, stepMs };
}

function runProcess(command: string, args: string[], inheritStderr: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', inheritStderr ? 'inherit' : 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Creates the torch venv when it is missing (pip, PyPI only); returns why not when that fails. */
async function ensureTorch(): Promise<string | undefined> {
  if (!existsSync(TORCH_PYTHON)) {
    console.log('train: no .infra/torch-venv; running bench/train/setup-torch.sh (installs torch from PyPI with pip, ~4 GB, ~2 min)');
  }
  const setup = await runProcess('bash', [TORCH_SETUP], true);
  return setup.code === 0 ? undefined : `bench/train/setup-torch.sh exited with ${setup.code}`;
}

async function torchRates(threads: number): Promise<TorchResult[]> {
  const args = [TORCH_SCRIPT, '--batch', String(BATCH), '--steps', String(TORCH_STEPS), '--threads', String(threads)];
  const out = await runProcess(TORCH_PYTHON, args, false);
  if (out.code !== 0) throw new Error(`torch_models.py --threads ${threads} exited with ${out.code}: ${out.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return out.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as TorchResult);
}

export const suite: BenchSuite = {
  description: 'training examples/s: two-tower and Wide&Deep ranker per backend vs PyTorch CPU',
  async run(notes) {
    const loadBefore = loadavg()[0] ?? 0;
    const dataset = await loadData(notes);
    const spec = towerInputSpec(dataset, HISTORY_LENGTH);
    const positives = positiveRows(dataset);
    const rankerRows = buildRankerRows(dataset, { seed: 1, wideBuckets: WIDE_BUCKETS });
    const wideLength = (rankerRows.wideOffsets[1] ?? 0) - (rankerRows.wideOffsets[0] ?? 0);
    const deepInputs = 16 + 16 + 8 + 8 + DENSE_SIZE;
    Object.assign(notes, {
      'two-tower shapes (TS)': `users+1=${spec.users + 1}, items+1=${spec.items + 1}, history ≤${HISTORY_LENGTH} (real histories), ${spec.itemFeatures} item features ×≤${spec.itemFeatureLength}, ${spec.userFeatures} user features ×≤${spec.userFeatureLength}, dims 32/64/16/32 → 128 → 64, batch ${BATCH}, temperature 0.05; ${positives.length} positives; Adam dense, LazyAdam sparse`,
      'ranker shapes (TS)': `${deepInputs} deep inputs (16+16+8+8 + ${DENSE_SIZE} dense) → 64 → 32 → 2, wide 2^${Math.log2(WIDE_BUCKETS)} × ${wideLength} crosses/row, batch ${BATCH}; ${rankerRows.length} rows (buildRankerRows seed 1, 4 sampled negatives per click); Adam dense, Adagrad sparse`,
      'pytorch shapes': 'torch_models.py (fixed, no shape flags): users+1=944, items+1=1683, history padded length uniform 1..50, 629 item features ×8, 64 user features ×4, ranker 56 inputs (8 dense), wide 2^18 × 6; two-tower sparse optimizer Adagrad (TS: LazyAdam); synthetic uniform ids',
      protocol: `TS: ${WARMUP_EPOCHS} warm-up epoch, then median examples/s of ${TIMED_EPOCHS} epochs (forward, backward, optimizer; shuffle and batch assembly included, validation off); plain TS on a prefix (two-tower ${TS_TWO_TOWER_ROWS} rows, ranker ${TS_RANKER_ROWS} rows); PyTorch: median of 5 windows over ${TORCH_STEPS} steps after 20 warm-up steps`,
      threads: 'WASM and plain TS are single-threaded; PyTorch is compared at --threads 1 (pytorch-cpu-1t); --threads 2 is an extra row (unstable on a busy 2-core machine)',
      cpu: 'examples_per_cpu_s divides by the process CPU time (TS: process.cpuUsage per epoch, GC threads included; PyTorch: examples_per_s ÷ cpu_util), so it holds up better than wall time when other work shares the cores',
      machine: `${cpus().length}× ${cpus()[0]?.model ?? 'unknown'}, load average (1 min) at start ${loadBefore.toFixed(2)}`,
      command: `npm run bench -- train; PyTorch: .infra/torch-venv/bin/python bench/train/torch_models.py --batch ${BATCH} --steps ${TORCH_STEPS} --threads 1|2`,
    });

    const wasm = await createWasmMatmul('release');
    const rows: BenchRow[] = [];
    const rates: Partial<Record<string, number>> = {};
    const add = (model: Model, backend: string, value: number) => {
      rates[`${model}/${backend}`] = value;
      rows.push(row(model, backend, value));
      console.log(`train: ${model}/${backend}: ${value.toFixed(0)} ex/s`);
    };
    const addRate = (model: Model, backend: string, rate: Rate) => {
      add(model, backend, rate.wall);
      rates[`${model}/${backend} cpu`] = rate.cpu;
      rows.push(row(model, backend, rate.cpu, 'ex/cpu-s', 'examples_per_cpu_s'));
    };

    addRate('two-tower', 'wasm-simd', twoTowerRate(dataset, positives, wasm));
    addRate('two-tower', 'ts', twoTowerRate(dataset, positives.subarray(0, TS_TWO_TOWER_ROWS), typescriptMatmul));
    addRate('ranker', 'wasm-simd', rankerRate(dataset, rankerRows, wasm));
    addRate('ranker', 'ts', rankerRate(dataset, { ...rankerRows, length: Math.min(TS_RANKER_ROWS, rankerRows.length) }, typescriptMatmul));

    // WGSL on Dawn: replay one step's gemm shapes, each call uploading A, B, C and reading C back.
    try {
      const shapes = stepShapes(dataset, positives, rankerRows, wasm);
      const gpu = await requestDawnDevice();
      notes['wgsl-dawn adapter'] = `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} ${gpu.adapterInfo.description} (driver: ${gpu.driver}${gpu.adapterInfo.isFallbackAdapter ? ', a CPU fallback adapter, not a GPU' : ''})`;
      const wgsl = await WgslMatmul.create(gpu.device);
      for (const model of ['two-tower', 'ranker'] as const) {
        const { rate, stepMs } = await wgslGemmOnlyRate(wgsl, shapes[model]);
        add(model, 'wgsl-dawn (gemm only, upper bound)', rate);
        const calls = shapes[model].reduce((n, s) => n + s.count, 0);
        notes[`wgsl-dawn ${model}`] = `gemm only: ${calls} gemm calls per step (${shapes[model].length} shapes), ${stepMs.toFixed(2)} ms per step; excludes embedding bags, activations, loss and optimizer, so a real step is slower`;
      }
      wgsl.destroy();
      await releaseDawnDevice();
    } catch (err) {
      notes['wgsl-dawn'] = `skipped: ${err instanceof Error ? err.message : String(err)}`;
    }

    const missing = await ensureTorch();
    if (missing !== undefined) {
      notes.pytorch = `no PyTorch rows: ${missing}`;
      return rows;
    }
    for (const threads of [1, 2]) {
      try {
        for (const r of await torchRates(threads)) {
          if (threads === 1 && r.cpu_util !== undefined && r.cpu_util > 0) {
            // cpu_util = process CPU s / wall s over the timed windows: with one thread, ex/s ÷ cpu_util is ex per CPU second.
            addRate(r.model, 'pytorch-cpu-1t', { wall: r.examples_per_s, cpu: r.examples_per_s / r.cpu_util });
          } else {
            add(r.model, `pytorch-cpu-${threads}t`, r.examples_per_s);
          }
          notes[`pytorch ${r.model} ${threads}t`] = `torch ${r.torch ?? '?'}, threads ${r.threads}, cpu_util ${r.cpu_util ?? '?'}`;
        }
      } catch (err) {
        notes[`pytorch ${threads}t`] = `missing: ${err instanceof Error ? err.message : String(err)}`;
      }
    }

    for (const model of ['two-tower', 'ranker'] as const) {
      const torch = rates[`${model}/pytorch-cpu-1t`];
      const wasmRate = rates[`${model}/wasm-simd`];
      if (torch === undefined || wasmRate === undefined) continue;
      const ratio = torch / wasmRate;
      rows.push(row(model, 'pytorch-cpu-1t ÷ wasm-simd', ratio, '×', 'ratio'));
      const torchCpu = rates[`${model}/pytorch-cpu-1t cpu`];
      const wasmCpu = rates[`${model}/wasm-simd cpu`];
      const cpuRatio = torchCpu !== undefined && wasmCpu !== undefined ? torchCpu / wasmCpu : Number.NaN;
      if (Number.isFinite(cpuRatio)) rows.push(row(model, 'pytorch-cpu-1t ÷ wasm-simd', cpuRatio, '×', 'ratio_per_cpu_s'));
      notes[`goal ${model}`] = `WASM within 2× of PyTorch CPU (1 thread): ${ratio <= 2 ? 'met' : 'not met'} on wall time (${ratio.toFixed(2)}×), ${cpuRatio <= 2 ? 'met' : 'not met'} per CPU second (${cpuRatio.toFixed(2)}×)`;
    }
    return rows;
  },
};
