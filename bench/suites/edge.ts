// The edge's CPU cost per hit: the re-rank pipeline (core/domain/rerank.ts: affinity + shown
// penalty, MMR, Thompson exploration) on a cached 500-candidate slate, in the WASM kernel
// (wasm/assembly/rerank.ts, release build) and in the TypeScript reference the edge falls back to.
// Issue 6's goal for it: ≤ 1 ms median, ≤ 3 ms p99. Each timed call is one request: its own seed,
// and for WASM the copy of the slate into linear memory and of the result out.
import { normalVariate, Xoshiro128 } from '../../core/domain/random.ts';
import { rerank } from '../../core/domain/rerank.ts';
import type { RerankInput, RerankOptions } from '../../core/domain/rerank.ts';
import { l2Normalize } from '../../core/domain/vectors.ts';
import { loadWasmKernels } from '../../core/kernels/wasm.ts';
import { WasmReranker } from '../../wasm/index.ts';
import { time } from '../harness.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const N = 500;
const DIM = 32;
const K = 20;
const EXPLORE_SHARE = 0.1;
const WARMUP = 200;
const RUNS = 2000;
const SEED = 42;

/** A slate like the core sends: unit embeddings, scores in [0, 1), a few shown items, CTR posteriors. */
function benchSlate(rng: Xoshiro128): RerankInput {
  const embeddings = new Float32Array(N * DIM);
  for (let i = 0; i < N; i++) {
    const row = embeddings.subarray(i * DIM, (i + 1) * DIM);
    for (let d = 0; d < DIM; d++) row[d] = normalVariate(rng);
    l2Normalize(row);
  }
  const interest = l2Normalize(Float32Array.from({ length: DIM }, () => normalVariate(rng)));
  return {
    dim: DIM,
    coreScore: Float64Array.from({ length: N }, () => rng.next()),
    embeddings,
    shown: Float64Array.from({ length: N }, () => (rng.next() < 0.05 ? 1 : 0)),
    alpha: Float32Array.from({ length: N }, () => 1 + rng.nextInt(20)),
    beta: Float32Array.from({ length: N }, () => 1 + rng.nextInt(400)),
    interest,
  };
}

function rows(name: string, t: { median: number; p99: number }): BenchRow[] {
  return [
    { name, metric: 'median_us', value: t.median * 1000, unit: 'µs' },
    { name, metric: 'p99_us', value: t.p99 * 1000, unit: 'µs' },
  ];
}

export const suite: BenchSuite = {
  description: `edge CPU per hit: re-rank (affinity + MMR + Thompson exploration) of a ${N}-candidate, ${DIM}-d slate into ${K} slots`,
  async run(notes) {
    const input = benchSlate(new Xoshiro128(SEED));
    const base: Omit<RerankOptions, 'seed'> = { affinityWeight: 0.5, shownPenalty: 0.1, lambda: 0.7, k: K, exploreShare: EXPLORE_SHARE };
    Object.assign(notes, {
      slate: `${N} candidates, dim ${DIM}, unit embeddings, ~5% shown once, alpha 1..20, beta 1..400`,
      options: `k ${K}, exploreShare ${EXPLORE_SHARE} (${Math.round(EXPLORE_SHARE * K)} exploration slots), lambda 0.7, affinityWeight 0.5, shownPenalty 0.1`,
      protocol: `median and p99 of ${RUNS} timed calls after ${WARMUP} warm-up calls, one seed per call; wasm = release build, timing includes validation, copying the slate in and the result out`,
      goal: 'issue 6: ≤ 1000 µs median, ≤ 3000 µs p99 for WASM',
    });
    const wasm = new WasmReranker(await loadWasmKernels('release'));

    // The two must agree before their timings mean anything.
    const a = wasm.rerank(input, { ...base, seed: 1 });
    const b = rerank(input, { ...base, seed: 1 });
    if (Array.from(a.order).join() !== Array.from(b.order).join()) throw new Error('WASM and TypeScript re-rank disagree; run test/kernels/rerank-wasm.test.ts');

    let seed = 0;
    const opts = { warmup: WARMUP, runs: RUNS };
    const w = await time(() => wasm.rerank(input, { ...base, seed: seed++ }), opts);
    const t = await time(() => rerank(input, { ...base, seed: seed++ }), opts);
    return [...rows(`rerank-${N}x${DIM}-k${K}-wasm`, w), ...rows(`rerank-${N}x${DIM}-k${K}-ts`, t)];
  },
};
