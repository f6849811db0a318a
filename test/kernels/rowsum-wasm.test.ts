// The `sumRows` kernel (wasm/assembly/rowsum.ts) against itemItemSums, the TypeScript loop of the
// item-item source (training/eval/baselines/cooccurrence.ts): the same bits, not just close.
import { describe, expect, it } from 'vitest';
import { createWasmRowSums } from '../../core/kernels/wasm.ts';
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
