// Finite-difference checks of every layer's and loss's backward. Layers run in float32, so the
// check differentiates Σ r·y (r random, summed in float64) by central differences with a step of
// 1e-2, divided by the step actually stored in float32: truncation error O(eps²) and the float32
// rounding of the outputs (~1e-7 relative, over a step of 2e-2) both stay far under the bound.
import { describe, expect, it } from 'vitest';
import {
  Concat, Dense, EmbeddingBag, InBatchSoftmax, L2Normalize, Relu, sigmoidCrossEntropy, softmaxCrossEntropy,
  typescriptMatmul,
} from '../../../training/nn/index.ts';
import { createWasmMatmul } from '../../../core/kernels/wasm.ts';
import { freshSeed } from '../../support/random.ts';
import { numericGradient, project, randomNormal, relativeError, Xoshiro128 } from './support.ts';

/** ‖analytic − numeric‖ / max norm, for layers computed in float32 (seen: 3e-7 to 6e-5). */
const LAYER_TOLERANCE = 1e-3;
/** The same for losses, which accumulate in float64 from float32 logits (seen: ~3e-8). */
const LOSS_TOLERANCE = 1e-6;

describe('gradients match central differences', () => {
  it.each(['mean', 'sum'] as const)('EmbeddingBag (%s pooling, weighted mask, padding)', (pooling) => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const rows = 12;
    const dim = 5;
    const batch = 4;
    const length = 3;
    const bag = new EmbeddingBag({ rows, dim, pooling, rng });
    // Row 11 only ever appears as padding (mask 0) and must stay untouched.
    const ids = Int32Array.from([0, 3, 11, 3, 3, 5, 7, 11, 11, 2, 9, 4]);
    const mask = Float32Array.from([1, 0.5, 0, 1, 2, 1, 0.7, 0, 0, 1, 1, 1]);
    const r = randomNormal(batch * dim, rng);
    const loss = (): number => project(bag.forward(ids, mask, batch, length), r);
    loss();
    bag.zeroGrad();
    bag.backward(r);
    const grad = bag.table.grad;
    const analytic = new Float64Array(rows * dim);
    for (let s = 0; s < grad.count; s++) {
      for (let d = 0; d < dim; d++) analytic[(grad.rows[s] as number) * dim + d] = grad.values[s * dim + d] as number;
    }
    const numeric = numericGradient(loss, bag.table.value);
    expect(relativeError(analytic, numeric), `seed ${seed}`).toBeLessThanOrEqual(LAYER_TOLERANCE);
    const touched = [...grad.rows.subarray(0, grad.count)].sort((a, b) => a - b);
    expect(touched).toEqual([0, 2, 3, 4, 5, 7, 9]);
  });

  it('EmbeddingBag mean divides by max(Σ mask, 1), as BagSpec says', () => {
    const bag = new EmbeddingBag({ rows: 2, dim: 1, pooling: 'mean', rng: new Xoshiro128(1) });
    bag.table.value.set([2, 4]);
    const out = bag.forward(Int32Array.from([0, 1, 0, 1]), Float32Array.from([0.25, 0.25, 1, 1]), 2, 2);
    expect([...out]).toEqual([1.5, 3]);
  });

  it('EmbeddingBag names the example and position of an out-of-range id', () => {
    const bag = new EmbeddingBag({ rows: 3, dim: 2, pooling: 'sum', rng: new Xoshiro128(1) });
    expect(() => bag.forward(Int32Array.from([0, 3]), Float32Array.from([1, 1]), 1, 2))
      .toThrow("example 0 position 1 has id 3, outside the table's 3 rows");
  });

  it.each(['typescript', 'wasm'] as const)('Dense (%s backend): weight, bias and input', async (which) => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const backend = which === 'wasm' ? await createWasmMatmul() : typescriptMatmul;
    const batch = 5;
    const inputs = 7;
    const outputs = 6;
    const dense = new Dense({ inputs, outputs, rng, backend });
    dense.bias.value.set(randomNormal(outputs, rng));
    const x = randomNormal(batch * inputs, rng);
    const r = randomNormal(batch * outputs, rng);
    const loss = (): number => project(dense.forward(x, batch), r);
    loss();
    dense.zeroGrad();
    const dx = dense.backward(r).slice();
    const message = `seed ${seed}`;
    expect(relativeError(dense.weight.grad, numericGradient(loss, dense.weight.value)), message).toBeLessThanOrEqual(LAYER_TOLERANCE);
    expect(relativeError(dense.bias.grad, numericGradient(loss, dense.bias.value)), message).toBeLessThanOrEqual(LAYER_TOLERANCE);
    expect(relativeError(dx, numericGradient(loss, x)), message).toBeLessThanOrEqual(LAYER_TOLERANCE);
  });

  it('Relu (inputs kept at least 0.05 from the kink)', () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const x = randomNormal(40, rng).map((v) => (v >= 0 ? v + 0.05 : v - 0.05));
    const r = randomNormal(40, rng);
    const relu = new Relu();
    const loss = (): number => project(relu.forward(x), r);
    loss();
    const dx = relu.backward(r).slice();
    expect(relativeError(dx, numericGradient(loss, x)), `seed ${seed}`).toBeLessThanOrEqual(LAYER_TOLERANCE);
  });

  it('L2Normalize', () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const dim = 6;
    const x = randomNormal(4 * dim, rng);
    const r = randomNormal(4 * dim, rng);
    const norm = new L2Normalize();
    const loss = (): number => project(norm.forward(x, dim), r);
    const y = norm.forward(x, dim);
    for (let row = 0; row < 4; row++) {
      let sum = 0;
      for (let d = 0; d < dim; d++) sum += (y[row * dim + d] as number) ** 2;
      expect(sum).toBeCloseTo(1, 6);
    }
    const dx = norm.backward(r).slice();
    expect(relativeError(dx, numericGradient(loss, x, 1e-3)), `seed ${seed}`).toBeLessThanOrEqual(LAYER_TOLERANCE);
  });

  it('Concat routes each part its own columns of the gradient', () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const a = randomNormal(3 * 2, rng);
    const b = randomNormal(3 * 4, rng);
    const r = randomNormal(3 * 6, rng);
    const concat = new Concat();
    const loss = (): number => project(concat.forward([a, b], [2, 4], 3), r);
    loss();
    const [da, db] = concat.backward(r).map((g) => g.slice());
    expect(relativeError(da ?? [], numericGradient(loss, a)), `seed ${seed}`).toBeLessThanOrEqual(LAYER_TOLERANCE);
    expect(relativeError(db ?? [], numericGradient(loss, b)), `seed ${seed}`).toBeLessThanOrEqual(LAYER_TOLERANCE);
  });

  it('softmaxCrossEntropy with row weights', () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const classes = 5;
    const logits = randomNormal(6 * classes, rng, 3);
    const targets = Int32Array.from([0, 4, 2, 2, 1, 3]);
    const weights = Float32Array.from([1, 0.5, 2, 0, 1, 1.5]);
    const grad = new Float32Array(logits.length);
    const loss = (): number => softmaxCrossEntropy({ logits, classes, targets, weights }, new Float32Array(logits.length));
    softmaxCrossEntropy({ logits, classes, targets, weights }, grad);
    expect(relativeError(grad, numericGradient(loss, logits, 1e-3)), `seed ${seed}`).toBeLessThanOrEqual(LOSS_TOLERANCE);
  });

  it('softmaxCrossEntropy stays finite for logits of ±1e4', () => {
    const grad = new Float32Array(3);
    const loss = softmaxCrossEntropy({ logits: Float32Array.from([1e4, -1e4, 0]), classes: 3, targets: Int32Array.from([1]) }, grad);
    expect(loss).toBeCloseTo(2e4, 0);
    expect([...grad].every(Number.isFinite)).toBe(true);
  });

  it('sigmoidCrossEntropy with soft labels and weights, stable at ±1e4', () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const logits = randomNormal(12, rng, 3);
    const labels = Float32Array.from({ length: 12 }, (_, i) => (i % 3) / 2);
    const weights = Float32Array.from({ length: 12 }, (_, i) => (i % 4 === 0 ? 0 : 1 + i / 10));
    const grad = new Float32Array(12);
    const loss = (): number => sigmoidCrossEntropy({ logits, labels, weights }, new Float32Array(12));
    sigmoidCrossEntropy({ logits, labels, weights }, grad);
    expect(relativeError(grad, numericGradient(loss, logits, 1e-3)), `seed ${seed}`).toBeLessThanOrEqual(LOSS_TOLERANCE);
    const extreme = sigmoidCrossEntropy({ logits: Float32Array.from([1e4, -1e4]), labels: Float32Array.from([0, 1]) }, new Float32Array(2));
    expect(extreme).toBeCloseTo(1e4, 0);
  });

  it.each(['typescript', 'wasm'] as const)('InBatchSoftmax with logQ, temperature, weights and a duplicate item (%s)', async (which) => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const backend = which === 'wasm' ? await createWasmMatmul() : typescriptMatmul;
    const batch = 6;
    const dim = 4;
    const queries = randomNormal(batch * dim, rng, 0.5);
    const items = randomNormal(batch * dim, rng, 0.5);
    const itemIds = Int32Array.from([10, 11, 12, 11, 13, 14]);
    const logQ = Float32Array.from([-1, -2, -3, -2, -0.5, -4]);
    const weights = Float32Array.from([1, 2, 0.5, 1, 1, 0]);
    const softmax = new InBatchSoftmax(backend);
    const input = { queries, items, batch, dim, itemIds, logQ, temperature: 0.3, weights };
    softmax.forward(input);
    const dQueries = softmax.dQueries.slice();
    const dItems = softmax.dItems.slice();
    const loss = (): number => softmax.forward(input);
    const message = `seed ${seed}`;
    expect(relativeError(dQueries, numericGradient(loss, queries, 1e-3)), message).toBeLessThanOrEqual(LAYER_TOLERANCE);
    expect(relativeError(dItems, numericGradient(loss, items, 1e-3)), message).toBeLessThanOrEqual(LAYER_TOLERANCE);
  });

  it('InBatchSoftmax masks other copies of a row\'s own item: a batch of one item has loss 0', () => {
    const rng = new Xoshiro128(7);
    const softmax = new InBatchSoftmax(typescriptMatmul);
    const loss = softmax.forward({
      queries: randomNormal(12, rng), items: randomNormal(12, rng), batch: 4, dim: 3,
      itemIds: Int32Array.from([5, 5, 5, 5]), temperature: 0.1,
    });
    expect(loss).toBeCloseTo(0, 10);
    expect(softmax.dQueries.every((g) => g === 0)).toBe(true);
  });
});
