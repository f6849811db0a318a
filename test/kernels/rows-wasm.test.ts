// The row kernels of serving: `sumRows` (wasm/assembly/rowsum.ts) against itemItemSums, the
// TypeScript loop of the item-item source (training/eval/baselines/cooccurrence.ts), the same bits
// and not just close; `firstLayerRows` (wasm/assembly/first-layer.ts) against
// firstLayerRowsReference (core/ranking/factored.ts), the same bits too.
import { describe, expect, it } from 'vitest';
import { compileWasmKernels, createWasmFirstLayer, createWasmRowSums } from '../../core/kernels/wasm.ts';
import { firstLayerRowsReference } from '../../core/ranking/factored.ts';
import type { WasmBuild } from '../../core/kernels/wasm.ts';
import { historyRows, itemItemSums } from '../../training/eval/baselines/cooccurrence.ts';
import { freshSeed, gaussian, mulberry32 } from '../support/random.ts';

describe.each<WasmBuild>(['release', 'debug'])('WASM sumRows (%s build)', (build) => {
  // Odd and even widths (the f64x2 pairs and the last column); row counts around the 4-row pass.
  it.each([[1, [0, 1, 3]], [2, [4, 5]], [7, [0, 3, 4, 9]], [300, [1, 4, 97]], [1001, [100, 203]]] as const)(
    'sums the listed rows of an n × n matrix (n = %i) exactly as itemItemSums does', async (n, counts) => {
      const seed = freshSeed();
      const rng = mulberry32(seed);
      // Magnitudes from 1e-6 to 1e3, so the float64 pass sums and their rounding matter.
      const weights = Float32Array.from({ length: n * n }, () => gaussian(rng) * 10 ** Math.floor(rng() * 10 - 6));
      const sums = await createWasmRowSums(build);
      sums.setMatrix(weights, n);
      // A subset of every item but the last (so some history items are outside it), in shuffled order.
      const items = Int32Array.from({ length: n + 1 }, (_, k) => k).sort(() => rng() - 0.5).slice(0, n);
      const local = new Int32Array(n + 1).fill(-1);
      items.forEach((item, l) => (local[item] = l));
      const subset = { items, local };
      for (const count of counts) {
        const history = Array.from({ length: count }, () => Math.floor(rng() * (n + 1)));
        const want = new Float32Array(n);
        itemItemSums(weights, subset, history, want);
        const got = new Float32Array(n).fill(Number.NaN);
        sums.sums(historyRows(subset, history), got);
        expect(got, `seed ${seed}, n ${n}, ${count} history items`).toEqual(want);
      }
    },
  );

  it('rejects a row outside the matrix and an acc of the wrong length', async () => {
    const sums = await createWasmRowSums(build);
    sums.setMatrix(new Float32Array(9), 3);
    expect(() => sums.sums(Int32Array.of(0, 3), new Float32Array(3))).toThrow(/row 3 is outside 0\.\.2/);
    expect(() => sums.sums(Int32Array.of(0), new Float32Array(2))).toThrow(/acc holds 2 values, the matrix has 3 columns/);
    expect(() => sums.setMatrix(new Float32Array(8), 3)).toThrow(/not n × n for n = 3/);
  });
});

describe.each<WasmBuild>(['release', 'debug'])('WASM firstLayerRows (%s build)', (build) => {
  it('gives act(user + table row + dense · weight) with the bits of the reference, the table written through its view, across memory growth', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const rows = 500;
    // 64: the SIMD lanes alone; 23: a scalar tail after them.
    for (const width of [64, 23]) {
      const kernel = createWasmFirstLayer(await compileWasmKernels(build));
      kernel.setTable(rows, width);
      // Magnitudes from 1e-3 to 1e3, so each float32 rounding shows; some zeros and negatives.
      const value = () => (rng() < 0.05 ? 0 : gaussian(rng) * 10 ** Math.floor(rng() * 6 - 3));
      const table = Float32Array.from({ length: rows * width }, value);
      kernel.table().set(table);
      const user = Float32Array.from({ length: width }, value);
      const denseWidth = 14;
      const weight = Float32Array.from({ length: denseWidth * width }, value);
      // Growing batches: the later ones grow wasm memory, which must not lose the table.
      for (const n of [1, 3, 1000, 20_000]) {
        const items = Int32Array.from({ length: n }, () => Math.floor(rng() * rows));
        const dense = Float32Array.from({ length: n * denseWidth }, value);
        for (const relu of [true, false]) {
          const out = new Float32Array(n * width);
          kernel.compute(user, items, dense, denseWidth, weight, relu, out);
          const want = new Float32Array(n * width);
          firstLayerRowsReference(user, table, width, items, dense, denseWidth, weight, relu, want);
          expect(out, `seed ${seed}, width ${width}, ${n} rows, relu ${relu}`).toEqual(want);
          if (relu) expect(out.some((v) => v > 0) && out.every((v) => v >= 0 && !Object.is(v, -0))).toBe(true);
          else expect(out.some((v) => v < 0)).toBe(true);
        }
      }
      expect(kernel.table()).toEqual(table);
      // One row worked by hand: user + table row + Σ dense · weight, float32 steps.
      const one = new Float32Array(width);
      kernel.compute(user, Int32Array.of(7), Float32Array.from({ length: denseWidth }, (_, k) => (k === 2 ? 2 : 0)), denseWidth, weight, false, one);
      for (let j = 0; j < width; j++) {
        expect(one[j]).toBe(Math.fround(Math.fround((user[j] ?? 0) + (table[7 * width + j] ?? 0)) + Math.fround(2 * (weight[2 * width + j] ?? 0))));
      }
      expect(() => kernel.compute(user, Int32Array.of(0, rows), new Float32Array(2 * denseWidth), denseWidth, weight, true, new Float32Array(2 * width))).toThrow(/row 500 is outside the table's 0\.\.499/);
      expect(() => kernel.compute(user, Int32Array.of(0), new Float32Array(denseWidth), denseWidth, weight, true, new Float32Array(width + 1))).toThrow(new RegExp(`out = ${width} floats`));
      expect(() => kernel.setTable(3, 3)).toThrow(/once per instance/);
    }
  });
});
