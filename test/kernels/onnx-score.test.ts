import { afterAll, describe, expect, it } from 'vitest';
import { createNodeSession, createWebSession } from '../../core/ranking/onnx-session.ts';
import type { OnnxSession } from '../../core/ranking/onnx-session.ts';
import { OnnxGraph } from '../../training/onnx/graph.ts';
import { buildScoreModel } from '../../training/onnx/score-model.ts';
import { freshSeed, gaussian, mulberry32, randomUnitVectors, relativeError, scoreError } from '../support/random.ts';

/** float32 accumulation over at most 64 terms per output against a float64 reference. */
const TOLERANCE = 1e-5;
const DIM = 64;

interface Runtime {
  readonly name: string;
  readonly open: (model: Uint8Array) => Promise<OnnxSession>;
}

const runtimes: Runtime[] = [
  { name: 'onnxruntime-node', open: (m) => createNodeSession(m, { intraOpThreads: 1 }) },
  { name: 'onnxruntime-web', open: (m) => createWebSession(m, { numThreads: 1 }) },
];

function randomGaussian(n: number, scale: number, rng: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => gaussian(rng) * scale);
}

function output(outputs: Record<string, Float32Array>, name: string): Float32Array {
  const out = outputs[name];
  if (out === undefined) throw new Error(`model has no output '${name}'`);
  return out;
}

/** Float64 forward pass of sigmoid(relu(x·W1 + b1)·W2ᵀ + b2); W1 is [in, hidden], W2 is [out, hidden]. */
function mlpReference(
  x: Float32Array, batch: number, inDim: number, hidden: number, outDim: number,
  w1: Float32Array, b1: Float32Array, w2: Float32Array, b2: Float32Array,
): Float64Array {
  const y = new Float64Array(batch * outDim);
  const h = new Float64Array(hidden);
  for (let r = 0; r < batch; r++) {
    for (let j = 0; j < hidden; j++) {
      let acc = b1[j] ?? 0;
      for (let i = 0; i < inDim; i++) acc += (x[r * inDim + i] ?? 0) * (w1[i * hidden + j] ?? 0);
      h[j] = Math.max(0, acc);
    }
    for (let o = 0; o < outDim; o++) {
      let acc = b2[o] ?? 0;
      for (let j = 0; j < hidden; j++) acc += (h[j] ?? 0) * (w2[o * hidden + j] ?? 0);
      y[r * outDim + o] = 1 / (1 + Math.exp(-acc));
    }
  }
  return y;
}

describe.each(runtimes)('ONNX on $name', ({ open }) => {
  const sessions: OnnxSession[] = [];
  const track = async (model: Uint8Array): Promise<OnnxSession> => {
    const s = await open(model);
    sessions.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.release()));
  });

  it.each([1, 1000, 100_000])('score model: %i items of dim 64 match the float64 reference', async (n) => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const items = randomUnitVectors(n, DIM, rng);
    const query = randomUnitVectors(1, DIM, rng);
    const session = await track(buildScoreModel(DIM));
    const out = output(
      await session.run({ items: { data: items, dims: [n, DIM] }, query: { data: query, dims: [DIM, 1] } }),
      'scores',
    );
    expect(out.length, `seed ${seed}`).toBe(n);
    expect(scoreError(out, query, items, DIM), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
  });

  it('graph writer: a 2-layer MLP (Gemm, Relu, Gemm with transB, Sigmoid) matches a TypeScript forward pass', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const [inDim, hidden, outDim, batch] = [12, 32, 3, 257];
    const w1 = randomGaussian(inDim * hidden, 1 / Math.sqrt(inDim), rng);
    const b1 = randomGaussian(hidden, 0.1, rng);
    const w2 = randomGaussian(outDim * hidden, 1 / Math.sqrt(hidden), rng);
    const b2 = randomGaussian(outDim, 0.1, rng);
    const x = randomGaussian(batch * inDim, 1, rng);

    const g = new OnnxGraph({ name: 'mlp' });
    const input = g.input('x', 'float32', ['batch', inDim]);
    const h = g.relu(g.gemm(input, g.initializer('w1', w1, [inDim, hidden]), g.initializer('b1', b1, [hidden])));
    const logits = g.gemm(h, g.initializer('w2', w2, [outDim, hidden]), g.initializer('b2', b2, [outDim]), { transB: true });
    g.output(g.sigmoid(logits, 'y'), 'float32', ['batch', outDim]);
    const session = await track(g.toModelBytes({ producer: 'kestrel-test' }));

    expect(session.inputNames).toEqual(['x']);
    expect(session.outputNames).toEqual(['y']);
    const y = output(await session.run({ x: { data: x, dims: [batch, inDim] } }), 'y');
    const ref = mlpReference(x, batch, inDim, hidden, outDim, w1, b1, w2, b2);
    expect(y.length).toBe(batch * outDim);
    expect(relativeError(y, ref), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
  });

  // Opset 17 writes ReduceMean's axes as an attribute, 18 and later as an input.
  it.each([13, 17, 18, 21])(
    'graph writer: gather with int64 ids, then mean-pool and l2Normalize (opset %i)',
    async (opset) => {
      const seed = freshSeed();
      const rng = mulberry32(seed);
      const [vocab, dim, batch, bag] = [50, 8, 6, 3];
      const table = randomGaussian(vocab * dim, 1, rng);
      table.fill(0, 0, dim); // row 0 is the padding id: all zeros, and stays zero after normalising
      const ids = BigInt64Array.from({ length: batch * bag }, (_, i) =>
        i < bag ? 0n : BigInt(Math.floor(rng() * vocab)),
      );

      const g = new OnnxGraph({ name: 'embedding', opset });
      const idsIn = g.input('ids', 'int64', ['batch', bag]);
      const rows = g.gather(g.initializer('table', table, [vocab, dim]), idsIn, 'rows');
      g.output(rows, 'float32', ['batch', bag, dim]);
      g.output(g.l2Normalize(g.reduceMean(rows, [1], false), -1, 'pooled'), 'float32', ['batch', dim]);
      const session = await track(g.toModelBytes({ producer: 'kestrel-test' }));
      const out = await session.run({ ids: { data: ids, dims: [batch, bag] } });

      const expectedRows = new Float32Array(batch * bag * dim);
      ids.forEach((id, i) => expectedRows.set(table.subarray(Number(id) * dim, (Number(id) + 1) * dim), i * dim));
      expect(Array.from(output(out, 'rows')), `seed ${seed}`).toEqual(Array.from(expectedRows));

      const pooled = new Float64Array(batch * dim);
      for (let b = 0; b < batch; b++) {
        let norm = 0;
        for (let k = 0; k < dim; k++) {
          let mean = 0;
          for (let j = 0; j < bag; j++) mean += (expectedRows[(b * bag + j) * dim + k] ?? 0) / bag;
          pooled[b * dim + k] = mean;
          norm += mean * mean;
        }
        for (let k = 0; k < dim; k++) pooled[b * dim + k] = norm > 0 ? (pooled[b * dim + k] ?? 0) / Math.sqrt(norm) : 0;
      }
      const got = output(out, 'pooled');
      expect(Array.from(got.subarray(0, dim))).toEqual(new Array<number>(dim).fill(0));
      expect(relativeError(got, pooled), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    },
  );
});

describe('OnnxGraph', () => {
  it('says which value is missing, duplicated or mis-shaped', () => {
    const g = new OnnxGraph();
    g.input('x', 'float32', ['batch', 4]);
    expect(() => g.relu('h')).toThrow("Relu reads 'h', which is not defined yet");
    expect(() => g.input('x', 'float32', [1])).toThrow("value 'x' is already defined");
    expect(() => g.initializer('w', new Float32Array(6), [4, 2])).toThrow(
      "initializer 'w' has 6 values but shape [4, 2] needs 8",
    );
    expect(() => g.output('y', 'float32', [1])).toThrow("output 'y' is not produced");
    expect(() => g.toModelBytes({ producer: 'kestrel-test' })).toThrow('has no outputs');
    expect(() => new OnnxGraph({ opset: 9 })).toThrow('opset 9 is outside the supported range');
  });
});
