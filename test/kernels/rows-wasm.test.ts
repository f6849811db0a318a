// The row kernels of serving: `sumRows` (wasm/assembly/rowsum.ts) against itemItemSums, the
// TypeScript loop of the item-item source (training/eval/baselines/cooccurrence.ts), the same bits
// and not just close; `gatherRows` (wasm/assembly/gather.ts) against plain copies.
import { describe, expect, it } from 'vitest';
import { compileWasmKernels, createWasmRowGather, createWasmRowSums } from '../../core/kernels/wasm.ts';
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

describe.each<WasmBuild>(['release', 'debug'])('WASM gatherRows (%s build)', (build) => {
  it('assembles prefix | table row | suffix per row, the table written through its view, across memory growth', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const gather = createWasmRowGather(await compileWasmKernels(build));
    const rows = 500;
    const width = 24;
    gather.setTable(rows, width);
    const table = Float32Array.from({ length: rows * width }, () => gaussian(rng));
    gather.table().set(table);
    const prefix = Float32Array.from({ length: 7 }, () => gaussian(rng));
    // Growing batches: the later ones grow wasm memory, which must not lose the table.
    for (const n of [1, 3, 1000, 20_000]) {
      const items = Int32Array.from({ length: n }, () => Math.floor(rng() * rows));
      const suffix = Float32Array.from({ length: n * 5 }, () => gaussian(rng));
      const out = new Float32Array(n * (7 + width + 5));
      gather.gather(prefix, items, suffix, 5, out);
      const want = new Float32Array(out.length);
      for (let r = 0; r < n; r++) {
        const at = r * (7 + width + 5);
        want.set(prefix, at);
        want.set(table.subarray((items[r] ?? 0) * width, ((items[r] ?? 0) + 1) * width), at + 7);
        want.set(suffix.subarray(r * 5, (r + 1) * 5), at + 7 + width);
      }
      expect(out, `seed ${seed}, ${n} rows`).toEqual(want);
    }
    expect(gather.table()).toEqual(table);
    expect(() => gather.gather(prefix, Int32Array.of(0, rows), new Float32Array(10), 5, new Float32Array(2 * 36))).toThrow(/row 500 is outside the table's 0\.\.499/);
    expect(() => gather.gather(prefix, Int32Array.of(0), new Float32Array(5), 5, new Float32Array(35))).toThrow(/out = 36 floats/);
    expect(() => gather.setTable(3, 3)).toThrow(/once per instance/);
  });
});
