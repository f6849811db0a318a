// End to end: the layers, losses and optimizers together learn small planted problems.
import { describe, expect, it } from 'vitest';
import { createWasmMatmul } from '../../../core/kernels/wasm.ts';
import {
  Adam, Dense, EmbeddingBag, InBatchSoftmax, L2Normalize, Relu, SparseAdagrad, sigmoidCrossEntropy, typescriptMatmul,
} from '../../../training/nn/index.ts';
import type { MatmulBackend } from '../../../training/nn/index.ts';
import { Xoshiro128 } from './support.ts';

describe('learning', () => {
  it('an MLP learns XOR with sigmoid cross-entropy', () => {
    const rng = new Xoshiro128(1);
    const hidden = new Dense({ inputs: 2, outputs: 8, rng, backend: typescriptMatmul });
    const relu = new Relu();
    const out = new Dense({ inputs: 8, outputs: 1, rng, backend: typescriptMatmul, init: 'glorot' });
    const adam = new Adam([...hidden.params, ...out.params], { learningRate: 0.05 });
    const x = Float32Array.from([0, 0, 0, 1, 1, 0, 1, 1]);
    const labels = Float32Array.from([0, 1, 1, 0]);
    const grad = new Float32Array(4);
    const losses: number[] = [];
    for (let step = 0; step < 400; step++) {
      const logits = out.forward(relu.forward(hidden.forward(x, 4)), 4);
      losses.push(sigmoidCrossEntropy({ logits, labels }, grad));
      adam.zeroGrad();
      hidden.backward(relu.backward(out.backward(grad)), false);
      adam.step();
    }
    expect(losses[0]).toBeGreaterThan(0.5);
    expect(losses.at(-1)).toBeLessThan(0.05);
  });

  /** One tower as the retrieval model builds it: bag → Dense → ReLU → Dense → L2 (Covington 2016). */
  class Tower {
    readonly bag: EmbeddingBag;
    readonly hidden: Dense;
    readonly relu = new Relu();
    readonly out: Dense;
    readonly norm = new L2Normalize();

    constructor(rows: number, rng: Xoshiro128, backend: MatmulBackend) {
      this.bag = new EmbeddingBag({ rows, dim: 16, pooling: 'mean', rng });
      this.hidden = new Dense({ inputs: 16, outputs: 32, rng, backend });
      this.out = new Dense({ inputs: 32, outputs: 16, rng, backend, init: 'glorot' });
    }

    forward(ids: Int32Array, batch: number): Float32Array {
      const pooled = this.bag.forward(ids, new Float32Array(batch).fill(1), batch, 1);
      return this.norm.forward(this.out.forward(this.relu.forward(this.hidden.forward(pooled, batch)), batch), 16);
    }

    backward(dEmbedding: Float32Array): void {
      this.bag.backward(this.hidden.backward(this.relu.backward(this.out.backward(this.norm.backward(dEmbedding)))));
    }
  }

  it('a two-tower model with in-batch softmax learns a planted user → item identity (WASM gemm)', async () => {
    const backend = await createWasmMatmul();
    const rng = new Xoshiro128(2);
    const n = 64;
    const batch = 32;
    const users = new Tower(n, rng, backend);
    const items = new Tower(n, rng, backend);
    const adam = new Adam([users.hidden, users.out, items.hidden, items.out].flatMap((d) => d.params), { learningRate: 0.01 });
    const adagrad = new SparseAdagrad([users.bag.table, items.bag.table], { learningRate: 0.1 });
    const softmax = new InBatchSoftmax(backend);
    const data = new Xoshiro128(3);
    const logQ = new Float32Array(batch).fill(Math.log(batch / n));
    const losses: number[] = [];
    for (let step = 0; step < 300; step++) {
      const ids = Int32Array.from({ length: batch }, () => data.nextInt(n));
      const u = users.forward(ids, batch);
      const v = items.forward(ids, batch);
      losses.push(softmax.forward({ queries: u, items: v, batch, dim: 16, itemIds: ids, logQ, temperature: 0.1 }));
      adam.zeroGrad();
      adagrad.zeroGrad();
      users.backward(softmax.dQueries);
      items.backward(softmax.dItems);
      adam.step();
      adagrad.step();
    }
    const first = losses.slice(0, 10).reduce((s, l) => s + l, 0) / 10;
    const last = losses.slice(-10).reduce((s, l) => s + l, 0) / 10;
    expect(first).toBeGreaterThan(2);
    expect(last).toBeLessThan(0.1 * first);

    // Retrieval over the whole catalogue: each user's nearest item is its planted one.
    const all = Int32Array.from({ length: n }, (_, i) => i);
    const u = users.forward(all, n).slice();
    const v = items.forward(all, n);
    const scores = new Float32Array(n * n);
    backend.gemm(false, true, n, n, 16, 1, u, v, 0, scores);
    let hits = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < n; j++) if ((scores[i * n + j] as number) > (scores[i * n + best] as number)) best = j;
      if (best === i) hits++;
    }
    expect(hits / n).toBeGreaterThan(0.9);
  });
});
