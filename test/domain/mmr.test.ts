import { describe, expect, it } from 'vitest';
import { mmr } from '../../core/domain/mmr.ts';
import { Xoshiro128, normalVariate } from '../../core/domain/random.ts';
import { l2Normalize } from '../../core/domain/vectors.ts';

function randomUnitRows(n: number, dim: number, rng: Xoshiro128): Float32Array {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * dim, (i + 1) * dim);
    for (let d = 0; d < dim; d++) row[d] = normalVariate(rng);
    l2Normalize(row);
  }
  return out;
}

function dot(e: Float32Array, dim: number, i: number, j: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += (e[i * dim + d] as number) * (e[j * dim + d] as number);
  return s;
}

/** The textbook definition, recomputing max-sim from scratch at every step: O(k²·n·dim). */
function mmrReference(rel: number[], e: Float32Array, lambda: number, k: number, dim: number): number[] {
  const lo = Math.min(...rel);
  const hi = Math.max(...rel);
  const norm = rel.map((r) => (hi > lo ? (r - lo) / (hi - lo) : 0));
  const picks: number[] = [];
  while (picks.length < Math.min(k, rel.length)) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < rel.length; i++) {
      if (picks.includes(i)) continue;
      const red = picks.length === 0 ? 0 : Math.max(...picks.map((j) => dot(e, dim, i, j)));
      const s = picks.length === 0 ? (norm[i] as number) : lambda * (norm[i] as number) - (1 - lambda) * red;
      if (s > bestScore || (s === bestScore && (norm[i] as number) > (norm[best] as number))) {
        best = i;
        bestScore = s;
      }
    }
    picks.push(best);
  }
  return picks;
}

// Four items in 2-d: 1 duplicates the top item 0, 2 is orthogonal to it, 3 sits between.
const REL = [1, 0.9, 0.5, 0];
const EMB = Float32Array.from([1, 0, 1, 0, 0, 1, 0.6, 0.8]);

describe('mmr', () => {
  it('matches a hand-computed 4-item example', () => {
    // λ = 0.5. Pick 0 (most relevant). Then: 1 → 0.45 − 0.5·1 = −0.05; 2 → 0.25 − 0 = 0.25;
    // 3 → 0 − 0.5·0.6 = −0.3: pick 2. Max-sims become 1: 1, 3: 0.8; 1 → −0.05 beats 3 → −0.4.
    expect(mmr(REL, EMB, { lambda: 0.5, k: 4, dim: 2 })).toEqual([0, 2, 1, 3]);
    // λ = 0.9: 1 → 0.81 − 0.1 = 0.71 beats 2 → 0.45; then 2 → 0.45 beats 3 → −0.06.
    expect(mmr(REL, EMB, { lambda: 0.9, k: 4, dim: 2 })).toEqual([0, 1, 2, 3]);
  });

  it('with λ = 0.5 pushes a duplicate of the top item below a dissimilar, less relevant one', () => {
    const picks = mmr(REL, EMB, { lambda: 0.5, k: 2, dim: 2 });
    expect(picks).toEqual([0, 2]);
    expect(picks).not.toContain(1);
  });

  it('with λ = 1 returns the relevance order', () => {
    const rng = new Xoshiro128(7);
    const n = 200;
    const dim = 16;
    const rel = Array.from({ length: n }, () => rng.next() * 10 - 5);
    const picks = mmr(Float32Array.from(rel), randomUnitRows(n, dim, rng), { lambda: 1, k: 50, dim });
    const f32 = Float32Array.from(rel);
    const order = [...f32.keys()].sort((a, b) => (f32[b] as number) - (f32[a] as number)).slice(0, 50);
    expect(picks).toEqual(order);
  });

  it('with λ = 0 picks the most relevant first, then the candidate least similar to it', () => {
    const rng = new Xoshiro128(11);
    const n = 100;
    const dim = 8;
    const rel = Array.from({ length: n }, () => rng.next());
    const e = randomUnitRows(n, dim, rng);
    const picks = mmr(rel, e, { lambda: 0, k: 3, dim });
    const first = rel.indexOf(Math.max(...rel));
    expect(picks[0]).toBe(first);
    let least = -1;
    for (let i = 0; i < n; i++) if (i !== first && (least < 0 || dot(e, dim, i, first) < dot(e, dim, least, first))) least = i;
    expect(picks[1]).toBe(least);
    // The third minimises its max similarity to both earlier picks.
    const third = picks[2] as number;
    const red = (i: number): number => Math.max(dot(e, dim, i, first), dot(e, dim, i, least));
    for (let i = 0; i < n; i++) if (i !== first && i !== least) expect(red(third)).toBeLessThanOrEqual(red(i));
  });

  it('agrees with the from-scratch definition on random inputs for several λ', () => {
    const rng = new Xoshiro128(3);
    for (const lambda of [0, 0.3, 0.5, 0.7, 1]) {
      const n = 60;
      const dim = 12;
      const rel = Array.from({ length: n }, () => rng.next() * 3);
      const e = randomUnitRows(n, dim, rng);
      expect(mmr(rel, e, { lambda, k: 20, dim }), `λ = ${lambda}`).toEqual(mmrReference(rel, e, lambda, 20, dim));
    }
  });

  it('normalises relevance, so scaling and shifting the scores changes nothing', () => {
    const rng = new Xoshiro128(5);
    const n = 40;
    const dim = 6;
    const rel = Array.from({ length: n }, () => rng.next());
    const e = randomUnitRows(n, dim, rng);
    const opts = { lambda: 0.6, k: 15, dim };
    expect(mmr(rel.map((r) => 1000 * r - 77), e, opts)).toEqual(mmr(rel, e, opts));
  });

  it('picks everything when k exceeds n, nothing when k or n is 0', () => {
    expect(mmr(REL, EMB, { lambda: 0.5, k: 10, dim: 2 }).sort()).toEqual([0, 1, 2, 3]);
    expect(mmr(REL, EMB, { lambda: 0.5, k: 0, dim: 2 })).toEqual([]);
    expect(mmr([], new Float32Array(0), { lambda: 0.5, k: 5, dim: 2 })).toEqual([]);
  });

  it('with equal relevance everywhere, λ = 1 keeps index order', () => {
    expect(mmr([2, 2, 2, 2], EMB, { lambda: 1, k: 4, dim: 2 })).toEqual([0, 1, 2, 3]);
  });

  it('rejects bad inputs with messages that say what to fix', () => {
    expect(() => mmr(REL, EMB, { lambda: 1.5, k: 2, dim: 2 })).toThrow(/lambda must be in \[0, 1\]/);
    expect(() => mmr(REL, EMB, { lambda: Number.NaN, k: 2, dim: 2 })).toThrow(RangeError);
    expect(() => mmr(REL, EMB, { lambda: 0.5, k: -1, dim: 2 })).toThrow(/k must be a non-negative integer/);
    expect(() => mmr(REL, EMB, { lambda: 0.5, k: 2, dim: 0 })).toThrow(/dim must be a positive integer/);
    expect(() => mmr(REL, EMB, { lambda: 0.5, k: 2, dim: 3 })).toThrow(/expected 4 candidates × 3 dims = 12/);
    expect(() => mmr([1, Number.NaN, 0, 0], EMB, { lambda: 0.5, k: 2, dim: 2 })).toThrow(/relevance of candidate 1 must be finite/);
  });
});
