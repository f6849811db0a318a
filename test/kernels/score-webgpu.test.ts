import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseDawnDevice, requestDawnDevice } from '../../core/gpu/dawn.ts';
import type { DawnDevice } from '../../core/gpu/dawn.ts';
import { WgslScorer } from '../../core/gpu/score.ts';
import { freshSeed, mulberry32, randomUnitVectors, scoreError } from '../support/random.ts';

/** float32 accumulation (up to 1025 terms per output) against a float64 reference. */
const TOLERANCE = 1e-5;

describe('WGSL score kernel on Dawn', () => {
  let gpu: DawnDevice;
  let scorer: WgslScorer;

  beforeAll(async () => {
    gpu = await requestDawnDevice();
    scorer = await WgslScorer.create(gpu.device);
    console.info(`WebGPU adapter: ${gpu.driver} (${gpu.adapterInfo.description || gpu.adapterInfo.architecture})`);
  });

  afterAll(async () => {
    scorer.destroy();
    await releaseDawnDevice();
  });

  // Sizes straddle the 256-invocation workgroup; dims divisible by 4 take the vec4 entry point,
  // 33, 3 and 1025 the scalar one.
  it.each([
    [1, 64],
    [255, 64],
    [1000, 64],
    [100_003, 64],
    [257, 33],
    [50, 3],
    [300, 1025],
  ])('matches the float64 reference for %i items of dim %i', async (n, dim) => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const items = randomUnitVectors(n, dim, rng);
    const query = randomUnitVectors(1, dim, rng);
    scorer.setItems(items, dim);
    const out = await scorer.score(query);
    expect(out.length).toBe(n);
    expect(scoreError(out, query, items, dim), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
  });

  it('keeps items resident across queries, including concurrent ones', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const items = randomUnitVectors(5000, 64, rng);
    scorer.setItems(items, 64);
    const queries = [0, 1, 2, 3].map(() => randomUnitVectors(1, 64, rng));
    const outs = await Promise.all(queries.map((q) => scorer.score(q)));
    queries.forEach((q, i) => {
      const error = scoreError(outs[i] ?? new Float32Array(), q, items, 64);
      expect(error, `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    });
    // Scores land in the caller's array when given.
    const out = new Float32Array(5000);
    const query = queries[0] ?? new Float32Array(64);
    expect(await scorer.score(query, out)).toBe(out);
    expect(scoreError(out, query, items, 64)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('splits an item matrix over several bindings and dispatches', async () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const chunked = await WgslScorer.create(gpu.device, { chunkRows: 1000 });
    try {
      for (const dim of [64, 33]) {
        const items = randomUnitVectors(3001, dim, rng);
        const query = randomUnitVectors(1, dim, rng);
        chunked.setItems(items, dim);
        const out = await chunked.score(query);
        const error = scoreError(out, query, items, dim);
        expect(error, `seed ${seed}, dim ${dim}`).toBeLessThanOrEqual(TOLERANCE);
      }
    } finally {
      chunked.destroy();
    }
  });

  it('wraps grids past 65535 workgroups into a second dimension', async () => {
    // 65536 * 256 + 3 rows of dim 4 need 65537 workgroups: a 2-D dispatch.
    const n = 65_536 * 256 + 3;
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const items = new Float32Array(n * 4);
    for (let i = 0; i < items.length; i++) items[i] = rng() - 0.5;
    const query = randomUnitVectors(1, 4, rng);
    scorer.setItems(items, 4);
    const out = await scorer.score(query);
    expect(scoreError(out, query, items, 4), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
  });

  it('scores an empty catalog to an empty array', async () => {
    scorer.setItems(new Float32Array(0), 64);
    expect(await scorer.score(new Float32Array(64))).toEqual(new Float32Array(0));
  });

  it('says what is wrong with a bad dimension or query', async () => {
    expect(() => scorer.setItems(new Float32Array(0), 0)).toThrow('dim must be a positive integer, got 0');
    expect(() => scorer.setItems(new Float32Array(10), 4)).toThrow('not a multiple of dim 4');
    scorer.setItems(new Float32Array(64 * 4), 64);
    await expect(scorer.score(new Float32Array(32))).rejects.toThrow('query has 32 dims, the items have 64');
  });
});
