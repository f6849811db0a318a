import { describe, expect, it } from 'vitest';
import {
  Adam, clipGradNorm, Dense, EmbeddingBag, LazyAdam, Param, SparseAdagrad, typescriptMatmul,
} from '../../../training/nn/index.ts';
import type { SparseParam } from '../../../training/nn/index.ts';
import { Xoshiro128 } from './support.ts';

/** One step on a bag whose batch uses rows 3, 7 and 7 again (row 9 only as padding). */
function stepOnRows(bag: EmbeddingBag, step: () => void): void {
  bag.forward(Int32Array.from([3, 7, 7, 9]), Float32Array.from([1, 1, 1, 0]), 2, 2);
  bag.zeroGrad();
  bag.backward(new Float32Array(2 * bag.dim).fill(0.5));
  step();
}

describe.each([
  ['SparseAdagrad', (p: SparseParam) => new SparseAdagrad([p], { learningRate: 0.1, weightDecay: 0.01 })],
  ['LazyAdam', (p: SparseParam) => new LazyAdam([p], { learningRate: 0.1 })],
] as const)('%s', (_name, make) => {
  it('changes only the touched rows; every other row stays bitwise the same', () => {
    const rows = 1_000_000;
    const bag = new EmbeddingBag({ rows, dim: 4, pooling: 'mean', rng: new Xoshiro128(3) });
    const before = bag.table.value.slice();
    const optimizer = make(bag.table);
    stepOnRows(bag, () => optimizer.step());
    const changed: number[] = [];
    const after = new Uint32Array(bag.table.value.buffer);
    const was = new Uint32Array(before.buffer);
    for (let i = 0; i < after.length; i++) {
      if (after[i] !== was[i]) {
        const row = Math.floor(i / 4);
        if (changed.at(-1) !== row) changed.push(row);
      }
    }
    expect(changed).toEqual([3, 7]);
    expect(bag.table.grad.count).toBe(2);
  });

  it('costs per step what the touched rows cost, not the table (1M rows vs 100 rows)', () => {
    const time = (rows: number): number => {
      const bag = new EmbeddingBag({ rows, dim: 4, pooling: 'sum', rng: new Xoshiro128(1), initStd: 0.1 });
      const optimizer = make(bag.table);
      const start = performance.now();
      for (let i = 0; i < 200; i++) stepOnRows(bag, () => optimizer.step());
      return performance.now() - start;
    };
    time(100); // warm up the JIT
    const small = time(100);
    const large = time(1_000_000);
    // A full pass over 4M floats per step would be ≥ 1000× slower; allow generous timer noise.
    expect(large).toBeLessThan(small * 20 + 20);
  });
});

describe('Adam', () => {
  it('minimises a quadratic: w → target', () => {
    const target = Float32Array.from([1, -2, 3]);
    const w = new Param(new Float32Array(3));
    const adam = new Adam([w], { learningRate: 0.05 });
    for (let step = 0; step < 500; step++) {
      adam.zeroGrad();
      for (let i = 0; i < 3; i++) w.grad[i] = 2 * ((w.value[i] as number) - (target[i] as number));
      adam.step();
    }
    for (let i = 0; i < 3; i++) expect(w.value[i]).toBeCloseTo(target[i] as number, 2);
  });

  it('takes a first step of learningRate·sign(g), as bias correction promises', () => {
    const w = new Param(Float32Array.from([0, 0]));
    w.grad.set([3, -0.001]);
    new Adam([w], { learningRate: 0.1, epsilon: 0 }).step();
    expect(w.value[0]).toBeCloseTo(-0.1, 6);
    expect(w.value[1]).toBeCloseTo(0.1, 6);
  });
});

describe('clipGradNorm', () => {
  it('scales dense and sparse gradients together to the max norm and returns the old norm', () => {
    const dense = new Param(new Float32Array(2));
    dense.grad.set([3, 0]);
    const bag = new EmbeddingBag({ rows: 5, dim: 1, pooling: 'sum', rng: new Xoshiro128(1) });
    bag.forward(Int32Array.from([2]), Float32Array.from([1]), 1, 1);
    bag.backward(Float32Array.from([4]));
    expect(clipGradNorm([dense], [bag.table], 1)).toBeCloseTo(5, 6);
    expect(dense.grad[0]).toBeCloseTo(0.6, 6);
    expect(bag.table.grad.values[0]).toBeCloseTo(0.8, 6);
  });
});

describe('determinism', () => {
  /** Bits of every weight after `steps` steps of a bag → Dense model from `seed`. */
  function train(seed: number, steps: number): Uint32Array[] {
    const rng = new Xoshiro128(seed);
    const bag = new EmbeddingBag({ rows: 50, dim: 8, pooling: 'mean', rng });
    const dense = new Dense({ inputs: 8, outputs: 3, rng, backend: typescriptMatmul });
    const adam = new Adam(dense.params, { learningRate: 0.01 });
    const adagrad = new SparseAdagrad([bag.table], { learningRate: 0.1 });
    const data = new Xoshiro128(seed ^ 0x5bd1e995);
    for (let step = 0; step < steps; step++) {
      const ids = Int32Array.from({ length: 16 * 3 }, () => data.nextInt(50));
      const mask = Float32Array.from({ length: 16 * 3 }, () => (data.next() < 0.8 ? 1 : 0));
      const y = dense.forward(bag.forward(ids, mask, 16, 3), 16);
      adam.zeroGrad();
      adagrad.zeroGrad();
      bag.backward(dense.backward(y)); // gradient of ½‖y‖²
      adam.step();
      adagrad.step();
    }
    return [bag.table.value, dense.weight.value, dense.bias.value].map((v) => new Uint32Array(v.slice().buffer));
  }

  it('the same seed gives bitwise the same weights after 50 steps; another seed does not', () => {
    expect(train(42, 50)).toEqual(train(42, 50));
    expect(train(43, 50)).not.toEqual(train(42, 50));
  });
});
