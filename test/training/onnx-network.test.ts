import { afterAll, describe, expect, it } from 'vitest';
import { createNodeSession, createWebSession } from '../../core/ranking/onnx-session.ts';
import type { Feeds, OnnxSession } from '../../core/ranking/onnx-session.ts';
import { checkNetworkSpec, forwardNetwork, networkOutputWidth } from '../../training/models/forward.ts';
import type { BagSpec, DenseLayerSpec, NetworkInputs, NetworkSpec } from '../../training/models/spec.ts';
import { exportNetwork, int64Ids, readNetwork } from '../../training/onnx/network.ts';
import { freshSeed, gaussian, mulberry32, relativeError } from '../support/random.ts';
import type { Rng } from '../support/random.ts';

/** The bound: onnxruntime output equals the training-time forward pass within 1e-5 relative (L2). */
const TOLERANCE = 1e-5;
const BATCH = 37;

interface BagShape { name: string; rows: number; dim: number; mode: 'mean' | 'sum'; length: number; weighted?: boolean }
interface Shape {
  label: string;
  bags: BagShape[];
  dense?: number;
  layers: { outputs: number; activation: 'relu' | 'none' }[];
  wide?: { name: string; rows: number; length: number };
  output: 'l2' | 'none';
}

const shapes: Shape[] = [
  {
    label: 'user tower: 3 mean bags, 2 layers, l2',
    bags: [
      { name: 'history', rows: 500, dim: 16, mode: 'mean', length: 20 },
      { name: 'categories', rows: 40, dim: 8, mode: 'mean', length: 5 },
      { name: 'country', rows: 12, dim: 4, mode: 'mean', length: 1 },
    ],
    layers: [{ outputs: 32, activation: 'relu' }, { outputs: 16, activation: 'none' }],
    output: 'l2',
  },
  {
    label: 'ranker: 2 bags + dense + wide bag, 2 outputs, no output transform',
    bags: [
      { name: 'item', rows: 300, dim: 12, mode: 'mean', length: 3, weighted: true },
      { name: 'crosses', rows: 200, dim: 6, mode: 'sum', length: 6, weighted: true },
    ],
    dense: 7,
    layers: [{ outputs: 24, activation: 'relu' }, { outputs: 12, activation: 'relu' }, { outputs: 2, activation: 'none' }],
    wide: { name: 'wide', rows: 1000, length: 9 },
    output: 'none',
  },
  {
    label: 'single layer over one sum bag',
    bags: [{ name: 'tokens', rows: 64, dim: 10, mode: 'sum', length: 4 }],
    layers: [{ outputs: 5, activation: 'none' }],
    output: 'none',
  },
  {
    label: 'bags of length 1, relu then l2',
    bags: [
      { name: 'a', rows: 30, dim: 8, mode: 'mean', length: 1 },
      { name: 'b', rows: 30, dim: 8, mode: 'sum', length: 1 },
    ],
    layers: [{ outputs: 8, activation: 'relu' }],
    output: 'l2',
  },
  {
    label: 'no layers: a mean bag normalised (an item tower that is just its embedding)',
    bags: [{ name: 'item_id', rows: 100, dim: 16, mode: 'mean', length: 2 }],
    layers: [],
    output: 'l2',
  },
];

function randomArray(n: number, scale: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => gaussian(rng) * scale);
}

function randomSpec(shape: Shape, rng: Rng): NetworkSpec {
  const bag = (b: { name: string; rows: number; dim: number; mode: 'mean' | 'sum' }): BagSpec => ({
    name: b.name, rows: b.rows, dim: b.dim, mode: b.mode, table: randomArray(b.rows * b.dim, 0.5, rng),
  });
  let inputs = shape.bags.reduce((w, b) => w + b.dim, 0) + (shape.dense ?? 0);
  const layers: DenseLayerSpec[] = shape.layers.map(({ outputs, activation }) => {
    const layer = {
      inputs, outputs, activation,
      weight: randomArray(inputs * outputs, 1 / Math.sqrt(inputs), rng),
      bias: randomArray(outputs, 0.1, rng),
    };
    inputs = outputs;
    return layer;
  });
  const spec: NetworkSpec = { bags: shape.bags.map(bag), layers, output: shape.output, outputName: 'out' };
  if (shape.dense !== undefined) spec.dense = { name: 'dense', size: shape.dense };
  if (shape.wide !== undefined) spec.wide = bag({ name: shape.wide.name, rows: shape.wide.rows, dim: inputs, mode: 'sum' });
  return spec;
}

/**
 * Ids and masks: each row fills a random prefix (rows 0 and 1 fill nothing: an all-zero mask);
 * padding positions hold random in-range ids, which the mask must cancel. Weighted masks hold
 * per-id weights in [0.05, 1.55), so a mean bag's Σ mask falls below 1 in some rows (max(Σ, 1) matters).
 */
function randomBagInput(rows: number, length: number, weighted: boolean, rng: Rng): NetworkInputs['bags'][string] {
  const ids = new Int32Array(BATCH * length);
  const mask = new Float32Array(BATCH * length);
  for (let r = 0; r < BATCH; r++) {
    const filled = r < 2 ? 0 : 1 + Math.floor(rng() * length);
    for (let j = 0; j < length; j++) {
      ids[r * length + j] = Math.floor(rng() * rows);
      if (j < filled) mask[r * length + j] = weighted ? 0.05 + rng() * 1.5 : 1;
    }
  }
  return { ids, mask, length };
}

function randomInputs(shape: Shape, rng: Rng): NetworkInputs {
  const inputs: NetworkInputs = { batch: BATCH, bags: {} };
  for (const b of shape.bags) inputs.bags[b.name] = randomBagInput(b.rows, b.length, b.weighted ?? false, rng);
  if (shape.wide !== undefined) inputs.bags[shape.wide.name] = randomBagInput(shape.wide.rows, shape.wide.length, false, rng);
  if (shape.dense !== undefined) inputs.dense = randomArray(BATCH * shape.dense, 1, rng);
  return inputs;
}

function feedsOf(spec: NetworkSpec, inputs: NetworkInputs): Feeds {
  const feeds: Record<string, Feeds[string]> = {};
  for (const [name, bag] of Object.entries(inputs.bags)) {
    const dims = [inputs.batch, bag.length];
    feeds[name] = { data: BigInt64Array.from(bag.ids, (id) => BigInt(id)), dims };
    feeds[`${name}_mask`] = { data: bag.mask, dims };
  }
  if (spec.dense !== undefined && inputs.dense !== undefined) {
    feeds[spec.dense.name] = { data: inputs.dense, dims: [inputs.batch, spec.dense.size] };
  }
  return feeds;
}

const runtimes = [
  { name: 'onnxruntime-node', open: (m: Uint8Array) => createNodeSession(m, { intraOpThreads: 1 }) },
  { name: 'onnxruntime-web', open: (m: Uint8Array) => createWebSession(m, { numThreads: 1 }) },
];

describe.each(runtimes)('exportNetwork on $name', ({ open }) => {
  const sessions: OnnxSession[] = [];
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.release()));
  });

  const run = async (spec: NetworkSpec, inputs: NetworkInputs, opset?: number): Promise<Float32Array> => {
    const session = await open(exportNetwork(spec, opset === undefined ? {} : { opset }));
    sessions.push(session);
    const out = (await session.run(feedsOf(spec, inputs)))[spec.outputName];
    if (out === undefined) throw new Error(`no output '${spec.outputName}'`);
    return out;
  };

  it.each(shapes)('$label: equals forwardNetwork within 1e-5', async (shape) => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const spec = randomSpec(shape, rng);
    const inputs = randomInputs(shape, rng);
    const want = forwardNetwork(spec, inputs);
    const got = await run(spec, inputs);
    expect(got.length, `seed ${seed}`).toBe(BATCH * networkOutputWidth(spec));
    expect(relativeError(got, want), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    if (spec.output === 'l2') {
      // Unit rows, except where relu zeroed the whole row: those stay zero rather than NaN.
      const width = networkOutputWidth(spec);
      for (let r = 0; r < BATCH; r++) {
        const norm = Math.hypot(...got.subarray(r * width, (r + 1) * width));
        expect(norm, `seed ${seed}, row ${r}`).toBeCloseTo(Math.hypot(...want.subarray(r * width, (r + 1) * width)) > 0 ? 1 : 0, 5);
      }
    }
  });

  it.each([13, 18, 21])('the ranker shape at opset %i', async (opset) => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const shape = shapes[1];
    if (shape === undefined) throw new Error('no ranker shape');
    const spec = randomSpec(shape, rng);
    const inputs = randomInputs(shape, rng);
    expect(relativeError(await run(spec, inputs, opset), forwardNetwork(spec, inputs)), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
  });

  it('declares symbolic batch and length dims: one model serves other batch sizes and lengths', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const spec = randomSpec(shapes[0] ?? { label: '', bags: [], layers: [], output: 'none' }, rng);
    const session = await open(exportNetwork(spec));
    sessions.push(session);
    expect(session.inputNames).toEqual(['history', 'history_mask', 'categories', 'categories_mask', 'country', 'country_mask']);
    expect(session.outputNames).toEqual(['out']);
    for (const [batch, length] of [[1, 3], [5, 40]] as const) {
      const bag = (rows: number, l: number): NetworkInputs['bags'][string] => ({
        ids: Int32Array.from({ length: batch * l }, () => Math.floor(rng() * rows)),
        mask: Float32Array.from({ length: batch * l }, () => (rng() < 0.7 ? 1 : 0)),
        length: l,
      });
      const inputs: NetworkInputs = { batch, bags: { history: bag(500, length), categories: bag(40, 2), country: bag(12, 1) } };
      const out = (await session.run(feedsOf(spec, inputs))).out ?? new Float32Array();
      expect(relativeError(out, forwardNetwork(spec, inputs)), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    }
  });
});

describe('forwardNetwork', () => {
  const table = Float32Array.of(1, 2, 10, 20, 100, 200); // 3 rows × dim 2
  const identity: DenseLayerSpec = { inputs: 2, outputs: 2, weight: Float32Array.of(1, 0, 0, 1), bias: Float32Array.of(0, 0), activation: 'none' };

  it('pools mean as Σ mask·E[id] / max(Σ mask, 1), and sum as Σ mask·E[id]', () => {
    const ids = Int32Array.of(0, 1, 2, 2, 1, 0, 0, 0, 0);
    const mask = Float32Array.of(1, 1, 0, 0.5, 0, 0, 0, 0, 0);
    const inputs: NetworkInputs = { batch: 3, bags: { b: { ids, mask, length: 3 } } };
    const mean: NetworkSpec = { bags: [{ name: 'b', rows: 3, dim: 2, mode: 'mean', table }], layers: [identity], output: 'none', outputName: 'y' };
    // Row 1 has weight 0.5 < 1, so it is divided by 1; row 2 is all padding and pools to zero.
    expect(Array.from(forwardNetwork(mean, inputs))).toEqual([5.5, 11, 50, 100, 0, 0]);
    const sum: NetworkSpec = { ...mean, bags: [{ name: 'b', rows: 3, dim: 2, mode: 'sum', table }] };
    expect(Array.from(forwardNetwork(sum, inputs))).toEqual([11, 22, 50, 100, 0, 0]);
  });

  it('adds the wide bag before the l2 output, and keeps an all-zero output zero', () => {
    const spec: NetworkSpec = {
      bags: [{ name: 'b', rows: 3, dim: 2, mode: 'sum', table }],
      layers: [{ ...identity, activation: 'relu' }],
      wide: { name: 'w', rows: 3, dim: 2, mode: 'sum', table: Float32Array.of(3, 0, 0, 4, -1, -2) },
      output: 'l2',
      outputName: 'y',
    };
    const inputs: NetworkInputs = {
      batch: 2,
      bags: {
        b: { ids: Int32Array.of(0, 0), mask: Float32Array.of(0, 0), length: 1 },
        w: { ids: Int32Array.of(0, 1, 0, 0), mask: Float32Array.of(1, 1, 0, 0), length: 2 },
      },
    };
    expect(Array.from(forwardNetwork(spec, inputs))).toEqual([0.6, 0.8, 0, 0].map(Math.fround));
  });

  it('says which shape, id or input is wrong', () => {
    const spec: NetworkSpec = { bags: [{ name: 'b', rows: 3, dim: 2, mode: 'mean', table }], layers: [identity], output: 'none', outputName: 'y' };
    const one = (ids: Int32Array): NetworkInputs => ({ batch: 1, bags: { b: { ids, mask: Float32Array.of(1), length: 1 } } });
    expect(() => forwardNetwork(spec, one(Int32Array.of(3)))).toThrow("bag 'b': id 3 at row 0, position 0 is outside 0..2");
    expect(() => forwardNetwork(spec, { batch: 1, bags: {} })).toThrow("no input for bag 'b'");
    expect(() => checkNetworkSpec({ ...spec, layers: [{ ...identity, inputs: 3, weight: new Float32Array(6) }] })).toThrow(
      'layer 0 takes 3 inputs but receives 2',
    );
    expect(() => checkNetworkSpec({ ...spec, bags: [{ name: 'b', rows: 4, dim: 2, mode: 'mean', table }] })).toThrow(
      "bag 'b': table has 6 values, rows × dim = 4 × 2 needs 8",
    );
    expect(() => checkNetworkSpec({ ...spec, outputName: 'b_mask' })).toThrow("the name 'b_mask' is used twice");
    expect(() => checkNetworkSpec({ ...spec, wide: { name: 'w', rows: 1, dim: 3, mode: 'sum', table: new Float32Array(3) } })).toThrow(
      "wide bag 'w' has dim 3 but the network outputs 2",
    );
    expect(() => exportNetwork({ ...spec, dense: { name: 'layer0.weight', size: 1 }, layers: [{ ...identity, inputs: 3, weight: new Float32Array(6) }] })).toThrow(
      "the name 'layer0.weight' is reserved",
    );
  });
});

describe('readNetwork', () => {
  it('rebuilds the exported spec, weights included', () => {
    const seed = freshSeed();
    for (const shape of shapes) {
      const spec = randomSpec(shape, mulberry32(seed));
      expect(readNetwork(exportNetwork(spec, { metadata: { version: 'v1' } })), `${shape.label}, seed ${seed}`).toEqual(spec);
    }
  });
});

describe('int64Ids', () => {
  it('widens int32 ids to the same int64 values, negatives and extremes included', () => {
    const ids = Int32Array.of(0, 1, 7, 1_000_000, 2_147_483_647, -1, -2_147_483_648, 262_143);
    expect(Array.from(int64Ids(ids))).toEqual(Array.from(ids, (id) => BigInt(id)));
    expect(int64Ids(new Int32Array(0))).toHaveLength(0);
  });
});
