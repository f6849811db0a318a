// Parity of the two `Ranker` adapters (core/ranking/ranker.ts): ONNX Runtime on the CPU and the WGSL
// forward pass on WebGPU (SwiftShader here), opened from the same exported bytes, against each other
// and against the TypeScript reference `forwardNetwork`, on fresh random networks and inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseDawnDevice, requestDawnDevice } from '../../core/gpu/dawn.ts';
import { compileWasmKernels, createWasmFirstLayer } from '../../core/kernels/wasm.ts';
import { FactoredRanker } from '../../core/ranking/factored.ts';
import { openRanker } from '../../core/ranking/ranker.ts';
import type { Ranker } from '../../core/ranking/ranker.ts';
import { DENSE_SIZE } from '../../training/features/feature-state.ts';
import { forwardNetwork } from '../../training/models/forward.ts';
import type { BagSpec, DenseLayerSpec, NetworkInputs, NetworkSpec } from '../../training/models/spec.ts';
import { exportNetwork } from '../../training/onnx/network.ts';
import { InputBuilder, RANKER_INPUTS, RANKER_OUTPUT } from '../../training/ranker/inputs.ts';
import type { RankerVocabulary, ScoringRows } from '../../training/ranker/inputs.ts';
import type { Csr } from '../../training/data/dataset.ts';
import { freshSeed, gaussian, mulberry32 } from '../support/random.ts';
import type { Rng } from '../support/random.ts';

/** |a − b| ≤ TOLERANCE · max(1, |b|): float32 sums of ≤ ~100 terms against ORT and a float64 reference. */
const TOLERANCE = 1e-4;
const CANDIDATES = 1000;
const TOP = 100;

function randomBag(rng: Rng, name: string, rows: number, dim: number, mode: BagSpec['mode'], scale = 0.5): BagSpec {
  return { name, rows, dim, mode, table: Float32Array.from({ length: rows * dim }, () => scale * gaussian(rng)) };
}

/** He-initialised layers of the given widths, relu on all but the last. */
function randomLayers(rng: Rng, widths: readonly number[]): DenseLayerSpec[] {
  const layers: DenseLayerSpec[] = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const inputs = widths[l] ?? 1;
    const outputs = widths[l + 1] ?? 1;
    const std = Math.sqrt(2 / inputs);
    layers.push({
      inputs, outputs,
      weight: Float32Array.from({ length: inputs * outputs }, () => std * gaussian(rng)),
      bias: Float32Array.from({ length: outputs }, () => 0.1 * gaussian(rng)),
      activation: l + 2 === widths.length ? 'none' : 'relu',
    });
  }
  return layers;
}

/** A Wide&Deep ranker spec shaped like training/ranker/wide-deep.ts's, with random weights (the wide part too). */
function wideDeepSpec(rng: Rng): NetworkSpec {
  const bags = [
    randomBag(rng, RANKER_INPUTS.user, 301, 16, 'mean'),
    randomBag(rng, RANKER_INPUTS.item, 457, 16, 'mean'),
    randomBag(rng, RANKER_INPUTS.categories, 19, 8, 'mean'),
    randomBag(rng, RANKER_INPUTS.userFeatures, 23, 8, 'mean'),
  ];
  const width = bags.reduce<number>((w, b) => w + b.dim, DENSE_SIZE);
  return {
    bags,
    dense: { name: RANKER_INPUTS.dense, size: DENSE_SIZE },
    layers: randomLayers(rng, [width, 64, 32, 2]),
    wide: randomBag(rng, RANKER_INPUTS.wide, 1 << 12, 2, 'sum', 0.2),
    output: 'none',
    outputName: RANKER_OUTPUT,
  };
}

/** A retrieval tower: a mean bag of history (padded), a sum bag, a dense input, odd widths, l2 output. */
function towerSpec(rng: Rng): NetworkSpec {
  const bags = [randomBag(rng, 'history', 500, 24, 'mean'), randomBag(rng, 'genres', 17, 5, 'sum')];
  return {
    bags,
    dense: { name: 'context', size: 3 },
    layers: randomLayers(rng, [24 + 5 + 3, 48, 33]),
    output: 'l2',
    outputName: 'embedding',
  };
}

/** Ids per row of each bag in the generated inputs. */
const LENGTHS: Record<string, number> = {
  [RANKER_INPUTS.user]: 1, [RANKER_INPUTS.item]: 1, [RANKER_INPUTS.categories]: 3,
  [RANKER_INPUTS.userFeatures]: 4, [RANKER_INPUTS.wide]: 7, history: 20, genres: 3,
};

interface InputOptions {
  /** Share of rows whose every mask value is 0 (an empty bag: pooled to zeros). */
  emptyRows?: number;
  /** Mean bags get per-id weights in [0.1, 1) instead of 1, so some rows weigh less than 1 in all (divisor max(Σ, 1)). */
  weightedMeans?: boolean;
}

/**
 * Random inputs for `spec`: each row uses a random prefix of its bag's slots (padding after, as
 * InputBuilder writes it), with mask 1 or, for sum bags, a random per-id weight.
 */
function randomInputs(spec: NetworkSpec, batch: number, rng: Rng, options: InputOptions = {}): NetworkInputs {
  const bags: NetworkInputs['bags'] = {};
  for (const bag of spec.wide === undefined ? spec.bags : [...spec.bags, spec.wide]) {
    const length = LENGTHS[bag.name] ?? 2;
    const ids = new Int32Array(batch * length);
    const mask = new Float32Array(batch * length);
    for (let r = 0; r < batch; r++) {
      const empty = rng() < (options.emptyRows ?? 0);
      const used = empty ? 0 : 1 + Math.floor(rng() * length);
      for (let j = 0; j < length; j++) {
        const at = r * length + j;
        // Padding slots hold id 0, as InputBuilder leaves them; some hold a real id, to check the mask is honoured.
        ids[at] = j < used || rng() < 0.3 ? Math.floor(rng() * bag.rows) : 0;
        const weighted = bag.mode === 'sum' || options.weightedMeans === true;
        mask[at] = j < used ? (weighted ? 0.1 + 0.9 * rng() : 1) : 0;
      }
    }
    bags[bag.name] = { ids, mask, length };
  }
  const inputs: NetworkInputs = { batch, bags };
  if (spec.dense !== undefined) inputs.dense = Float32Array.from({ length: batch * spec.dense.size }, () => gaussian(rng));
  return inputs;
}

/** Largest |got − want| / max(1, |want|); fails on a length mismatch or a non-finite value. */
function maxRelativeDifference(got: Float32Array, want: Float32Array): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const a = got[i] ?? Number.NaN;
    const b = want[i] ?? Number.NaN;
    expect(Number.isFinite(a), `value ${i} is ${a}`).toBe(true);
    worst = Math.max(worst, Math.abs(a - b) / Math.max(1, Math.abs(b)));
  }
  return worst;
}

/** Row indexes of the `k` largest values of column `column`, best first. */
function topRows(scores: Float32Array, outputs: number, column: number, k: number): number[] {
  const rows = Array.from({ length: scores.length / outputs }, (_, r) => r);
  const at = (r: number): number => scores[r * outputs + column] ?? Number.NEGATIVE_INFINITY;
  return rows.sort((a, b) => at(b) - at(a) || a - b).slice(0, k);
}

/**
 * The same top-k order as the reference, except where two rows' reference scores tie within the
 * tolerance: then they may come in either order (and, at the cut, either may be in).
 */
function expectSameTop(got: Float32Array, want: Float32Array, outputs: number, what: string): void {
  const mine = topRows(got, outputs, 0, TOP);
  const theirs = topRows(want, outputs, 0, TOP);
  const score = (r: number): number => want[r * outputs] ?? Number.NaN;
  mine.forEach((row, k) => {
    const other = theirs[k] ?? -1;
    if (row === other) return;
    const gap = Math.abs(score(row) - score(other));
    expect(gap, `${what}: rank ${k} is row ${row} (${score(row)}), the reference's row ${other} (${score(other)})`)
      .toBeLessThanOrEqual(TOLERANCE * Math.max(1, Math.abs(score(other))));
  });
}

/** A CSR of `rows` rows, each with 0..max random distinct-ish ids below `below`. */
function randomCsr(rng: Rng, rows: number, max: number, below: number): Csr {
  const offsets = new Int32Array(rows + 1);
  const indices: number[] = [];
  for (let r = 0; r < rows; r++) {
    const count = Math.floor(rng() * (max + 1));
    for (let k = 0; k < count; k++) indices.push(Math.floor(rng() * below));
    offsets[r + 1] = indices.length;
  }
  return { offsets, indices: Int32Array.from(indices) };
}

/**
 * A vocabulary for wideDeepSpec's tables (300 users + the OOV row, 456 items + the OOV row) over a
 * snapshot of `snapshotItems` items: those from 456 on are new since training (the OOV row).
 */
function rankerVocabulary(rng: Rng, snapshotItems: number): RankerVocabulary {
  return {
    users: 300, items: 456, categories: 19, userFeatures: 23,
    itemCategories: randomCsr(rng, snapshotItems, 3, 19), userFeatureRows: randomCsr(rng, 320, 4, 23),
  };
}

/** One user's scoring rows: random items of the snapshot (repeats allowed), dense features and wide ids. */
function userRows(rng: Rng, user: number, count: number, snapshotItems: number): ScoringRows {
  const wide = randomCsr(rng, count, 7, 1 << 12);
  return {
    length: count, user: new Int32Array(count).fill(user), item: Int32Array.from({ length: count }, () => Math.floor(rng() * snapshotItems)),
    dense: Float32Array.from({ length: count * DENSE_SIZE }, () => gaussian(rng)), wideOffsets: wide.offsets, wideIds: wide.indices,
  };
}

describe('Ranker parity: ONNX (CPU), WGSL (WebGPU) and the WASM GEMM against forwardNetwork', () => {
  const opened: Ranker[] = [];
  async function open(spec: NetworkSpec): Promise<{ onnx: Ranker; webgpu: Ranker; wasm: Ranker }> {
    const bytes = exportNetwork(spec);
    const [onnx, webgpu, wasm] = await Promise.all([openRanker('onnx', bytes), openRanker('webgpu', bytes), openRanker('wasm', bytes)]);
    opened.push(onnx, webgpu, wasm);
    return { onnx, webgpu, wasm };
  }

  /** Scores `inputs` on both rankers and the reference; returns the largest relative difference. */
  async function expectParity(rankers: { onnx: Ranker; webgpu: Ranker; wasm: Ranker }, spec: NetworkSpec, inputs: NetworkInputs, seed: number): Promise<number> {
    const want = forwardNetwork(spec, inputs);
    const [onnx, webgpu, wasm] = await Promise.all([rankers.onnx.score(inputs), rankers.webgpu.score(inputs), rankers.wasm.score(inputs)]);
    const worst = Math.max(
      maxRelativeDifference(webgpu, want),
      maxRelativeDifference(onnx, want),
      maxRelativeDifference(webgpu, onnx),
      maxRelativeDifference(wasm, want),
    );
    expect(worst, `seed ${seed}, batch ${inputs.batch}`).toBeLessThanOrEqual(TOLERANCE);
    return worst;
  }

  beforeAll(async () => {
    const gpu = await requestDawnDevice();
    console.info(`WebGPU adapter: ${gpu.driver} (${gpu.adapterInfo.description || gpu.adapterInfo.architecture})`);
  });

  afterAll(async () => {
    await Promise.all(opened.map((r) => r.close()));
    await releaseDawnDevice();
  });

  it(`scores ${CANDIDATES} Wide&Deep candidates alike, with the same top ${TOP} by click logit`, async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const spec = wideDeepSpec(rng);
    const rankers = await open(spec);
    expect(rankers.onnx.outputs).toBe(2);
    expect(rankers.webgpu.outputs).toBe(2);
    const inputs = randomInputs(spec, CANDIDATES, rng);
    const want = forwardNetwork(spec, inputs);
    const onnx = await rankers.onnx.score(inputs);
    const webgpu = await rankers.webgpu.score(inputs);
    expect(webgpu.length).toBe(CANDIDATES * 2);
    const vsReference = maxRelativeDifference(webgpu, want);
    const vsOnnx = maxRelativeDifference(webgpu, onnx);
    const onnxVsReference = maxRelativeDifference(onnx, want);
    console.info(
      `ranker parity (seed ${seed}): max relative difference webgpu–reference ${vsReference.toExponential(2)}, ` +
      `webgpu–onnx ${vsOnnx.toExponential(2)}, onnx–reference ${onnxVsReference.toExponential(2)}`,
    );
    expect(vsReference, `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    expect(vsOnnx, `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    expect(onnxVsReference, `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    expectSameTop(webgpu, want, 2, `webgpu vs reference, seed ${seed}`);
    expectSameTop(webgpu, onnx, 2, `webgpu vs onnx, seed ${seed}`);
    expectSameTop(onnx, want, 2, `onnx vs reference, seed ${seed}`);
    expect(rankers.wasm.outputs).toBe(2);
    const wasm = await rankers.wasm.score(inputs);
    const wasmVsReference = maxRelativeDifference(wasm, want);
    console.info(`ranker parity (seed ${seed}): wasm–reference ${wasmVsReference.toExponential(2)}`);
    expect(wasmVsReference, `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    expectSameTop(wasm, want, 2, `wasm vs reference, seed ${seed}`);
  });

  it('scores one user\'s candidates through the factored first layer (core/ranking/factored.ts) as the whole network does', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const spec = wideDeepSpec(rng);
    const factored = new FactoredRanker(spec);
    expect(factored.spec.bags).toEqual([]);
    const rankers = await open(factored.spec);
    const snapshotItems = 500;
    const vocabulary = rankerVocabulary(rng, snapshotItems);
    const parts = factored.itemParts(vocabulary, snapshotItems);
    // The same shares in a WASM instance's memory, rows computed by its first-layer kernel: the same inputs.
    const gathered = factored.itemParts(vocabulary, snapshotItems, createWasmFirstLayer(await compileWasmKernels()));
    let worst = 0;
    // A known user, the OOV row, a user the model never saw (index past its vocabulary); a batch of one.
    for (const [user, count] of [[17, CANDIDATES], [300, 200], [310, 200], [42, 1]] as const) {
      const rows = userRows(rng, user, count, snapshotItems);
      const all = Int32Array.from({ length: count }, (_, k) => k);
      const want = forwardNetwork(spec, new InputBuilder(vocabulary).build(rows, all, 0, count));
      const userPart = factored.userPart(vocabulary, user);
      expect(factored.inputs(rows, gathered, userPart)).toEqual(factored.inputs(rows, parts, userPart));
      const reference: Ranker = { kind: 'wasm', outputs: 2, score: async (inputs) => forwardNetwork(factored.spec, inputs), close: async () => {} };
      const scored = await Promise.all(
        ([['reference', reference], ['onnx', rankers.onnx], ['webgpu', rankers.webgpu], ['wasm', rankers.wasm]] as const)
          .map(async ([what, ranker]) => [what, await factored.score(ranker, rows, parts, userPart)] as const),
      );
      for (const [what, got] of scored) {
        worst = Math.max(worst, maxRelativeDifference(got, want));
        expect(maxRelativeDifference(got, want), `${what}, seed ${seed}, user ${user}`).toBeLessThanOrEqual(TOLERANCE);
        if (count >= TOP) expectSameTop(got, want, 2, `factored ${what} vs the whole network, seed ${seed}, user ${user}`);
      }
    }
    console.info(`factored ranker parity (seed ${seed}): max relative difference to the whole network ${worst.toExponential(2)}`);
    // An adapter that reads its input later (as an asynchronous one may) reads its own call's
    // first layer: a call meanwhile writes its rows elsewhere.
    const late: Ranker = {
      kind: 'wasm', outputs: 2, close: async () => {},
      score: async (inputs) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return forwardNetwork(factored.spec, inputs);
      },
    };
    const calls = ([[17, 300], [300, 200]] as const).map(([user, count]) => [userRows(rng, user, count, snapshotItems), factored.userPart(vocabulary, user)] as const);
    const alone: Float32Array[] = [];
    for (const [rows, userPart] of calls) alone.push(await factored.score(late, rows, parts, userPart));
    expect(await Promise.all(calls.map(([rows, userPart]) => factored.score(late, rows, parts, userPart)))).toEqual(alone);
    const mixed = userRows(rng, 5, 3, snapshotItems);
    mixed.user[2] = 6;
    expect(() => factored.inputs(mixed, parts, factored.userPart(vocabulary, 5))).toThrow(/one user's: row 2 has user 6/);
    const outside: ScoringRows = { ...mixed, user: new Int32Array(3).fill(5), item: Int32Array.of(0, snapshotItems, 1) };
    expect(() => factored.inputs(outside, parts, factored.userPart(vocabulary, 5))).toThrow(/outside this snapshot's 0\.\.499/);
  });

  it('scores a batch of one, then batches that outgrow the reused buffers, then a small one again', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const spec = wideDeepSpec(rng);
    const rankers = await open(spec);
    for (const batch of [1, 10, 2500, 3, 4099, 1]) await expectParity(rankers, spec, randomInputs(spec, batch, rng), seed);
  });

  it('runs an l2-output tower (mean and sum bags, odd widths) to unit-length rows', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const spec = towerSpec(rng);
    const rankers = await open(spec);
    expect(rankers.webgpu.outputs).toBe(33);
    const inputs = randomInputs(spec, 777, rng, { weightedMeans: true });
    await expectParity(rankers, spec, inputs, seed);
    const rows = await rankers.webgpu.score(inputs);
    for (let r = 0; r < inputs.batch; r++) {
      const norm = Math.hypot(...rows.subarray(r * 33, (r + 1) * 33));
      expect(Math.abs(norm - 1), `seed ${seed}, row ${r}`).toBeLessThanOrEqual(1e-5);
    }
  });

  it('pools mean bags whose masks are all zero in some rows to zeros', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    for (const spec of [wideDeepSpec(rng), towerSpec(rng)]) {
      const rankers = await open(spec);
      await expectParity(rankers, spec, randomInputs(spec, 500, rng, { emptyRows: 0.3, weightedMeans: spec.output === 'l2' }), seed);
    }
  });

  it('runs specs without layers, without a dense input, or with the dense input alone', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const bagsOnly: NetworkSpec = {
      bags: [randomBag(rng, 'a', 40, 3, 'mean'), randomBag(rng, 'b', 9, 2, 'sum')],
      layers: [],
      wide: randomBag(rng, 'w', 64, 5, 'sum'),
      output: 'l2',
      outputName: 'out',
    };
    const denseOnly: NetworkSpec = { bags: [], dense: { name: 'x', size: 7 }, layers: randomLayers(rng, [7, 5, 1]), output: 'none', outputName: 'y' };
    const noDense: NetworkSpec = { bags: [randomBag(rng, 'a', 100, 6, 'mean')], layers: randomLayers(rng, [6, 70, 4]), output: 'none', outputName: 'y' };
    for (const spec of [bagsOnly, denseOnly, noDense]) {
      const rankers = await open(spec);
      for (const batch of [1, 130]) await expectParity(rankers, spec, randomInputs(spec, batch, rng), seed);
    }
  });

  it('gives concurrent calls the results of sequential ones', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const spec = wideDeepSpec(rng);
    const rankers = await open(spec);
    const batches = [1000, 1, 300, 2000, 57].map((n) => randomInputs(spec, n, rng));
    for (const ranker of [rankers.webgpu, rankers.onnx]) {
      const sequential: Float32Array[] = [];
      for (const inputs of batches) sequential.push(await ranker.score(inputs));
      const concurrent = await Promise.all(batches.map((inputs) => ranker.score(inputs)));
      concurrent.forEach((got, i) => expect(got, `${ranker.kind}, seed ${seed}, batch ${i}`).toEqual(sequential[i]));
    }
  });

  it('rejects an id outside its table, and scores nothing for an empty batch', async () => {
    const rng = mulberry32(1);
    const spec = wideDeepSpec(rng);
    const rankers = await open(spec);
    const inputs = randomInputs(spec, 4, rng);
    const item = inputs.bags[RANKER_INPUTS.item];
    if (item === undefined) throw new Error('no item bag');
    item.ids[2] = 457;
    await expect(rankers.webgpu.score(inputs)).rejects.toThrow(/outside 0\.\.456/);
    expect(() => forwardNetwork(spec, inputs)).toThrow(/outside 0\.\.456/);
    const empty = await rankers.webgpu.score(randomInputs(spec, 0, rng));
    expect(empty.length).toBe(0);
    expect((await rankers.onnx.score(randomInputs(spec, 0, rng))).length).toBe(0);
  });
});
