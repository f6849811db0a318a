// The retrieval inner loop: score one 64-d query against 100k item vectors, on every backend.
// Items stay resident where the backend allows it (wasm memory, an ORT tensor, a GPU buffer);
// each timed call uploads the query, computes all N scores and hands them back to JS.
import { scoreDot } from '../../core/domain/vectors.ts';
import { releaseDawnDevice, requestDawnDevice } from '../../core/gpu/dawn.ts';
import { WgslScorer } from '../../core/gpu/score.ts';
import { createWasmScorer } from '../../core/kernels/wasm.ts';
import { createNodeSession, createWebSession } from '../../core/ranking/onnx-session.ts';
import type { OnnxSession } from '../../core/ranking/onnx-session.ts';
import { buildScoreModel, SCORE_MODEL_INPUTS } from '../../training/onnx/score-model.ts';
import { randomMatrix, time } from '../harness.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const N = 100_000;
const DIM = 64;
const SEED = 42;

function rows(name: string, medianMs: number): BenchRow[] {
  const gflops = (2 * N * DIM) / (medianMs * 1e6);
  return [
    { name, metric: 'median_ms', value: medianMs, unit: 'ms' },
    { name, metric: 'gflops', value: gflops, unit: 'GFLOP/s' },
  ];
}

export const suite: BenchSuite = {
  description: `score one ${DIM}-d query against ${N.toLocaleString('en')} items (dot product)`,
  async run(notes) {
    const items = randomMatrix(N * DIM, SEED);
    const query = randomMatrix(DIM, SEED + 1);
    const out = new Float32Array(N);
    Object.assign(notes, { items: N, dim: DIM, protocol: 'median of 30 timed calls after 5 warm-up calls' });
    const result: BenchRow[] = [];

    result.push(...rows('ts', (await time(() => scoreDot(query, items, DIM, out))).median));

    const wasm = await createWasmScorer('release');
    wasm.setItems(items, DIM);
    result.push(...rows('wasm-simd', (await time(() => wasm.score(query, out))).median));

    // ORT: MatMul items[N, dim] x query[dim, 1]. ort-node runs with one intra-op thread, like
    // the WASM kernel; ort-node-2t uses both cores of this machine.
    const model = buildScoreModel(DIM);
    const feeds = {
      [SCORE_MODEL_INPUTS.items]: { data: items, dims: [N, DIM] },
      [SCORE_MODEL_INPUTS.query]: { data: query, dims: [DIM, 1] },
    };
    const sessions: [string, () => Promise<OnnxSession>][] = [
      ['ort-node', () => createNodeSession(model, { intraOpThreads: 1 })],
      ['ort-node-2t', () => createNodeSession(model, { intraOpThreads: 2 })],
      ['ort-web', () => createWebSession(model, { numThreads: 1 })],
    ];
    for (const [name, open] of sessions) {
      const session = await open();
      result.push(...rows(name, (await time(() => session.run(feeds))).median));
      await session.release();
    }

    // WGSL on Dawn: items resident in a GPU storage buffer; the query goes up and the scores
    // come back through a mapped buffer on every call.
    const gpu = await requestDawnDevice();
    notes['wgsl-dawn adapter'] = `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} ${gpu.adapterInfo.description} (driver: ${gpu.driver})`.trim();
    const wgsl = await WgslScorer.create(gpu.device);
    wgsl.setItems(items, DIM);
    result.push(...rows('wgsl-dawn', (await time(() => wgsl.score(query, out))).median));
    wgsl.destroy();
    await releaseDawnDevice();

    return result;
  },
};
