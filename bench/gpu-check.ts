// A short check of the WGSL paths on whatever Vulkan driver Dawn finds (a real GPU when there is
// one), correctness against a float64/TypeScript reference and the median time of one call:
//   score   the embedding score kernel: a 64-d query against 10k, 100k and 1M resident items;
//   ranker  the `webgpu` Ranker (the Wide&Deep forward pass, shaders/wide-deep.wgsl) on the
//           ml-100k-shaped network of the `rank` suite, for 1k, 10k and 100k candidates, against
//           the TypeScript reference forwardNetwork: worst relative error and the top-100 order.
// Run: npx tsx bench/gpu-check.ts [out.json] [score|ranker ...]  (both parts when none is named)
import { writeFileSync } from 'node:fs';
import { releaseDawnDevice, requestDawnDevice } from '../core/gpu/dawn.ts';
import { WgslScorer } from '../core/gpu/score.ts';
import { WebGpuRanker } from '../core/ranking/webgpu-ranker.ts';
import { forwardNetwork } from '../training/models/forward.ts';
import { WideAndDeep } from '../training/ranker/wide-deep.ts';
import { randomMatrix, time } from './harness.ts';
import { RANKER_SEED, RANKER_WIDE_BUCKETS, rankerCandidates, rankerVocabulary } from './ranker-inputs.ts';

const DIM = 64;
const SIZES = [10_000, 100_000, 1_000_000];
const BATCHES = [1_000, 10_000, 100_000];
const TOP = 100;

function relativeError(out: Float32Array, query: Float32Array, items: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    let ref = 0;
    for (let k = 0; k < DIM; k++) ref += (query[k] as number) * (items[i * DIM + k] as number);
    diff += ((out[i] as number) - ref) ** 2;
    norm += ref * ref;
  }
  return Math.sqrt(diff / norm);
}

/** Row indices by the first output column, best first. */
function topOrder(logits: Float32Array, outputs: number, top: number): number[] {
  const rows = Array.from({ length: logits.length / outputs }, (_, r) => r);
  return rows.sort((a, b) => (logits[b * outputs] as number) - (logits[a * outputs] as number)).slice(0, top);
}

async function scoreRows(device: GPUDevice): Promise<object[]> {
  const scorer = await WgslScorer.create(device);
  const rows = [];
  for (const n of SIZES) {
    const items = randomMatrix(n * DIM, n);
    const query = randomMatrix(DIM, 7);
    scorer.setItems(items, DIM);
    const out = await scorer.score(query);
    const err = relativeError(out, query, items);
    const t = await time(() => scorer.score(query, out), { warmup: 10, runs: 50 });
    const gflops = (2 * n * DIM) / (t.median * 1e6);
    rows.push({ items: n, dim: DIM, relError: err, medianMs: t.median, p99Ms: t.p99, gflops });
    console.log(`score n=${n} dim=${DIM} relErr=${err.toExponential(2)} median=${t.median.toFixed(3)} ms p99=${t.p99.toFixed(3)} ms ${gflops.toFixed(2)} GFLOP/s`);
  }
  scorer.destroy();
  return rows;
}

async function rankerRows(device: GPUDevice): Promise<object[]> {
  const v = rankerVocabulary();
  const spec = new WideAndDeep(v, RANKER_WIDE_BUCKETS, { seed: RANKER_SEED }).toSpec();
  const ranker = await WebGpuRanker.create(device, spec);
  const rows = [];
  for (const batch of BATCHES) {
    const inputs = rankerCandidates(v, batch);
    const gpu = await ranker.score(inputs);
    const ref = forwardNetwork(spec, inputs);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) {
      const r = ref[i] as number;
      worst = Math.max(worst, Math.abs((gpu[i] as number) - r) / Math.max(1, Math.abs(r)));
    }
    const sameTop = topOrder(gpu, ranker.outputs, TOP).join() === topOrder(ref, ranker.outputs, TOP).join();
    const t = await time(() => ranker.score(inputs), { warmup: 10, runs: 50 });
    const ts = batch <= 10_000 ? await time(() => forwardNetwork(spec, inputs), { warmup: 2, runs: 10 }) : undefined;
    rows.push({ candidates: batch, maxRelError: worst, sameTop100: sameTop, medianMs: t.median, p99Ms: t.p99, tsReferenceMedianMs: ts?.median ?? null });
    console.log(`ranker candidates=${batch} maxRelErr=${worst.toExponential(2)} top${TOP}=${sameTop ? 'same' : 'DIFFERENT'} ` +
      `median=${t.median.toFixed(3)} ms p99=${t.p99.toFixed(3)} ms (TS reference on this CPU: ${ts === undefined ? 'not run' : `${ts.median.toFixed(1)} ms`})`);
  }
  await ranker.close();
  return rows;
}

const [file, ...parts] = process.argv.slice(2);
const want = (part: string) => parts.length === 0 || parts.includes(part);
const gpu = await requestDawnDevice();
const adapter = `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} ${gpu.adapterInfo.description}`.trim();
console.log(`adapter: ${adapter} (driver: ${gpu.driver})`);
const report = {
  adapter,
  driver: gpu.driver,
  ...(want('score') ? { rows: await scoreRows(gpu.device) } : {}),
  ...(want('ranker') ? { ranker: await rankerRows(gpu.device) } : {}),
};
await releaseDawnDevice();
if (file !== undefined && file !== '') writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
