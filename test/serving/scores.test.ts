// The two-tower score statistics from the embeddings' moments equal a scan of every item.
import { describe, expect, it } from 'vitest';
import { dot, embeddingMoments, scoreStats } from '../../core/serving/scores.ts';
import { freshSeed, mulberry32, randomUnitVectors } from '../support/random.ts';

describe('score statistics from embedding moments', () => {
  it('match the mean and population std of u·v over every item outside the history', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const dim = 32;
    const n = 3000;
    const items = randomUnitVectors(n, dim, rng);
    const u = randomUnitVectors(1, dim, rng);
    const history = [5, 17, 2999, 0, 1234];
    const moments = embeddingMoments(items, dim);
    const got = scoreStats(moments, u, items, history);
    const skip = new Set(history);
    let sum = 0;
    let sq = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (skip.has(i)) continue;
      const s = dot(u, items, i, dim);
      sum += s;
      sq += s * s;
      count++;
    }
    const mean = sum / count;
    const std = Math.sqrt(sq / count - mean * mean);
    expect(got.mean, `seed ${seed}`).toBeCloseTo(mean, 10);
    expect(got.std, `seed ${seed}`).toBeCloseTo(std, 10);
    expect(moments.count).toBe(n);
  });
});
