// A short check of the WGSL path on whatever Vulkan driver Dawn finds (a real GPU when there is
// one): correctness against a float64 reference and the median time of one `score()` call, for
// a 64-d query against 10k, 100k and 1M resident items. Run: npx tsx bench/gpu-check.ts [out.json]
import { writeFileSync } from 'node:fs';
import { releaseDawnDevice, requestDawnDevice } from '../core/gpu/dawn.ts';
import { WgslScorer } from '../core/gpu/score.ts';
import { randomMatrix, time } from './harness.ts';

const DIM = 64;
const SIZES = [10_000, 100_000, 1_000_000];

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

const gpu = await requestDawnDevice();
const adapter = `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} ${gpu.adapterInfo.description}`.trim();
console.log(`adapter: ${adapter} (driver: ${gpu.driver})`);
const scorer = await WgslScorer.create(gpu.device);
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
  console.log(`n=${n} dim=${DIM} relErr=${err.toExponential(2)} median=${t.median.toFixed(3)} ms p99=${t.p99.toFixed(3)} ms ${gflops.toFixed(2)} GFLOP/s`);
}
scorer.destroy();
await releaseDawnDevice();
const file = process.argv[2];
if (file) writeFileSync(file, `${JSON.stringify({ adapter, driver: gpu.driver, rows }, null, 2)}\n`);
