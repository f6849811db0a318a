// Ranking alone: the Wide&Deep forward pass over 1,000 candidates of one user, per call, on every
// path that can serve it: the `Ranker` port's three adapters (ONNX Runtime on one CPU thread, WGSL
// on WebGPU, the spec on the WASM SIMD gemm) and the TypeScript reference `forwardNetwork`; plus
// the training model's own forward pass on the WASM gemm and pooling kernels.
//
// The network is a `WideAndDeep` with random init, WIDE_AND_DEEP_DEFAULTS dims and 2^18 wide buckets,
// on the ml-100k-shaped vocabulary and candidate inputs of bench/ranker-inputs.ts.
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { releaseDawnDevice, requestDawnDevice } from '../../core/gpu/dawn.ts';
import { openRanker } from '../../core/ranking/ranker.ts';
import type { RankerKind } from '../../core/ranking/ranker.ts';
import { DENSE_SIZE } from '../../training/features/feature-state.ts';
import { forwardNetwork } from '../../training/models/forward.ts';
import { exportNetwork } from '../../training/onnx/network.ts';
import { WIDE_AND_DEEP_DEFAULTS, WideAndDeep } from '../../training/ranker/wide-deep.ts';
import { time } from '../harness.ts';
import { RANKER_GENRES, RANKER_ITEMS, RANKER_SEED, RANKER_USER_FEATURES, RANKER_USERS, RANKER_WIDE_BUCKETS, rankerCandidates, rankerVocabulary } from '../ranker-inputs.ts';
import type { BenchRow, BenchSuite, Timing } from '../harness.ts';

const CANDIDATES = 1000;
const WARMUP = 10;
const RUNS = 200;

function rows(name: string, t: Timing): BenchRow[] {
  return [
    { name, metric: 'p50_ms', value: t.median, unit: 'ms' },
    { name, metric: 'p99_ms', value: t.p99, unit: 'ms' },
    { name, metric: 'calls_per_s', value: 1000 / t.median, unit: 'calls/s' },
  ];
}

export const suite: BenchSuite = {
  description: `rank ${CANDIDATES.toLocaleString('en')} candidates with an ml-100k-shaped Wide&Deep ranker (one call = one user's candidates)`,
  async run(notes) {
    const v = rankerVocabulary();
    const model = new WideAndDeep(v, RANKER_WIDE_BUCKETS, { seed: RANKER_SEED });
    const spec = model.toSpec();
    const bytes = exportNetwork(spec);
    const inputs = rankerCandidates(v, CANDIDATES);
    const d = WIDE_AND_DEEP_DEFAULTS;
    Object.assign(notes, {
      candidates: CANDIDATES,
      network: `bags user ${RANKER_USERS + 1}×${d.userDim}, item ${RANKER_ITEMS + 1}×${d.itemDim}, genres ${RANKER_GENRES}×${d.categoryDim}, user features ${RANKER_USER_FEATURES}×${d.userFeatureDim}; ` +
        `dense ${DENSE_SIZE}; layers ${spec.layers.map((l) => `${l.inputs}→${l.outputs}`).join(', ')}; wide ${RANKER_WIDE_BUCKETS}×2; ranker.onnx ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB`,
      padding: Object.entries(inputs.bags).map(([name, b]) => `${name} ${b.length}`).join(', '),
      protocol: `p50/p99 of ${RUNS} sequential calls after ${WARMUP} warm-up calls; calls_per_s = 1000 / p50`,
    });
    const result: BenchRow[] = [];
    const timed = (fn: () => unknown) => time(fn, { warmup: WARMUP, runs: RUNS });

    const gpu = await requestDawnDevice();
    notes['webgpu adapter'] = `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} ${gpu.adapterInfo.description} (driver: ${gpu.driver})`.trim();
    if (gpu.driver === 'swiftshader') notes.webgpu = 'SwiftShader: a CPU emulation of a GPU (Vulkan on the CPU), not a GPU; its numbers say nothing about a real one';
    for (const kind of ['onnx', 'webgpu', 'wasm'] as RankerKind[]) {
      const ranker = await openRanker(kind, bytes, { intraOpThreads: 1 });
      result.push(...rows(kind === 'onnx' ? 'onnx (1 thread)' : kind === 'wasm' ? 'wasm (Ranker port)' : 'webgpu', await timed(() => ranker.score(inputs))));
      await ranker.close();
    }
    await releaseDawnDevice();

    result.push(...rows('ts (forwardNetwork)', await timed(() => forwardNetwork(spec, inputs))));

    const wasm = new WideAndDeep(v, RANKER_WIDE_BUCKETS, { seed: RANKER_SEED, backend: await createWasmMatmul('release') });
    notes.wasm = 'wasm (Ranker port): ranker.onnx read back, dense layers on the WASM SIMD gemm, pooling in TypeScript; wasm (training model): WideAndDeep.forward, same shapes, pooling in the WASM kernel too';
    result.push(...rows('wasm (training model)', await timed(() => wasm.forward(inputs))));
    return result;
  },
};
