// Ranking alone: the Wide&Deep forward pass over 1,000 candidates of one user, per call, on every
// path that can serve it: the `Ranker` port's three adapters (ONNX Runtime on one CPU thread, WGSL
// on WebGPU, the spec on the WASM SIMD gemm) and the TypeScript reference `forwardNetwork`; plus
// the training model's own forward pass on the WASM gemm and pooling kernels.
//
// The network is a `WideAndDeep` with random init, shaped like the ranker trained on ml-100k:
// vocabularies of 943 users and 1682 items (+1 out-of-vocabulary row each), 19 genres, 30 user
// features (age buckets, gender, occupation), WIDE_AND_DEEP_DEFAULTS dims, 2^18 wide buckets. The
// candidate inputs have ml-100k's shapes: 1–3 genres per item (one with 6, which sets the padding),
// 3 user features, and per row the wide crosses training/features/feature-state.ts makes
// (user×genre per genre, item×position, user feature×genre).
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { releaseDawnDevice, requestDawnDevice } from '../../core/gpu/dawn.ts';
import { openRanker } from '../../core/ranking/ranker.ts';
import type { RankerKind } from '../../core/ranking/ranker.ts';
import { DENSE_SIZE } from '../../training/features/feature-state.ts';
import { forwardNetwork } from '../../training/models/forward.ts';
import type { NetworkInputs } from '../../training/models/spec.ts';
import { exportNetwork } from '../../training/onnx/network.ts';
import { RANKER_INPUTS } from '../../training/ranker/inputs.ts';
import type { RankerVocabulary } from '../../training/ranker/inputs.ts';
import { WIDE_AND_DEEP_DEFAULTS, WideAndDeep } from '../../training/ranker/wide-deep.ts';
import { randomMatrix, time } from '../harness.ts';
import type { BenchRow, BenchSuite, Timing } from '../harness.ts';

const CANDIDATES = 1000;
const USERS = 943;
const ITEMS = 1682;
const GENRES = 19;
const USER_FEATURES = 30;
const FEATURES_PER_USER = 3;
const MAX_GENRES = 6;
const WIDE_BUCKETS = 1 << 18;
const SEED = 42;
const WARMUP = 10;
const RUNS = 200;

/** xorshift32 integers in [0, n), deterministic so runs compare like with like. */
function randomInts(count: number, n: number, seed: number): Int32Array {
  const u = randomMatrix(count, seed);
  return Int32Array.from(u, (x) => Math.min(n - 1, Math.floor((x + 0.5) * n)));
}

function csr(rowLengths: readonly number[], values: Int32Array): { offsets: Int32Array; indices: Int32Array } {
  const offsets = new Int32Array(rowLengths.length + 1);
  rowLengths.forEach((len, r) => {
    offsets[r + 1] = (offsets[r] ?? 0) + len;
  });
  return { offsets, indices: values.subarray(0, offsets[rowLengths.length] ?? 0) };
}

function vocabulary(): RankerVocabulary {
  const genreCounts = Array.from(randomInts(ITEMS, 3, SEED), (g, i) => (i === 0 ? MAX_GENRES : g + 1));
  return {
    users: USERS,
    items: ITEMS,
    categories: GENRES,
    userFeatures: USER_FEATURES,
    itemCategories: csr(genreCounts, randomInts(ITEMS * MAX_GENRES, GENRES, SEED + 1)),
    userFeatureRows: csr(Array.from({ length: USERS }, () => FEATURES_PER_USER), randomInts(USERS * FEATURES_PER_USER, USER_FEATURES, SEED + 2)),
  };
}

/** The inputs of `CANDIDATES` items for one user, padded as InputBuilder pads them. */
function candidates(v: RankerVocabulary): NetworkInputs {
  const n = CANDIDATES;
  const user = 17;
  const items = randomInts(n, v.items, SEED + 3);
  items[0] = 0; // the item with MAX_GENRES genres
  const wideLength = MAX_GENRES + 1 + FEATURES_PER_USER * MAX_GENRES;
  const bag = (length: number) => ({ ids: new Int32Array(n * length), mask: new Float32Array(n * length), length });
  const bags: NetworkInputs['bags'] = {
    [RANKER_INPUTS.user]: bag(1),
    [RANKER_INPUTS.item]: bag(1),
    [RANKER_INPUTS.categories]: bag(MAX_GENRES),
    [RANKER_INPUTS.userFeatures]: bag(FEATURES_PER_USER),
    [RANKER_INPUTS.wide]: bag(wideLength),
  };
  const hashes = randomInts(n * wideLength, WIDE_BUCKETS, SEED + 4);
  const put = (name: string, row: number, slot: number, id: number): void => {
    const b = bags[name];
    if (b === undefined) return;
    b.ids[row * b.length + slot] = id;
    b.mask[row * b.length + slot] = 1;
  };
  for (let r = 0; r < n; r++) {
    const item = items[r] ?? 0;
    put(RANKER_INPUTS.user, r, 0, user);
    put(RANKER_INPUTS.item, r, 0, item);
    const c0 = v.itemCategories.offsets[item] ?? 0;
    const genres = (v.itemCategories.offsets[item + 1] ?? 0) - c0;
    for (let k = 0; k < genres; k++) put(RANKER_INPUTS.categories, r, k, v.itemCategories.indices[c0 + k] ?? 0);
    const f0 = v.userFeatureRows.offsets[user] ?? 0;
    for (let k = 0; k < FEATURES_PER_USER; k++) put(RANKER_INPUTS.userFeatures, r, k, v.userFeatureRows.indices[f0 + k] ?? 0);
    const crosses = genres + 1 + FEATURES_PER_USER * genres;
    for (let k = 0; k < crosses; k++) put(RANKER_INPUTS.wide, r, k, hashes[r * wideLength + k] ?? 0);
  }
  return { batch: n, bags, dense: randomMatrix(n * DENSE_SIZE, SEED + 5) };
}

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
    const v = vocabulary();
    const model = new WideAndDeep(v, WIDE_BUCKETS, { seed: SEED });
    const spec = model.toSpec();
    const bytes = exportNetwork(spec);
    const inputs = candidates(v);
    const d = WIDE_AND_DEEP_DEFAULTS;
    Object.assign(notes, {
      candidates: CANDIDATES,
      network: `bags user ${USERS + 1}×${d.userDim}, item ${ITEMS + 1}×${d.itemDim}, genres ${GENRES}×${d.categoryDim}, user features ${USER_FEATURES}×${d.userFeatureDim}; ` +
        `dense ${DENSE_SIZE}; layers ${spec.layers.map((l) => `${l.inputs}→${l.outputs}`).join(', ')}; wide ${WIDE_BUCKETS}×2; ranker.onnx ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB`,
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

    const wasm = new WideAndDeep(v, WIDE_BUCKETS, { seed: SEED, backend: await createWasmMatmul('release') });
    notes.wasm = 'wasm (Ranker port): ranker.onnx read back, dense layers on the WASM SIMD gemm, pooling in TypeScript; wasm (training model): WideAndDeep.forward, same shapes, pooling in the WASM kernel too';
    result.push(...rows('wasm (training model)', await timed(() => wasm.forward(inputs))));
    return result;
  },
};
