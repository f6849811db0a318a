import { describe, expect, it } from 'vitest';
import { betaVariate, expF64, gammaVariate, logF64, sampleBetaInto, Xoshiro128 } from '../../core/domain/random.ts';

const DRAWS = 100_000;
/**
 * Bounds are 5 standard errors: the mean's SE is sd/√N; the variance's is √((m4 − m2²)/N) with m4
 * the sample's fourth central moment. Seeds are fixed, so the suite is deterministic; with fresh
 * seeds a 5-SE bound would fail about once in 1.7 million checks.
 */
const Z = 5;

function moments(draw: () => number): { mean: number; variance: number; seMean: number; seVariance: number } {
  const xs = new Float64Array(DRAWS);
  let sum = 0;
  for (let i = 0; i < DRAWS; i++) sum += xs[i] = draw();
  const mean = sum / DRAWS;
  let m2 = 0;
  let m4 = 0;
  for (const x of xs) {
    const d2 = (x - mean) ** 2;
    m2 += d2;
    m4 += d2 * d2;
  }
  m2 /= DRAWS;
  m4 /= DRAWS;
  return { mean, variance: m2, seMean: Math.sqrt(m2 / DRAWS), seVariance: Math.sqrt((m4 - m2 * m2) / DRAWS) };
}

describe('Xoshiro128 (xoshiro128**)', () => {
  it('is reproducible per seed and differs across seeds', () => {
    const a = new Xoshiro128(123);
    const b = new Xoshiro128(123);
    const c = new Xoshiro128(124);
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(xs);
    expect(xs.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
  });

  it('matches the reference xoshiro128** recurrence from a given state', () => {
    // State (1, 2, 3, 4): the first outputs follow from the published algorithm by hand:
    // result = rotl(s1 * 5, 7) * 9 = rotl(10, 7) * 9 = 1280 * 9 = 11520.
    const rng = new Xoshiro128();
    rng.state.set([1, 2, 3, 4]);
    expect(rng.nextU32()).toBe(11520);
    // Next state: s2 ^= s0 (2), s3 ^= s1 (6), s1 ^= s2 (0), s0 ^= s3 (7), s2 ^= s1 << 9 (1026), s3 = rotl(6, 11).
    expect(Array.from(rng.state)).toEqual([7, 0, 1026, 12288]);
  });

  it('gives uniform floats with the right mean and variance', () => {
    const rng = new Xoshiro128(5);
    const m = moments(() => rng.nextOpen());
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(Z * m.seMean);
    expect(Math.abs(m.variance - 1 / 12)).toBeLessThan(Z * m.seVariance);
  });
});

describe('logF64 / expF64', () => {
  it('agree with Math.log / Math.exp to a few ulps over the whole range', () => {
    const rng = new Xoshiro128(9);
    let worstLog = 0;
    let worstExp = 0;
    for (let i = 0; i < 200_000; i++) {
      const x = Math.exp((rng.next() - 0.5) * 1400);
      const want = Math.log(x);
      if (want !== 0) worstLog = Math.max(worstLog, Math.abs(logF64(x) - want) / Math.abs(want));
      const y = (rng.next() - 0.5) * 1400;
      worstExp = Math.max(worstExp, Math.abs(expF64(y) - Math.exp(y)) / Math.exp(y));
    }
    expect(worstLog).toBeLessThan(1e-15);
    expect(worstExp).toBeLessThan(1e-15);
  });

  it('handles the edges', () => {
    expect(logF64(0)).toBe(-Infinity);
    expect(logF64(-1)).toBeNaN();
    expect(logF64(Infinity)).toBe(Infinity);
    expect(logF64(1)).toBe(0);
    expect(logF64(5e-324)).toBeCloseTo(Math.log(5e-324), 12);
    expect(expF64(0)).toBe(1);
    expect(expF64(800)).toBe(Infinity);
    expect(expF64(-800)).toBe(0);
    expect(expF64(-745)).toBe(Math.exp(-745));
    expect(expF64(709.7) / 1e308).toBeCloseTo(Math.exp(709.7) / 1e308, 12);
  });
});

describe('Gamma variates (Marsaglia & Tsang 2000)', () => {
  it.each([0.1, 0.5, 1, 2.5, 30])('Gamma(%d) has mean α and variance α over 100k draws', (shape) => {
    const rng = new Xoshiro128(1000 + shape * 10);
    const m = moments(() => gammaVariate(shape, rng));
    expect(Math.abs(m.mean - shape), `mean ${m.mean}`).toBeLessThan(Z * m.seMean);
    expect(Math.abs(m.variance - shape), `variance ${m.variance}`).toBeLessThan(Z * m.seVariance);
  });
});

describe('Beta variates', () => {
  it.each([
    [0.3, 0.7],
    [1, 1],
    [2, 5],
    [1, 30],
    [1, 0.4],
    [3, 1],
    [0.2, 1],
    [50, 500],
  ])('Beta(%d, %d) matches the theoretical mean and variance over 100k draws', (a, b) => {
    const rng = new Xoshiro128(7 + a * 100 + b);
    const m = moments(() => betaVariate(a, b, rng));
    const mean = a / (a + b);
    const variance = (a * b) / ((a + b) ** 2 * (a + b + 1));
    expect(Math.abs(m.mean - mean), `mean ${m.mean}`).toBeLessThan(Z * m.seMean);
    expect(Math.abs(m.variance - variance), `variance ${m.variance}`).toBeLessThan(Z * m.seVariance);
  });

  it('stays inside [0, 1] for tiny and huge shapes', () => {
    const rng = new Xoshiro128(3);
    for (const [a, b] of [[1e-3, 1e-3], [1e-30, 1], [1, 1e-30], [1, 1e6], [1e6, 1e-6], [1e-40, 1e-40]] as const) {
      for (let i = 0; i < 1000; i++) {
        const x = betaVariate(a, b, rng);
        expect(x >= 0 && x <= 1, `Beta(${a}, ${b}) gave ${x}`).toBe(true);
      }
    }
  });

  it('sampleBetaInto is reproducible per seed and checks lengths', () => {
    const alpha = Float32Array.from([1, 2, 3, 0.5]);
    const beta = Float32Array.from([9, 8, 7, 0.5]);
    const one = sampleBetaInto(alpha, beta, new Xoshiro128(11), new Float32Array(4));
    const two = sampleBetaInto(alpha, beta, new Xoshiro128(11), new Float32Array(4));
    expect(Array.from(two)).toEqual(Array.from(one));
    expect(() => sampleBetaInto(alpha, beta.subarray(0, 3), new Xoshiro128(), new Float32Array(4))).toThrow('one entry per arm: got 4, 3, 4');
  });
});
