// The fast row kernels of training/nn against straightforward references, bit for bit: each keeps
// the reference's float64 operations and float32 stores, so a trained model does not depend on
// which one ran. The WASM softmax rows run in both builds against the TypeScript passes.
import { describe, expect, it } from 'vitest';
import { createWasmMatmul, loadWasmKernels } from '../../../core/kernels/wasm.ts';
import type { WasmBuild } from '../../../core/kernels/wasm.ts';
import { EmbeddingBag, InBatchSoftmax, Relu, typescriptMatmul } from '../../../training/nn/index.ts';
import type { MatmulBackend } from '../../../training/nn/index.ts';
import { freshSeed } from '../../support/random.ts';
import { randomNormal, Xoshiro128 } from './support.ts';

const BUILDS: WasmBuild[] = ['release', 'debug'];

/** Same floats, bit for bit (NaN payloads aside, −0 and +0 told apart). */
function expectSameFloats(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const first = actual.findIndex((v, i) => !Object.is(v, expected[i]));
  expect(first, `${what}: first difference at ${first}: ${actual[first]} vs ${expected[first]}`).toBe(-1);
}

/** The pooling loop as written before it was unrolled: the reference for EmbeddingBag. */
function referenceBag(table: Float32Array, dim: number, ids: Int32Array, mask: Float32Array, batch: number, length: number, mean: boolean) {
  const out = new Float32Array(batch * dim);
  const scale = new Float32Array(batch);
  for (let b = 0; b < batch; b++) {
    let weight = 0;
    for (let l = 0; l < length; l++) weight += mask[b * length + l] as number;
    const s = mean ? 1 / Math.max(weight, 1) : 1;
    scale[b] = s;
    for (let l = 0; l < length; l++) {
      const m = mask[b * length + l] as number;
      if (m === 0) continue;
      const src = (ids[b * length + l] as number) * dim;
      for (let d = 0; d < dim; d++) out[b * dim + d] = (out[b * dim + d] as number) + m * s * (table[src + d] as number);
    }
  }
  return { out, scale };
}

/** The pooling loops in TypeScript, and in the `poolRows` kernel of each WASM build. */
async function bagBackends(): Promise<[string, MatmulBackend | undefined][]> {
  const wasm = await Promise.all(BUILDS.map(async (b): Promise<[string, MatmulBackend]> => [`wasm ${b}`, await createWasmMatmul(b)]));
  return [['typescript', undefined], ...wasm];
}

describe('EmbeddingBag matches the row-by-row reference bit for bit', async () => {
  const backends = await bagBackends();
  // 37 rows: the batch can touch every row, so a copying kernel gets the whole table; 5000 rows:
  // it gets only the rows the batch uses.
  describe.each(backends)('%s', (_name, backend) => {
    it.each([
      [64, 50, 'mean', 37], [32, 1, 'sum', 37], [13, 7, 'mean', 37], [3, 4, 'sum', 37], [16, 9, 'sum', 37],
      [64, 3, 'mean', 5000], [19, 2, 'sum', 5000],
    ] as const)('dim %i, length %i, %s pooling, %i rows, with padding and per-id weights', (dim, length, pooling, rows) => {
      const seed = freshSeed();
      const rng = new Xoshiro128(seed);
      const batch = 23;
      const bag = new EmbeddingBag({ rows, dim, pooling, rng, ...(backend ? { backend } : {}) });
      const ids = new Int32Array(batch * length);
      const mask = new Float32Array(batch * length);
      for (let i = 0; i < ids.length; i++) {
        ids[i] = Math.floor(rng.next() * rows);
        const r = rng.next();
        mask[i] = r < 0.3 ? 0 : r < 0.8 ? 1 : Math.fround(rng.next() * 2);
      }
      const table = bag.table.value;
      const expected = referenceBag(table, dim, ids, mask, batch, length, pooling === 'mean');
      expectSameFloats(bag.forward(ids, mask, batch, length), expected.out, `forward, seed ${seed}`);

      const dOut = randomNormal(batch * dim, rng);
      bag.zeroGrad();
      bag.backward(dOut);
      bag.backward(dOut); // a second backward adds on top of the first
      const grad = bag.table.grad;
      const expectedGrad = new Float32Array(rows * dim);
      const order: number[] = [];
      for (let pass = 0; pass < 2; pass++) {
        for (let b = 0; b < batch; b++) {
          for (let l = 0; l < length; l++) {
            const m = mask[b * length + l] as number;
            if (m === 0) continue;
            const id = ids[b * length + l] as number;
            if (!order.includes(id)) order.push(id);
            const w = m * (expected.scale[b] as number);
            for (let d = 0; d < dim; d++) expectedGrad[id * dim + d] = (expectedGrad[id * dim + d] as number) + w * (dOut[b * dim + d] as number);
          }
        }
      }
      expect(Array.from(grad.rows.subarray(0, grad.count)), `touched rows in first-touch order, seed ${seed}`).toEqual(order);
      const actualGrad = new Float32Array(order.length * dim);
      const wanted = new Float32Array(order.length * dim);
      order.forEach((id, s) => {
        actualGrad.set(grad.values.subarray(s * dim, (s + 1) * dim), s * dim);
        wanted.set(expectedGrad.subarray(id * dim, (id + 1) * dim), s * dim);
      });
      expectSameFloats(actualGrad, wanted, `backward, seed ${seed}`);
    });
  });

  it.each(backends)('%s: an out-of-range id leaves the bag usable', (_name, backend) => {
    const bag = new EmbeddingBag({ rows: 1000, dim: 8, pooling: 'sum', rng: new Xoshiro128(5), ...(backend ? { backend } : {}) });
    expect(() => bag.forward(Int32Array.from([4, 1000]), Float32Array.from([1, 1]), 1, 2)).toThrow('example 0 position 1 has id 1000');
    const out = bag.forward(Int32Array.from([4, 7]), Float32Array.from([1, 1]), 1, 2);
    const table = bag.table.value;
    expectSameFloats(out, Float32Array.from({ length: 8 }, (_, d) => (table[32 + d] as number) + (table[56 + d] as number)), 'forward after the error');
  });
});

describe('Relu: the branchless bit masks match the branches', () => {
  it('on signed zeros, infinities, NaN and random values', () => {
    const rng = new Xoshiro128(freshSeed());
    const x = Float32Array.from([0, -0, Infinity, -Infinity, Number.NaN, 1e-45, -1e-45, 3, -3, ...randomNormal(1000, rng)]);
    const dy = Float32Array.from([Number.NaN, -0, -2, Infinity, 5, -0, 1, -Infinity, Number.NaN, ...randomNormal(1000, rng)]);
    const relu = new Relu();
    expectSameFloats(relu.forward(x), x.map((v) => (v > 0 ? v : 0)), 'forward');
    const dx = relu.backward(dy);
    expect(Array.from(dx).map((v, i) => (x[i] as number) > 0 ? Object.is(v, dy[i]) || (Number.isNaN(v) && Number.isNaN(dy[i])) : Object.is(v, 0)).every(Boolean)).toBe(true);
    // A subarray of a larger buffer (the layout Concat and Dense hand over) works the same.
    const big = new Float32Array(x.length + 8);
    big.set(x, 3);
    expectSameFloats(new Relu().forward(big.subarray(3, 3 + x.length)), x.map((v) => (v > 0 ? v : 0)), 'forward on a subarray');
  });
});

describe.each(BUILDS)('WASM in-batch softmax rows (%s) match the TypeScript passes bit for bit', (build) => {
  it('fdlibm exp, scalar and two-lane, equals Math.exp on edge cases and 200k random arguments', async () => {
    const kernels = await loadWasmKernels(build);
    const rng = new Xoshiro128(freshSeed());
    const xs = [0, -0, 1e-300, -1e-300, Infinity, -Infinity, Number.NaN, 709.78, 709.79, -745.1, -745.2, -708, -720, 0.34657, -0.34658, 1.0397, -1.0398];
    for (let i = 0; i < 200_000; i++) xs.push((rng.next() - 0.9) * (i % 2 === 0 ? 60 : 1500));
    const bad = xs.filter((x) => !Object.is(kernels.exp64(x, 0), Math.exp(x)) || !Object.is(kernels.exp64(x, 1), Math.exp(x)));
    expect(bad.slice(0, 5)).toEqual([]);
  });

  it.each([
    ['logQ, weights and duplicates', true, true, true],
    ['no logQ, no weights, no duplicates', false, false, false],
    ['duplicates only', false, false, true],
  ])('%s', async (_name, withLogQ, withWeights, duplicates) => {
    const wasm = await createWasmMatmul(build);
    // Same gemm on both sides, so only the row passes differ.
    const withKernel: MatmulBackend = { name: 'typescript + wasm rows', gemm: typescriptMatmul.gemm, inBatchSoftmaxRows: wasm.inBatchSoftmaxRows };
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    for (const [batch, dim] of [[64, 16], [7, 3], [1, 4]] as const) {
      const queries = randomNormal(batch * dim, rng);
      const items = randomNormal(batch * dim, rng);
      const itemIds = Int32Array.from({ length: batch }, (_, i) => (duplicates ? Math.floor(rng.next() * batch / 3) : i));
      const logQ = withLogQ ? randomNormal(batch, rng) : undefined;
      const weights = withWeights ? Float32Array.from({ length: batch }, () => rng.next() * 2) : undefined;
      const input = { queries, items, batch, dim, itemIds, logQ, weights, temperature: 0.07 };
      const reference = new InBatchSoftmax(typescriptMatmul);
      const fast = new InBatchSoftmax(withKernel);
      const what = `seed ${seed}, batch ${batch}`;
      expect(Object.is(fast.forward(input), reference.forward(input)), `loss, ${what}`).toBe(true);
      expectSameFloats(fast.dQueries, reference.dQueries, `dQueries, ${what}`);
      expectSameFloats(fast.dItems, reference.dItems, `dItems, ${what}`);
    }
  });
});
