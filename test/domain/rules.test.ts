import { describe, expect, it } from 'vitest';
import { applyRules, parseBusinessRules } from '../../core/domain/rules.ts';
import type { RuleCandidate } from '../../core/domain/rules.ts';

interface Cand extends RuleCandidate {
  extra: number;
}

/** Candidates best first: item `${cat}${i}`, score decreasing by 1, one category each. */
function cands(spec: string): Cand[] {
  return spec.split(' ').map((item, i) => ({ item, score: -i, categories: [item.replace(/[0-9]+$/, '')], extra: i }));
}

const items = (cs: readonly RuleCandidate[]): string[] => cs.map((c) => c.item);

describe('applyRules', () => {
  it('with no rules returns the top n, as the same objects', () => {
    const ranked = cands('a1 a2 b1 b2');
    const out = applyRules(ranked, {}, 3);
    expect(items(out)).toEqual(['a1', 'a2', 'b1']);
    expect(out[0]).toBe(ranked[0]);
    expect(applyRules(ranked, {}, 10)).toHaveLength(4);
    expect(applyRules(ranked, {}, 0)).toEqual([]);
  });

  it('boost adds ln(factor) to the score (log domain, works for negative scores) and re-sorts', () => {
    const ranked = cands('a1 a2 b1 b2'); // scores 0, -1, -2, -3
    const out = applyRules(ranked, { boost: [{ category: 'b', factor: Math.E ** 1.5 }] }, 4);
    // b1: -2 + 1.5 = -0.5, b2: -1.5; a1 0, a2 -1.
    expect(items(out)).toEqual(['a1', 'b1', 'a2', 'b2']);
    expect(out[1]?.score).toBeCloseTo(-0.5, 12);
    expect(out[3]?.score).toBeCloseTo(-1.5, 12);
    // Boosted candidates are copies that keep the caller's other fields; others are untouched.
    expect(out[1]).not.toBe(ranked[2]);
    expect(out[1]?.extra).toBe(2);
    expect(ranked[2]?.score).toBe(-2);
    expect(out[0]).toBe(ranked[0]);
  });

  it('compounds several boosts, demotes with factor < 1, and needs item and category to match when both are given', () => {
    const ranked = cands('a1 a2 b1');
    const out = applyRules(ranked, {
      boost: [
        { item: 'b1', factor: Math.E },
        { category: 'b', factor: Math.E },
        { item: 'a1', factor: Math.exp(-1.5) },
        { item: 'a2', category: 'b', factor: 100 }, // a2 is not in category b: no effect
      ],
    }, 3);
    expect(out.map((c) => [c.item, Number(c.score.toFixed(9))])).toEqual([['b1', 0], ['a2', -1], ['a1', -1.5]]);
  });

  it('keeps the input order among equal boosted scores (stable sort)', () => {
    const ranked: RuleCandidate[] = [
      { item: 'x', score: 1, categories: [] },
      { item: 'y', score: 0, categories: ['c'] },
      { item: 'z', score: 1, categories: [] },
    ];
    expect(items(applyRules(ranked, { boost: [{ item: 'y', factor: Math.E }] }, 3))).toEqual(['x', 'y', 'z']);
  });

  it('bury moves matches to the end keeping their relative order', () => {
    const out = applyRules(cands('a1 b1 a2 c1 b2'), { bury: [{ category: 'b' }, { item: 'a1' }] }, 5);
    expect(items(out)).toEqual(['a2', 'c1', 'a1', 'b1', 'b2']);
  });

  it('maxPerCategory drops items over the cap and lets the next best fill in', () => {
    const out = applyRules(cands('a1 a2 a3 b1 a4 b2 b3 c1'), { maxPerCategory: 2 }, 5);
    expect(items(out)).toEqual(['a1', 'a2', 'b1', 'b2', 'c1']);
  });

  it('maxPerCategory counts every category of a multi-category item; uncategorised items are never capped', () => {
    const ranked: RuleCandidate[] = [
      { item: 'x', score: 5, categories: ['drama', 'comedy'] },
      { item: 'y', score: 4, categories: ['comedy'] },
      { item: 'z', score: 3, categories: ['drama'] },
      { item: 'u', score: 2, categories: [] },
      { item: 'v', score: 1, categories: [] },
    ];
    expect(items(applyRules(ranked, { maxPerCategory: 1 }, 5))).toEqual(['x', 'u', 'v']);
  });

  it('pins a known item at its position, whatever its rank; unknown items are not invented', () => {
    const out = applyRules(cands('a1 a2 a3 a4 a5 a6'), { pin: [{ item: 'a6', position: 1 }, { item: 'nope', position: 0 }] }, 4);
    expect(items(out)).toEqual(['a1', 'a6', 'a2', 'a3']);
  });

  it('pins apply after boosts, buries and caps; a pinned item ignores them and counts towards the cap', () => {
    const out = applyRules(cands('a1 a2 b1 b2 c1'), {
      bury: [{ item: 'a1' }],
      maxPerCategory: 1,
      boost: [{ item: 'c1', factor: 1000 }],
      pin: [{ item: 'a1', position: 0 }, { item: 'b2', position: 2 }],
    }, 4);
    // After boost: c1 a1 a2 b1 b2; bury a1 → c1 a2 b1 b2 a1. Pins a1 (cat a) and b2 (cat b)
    // use up a and b, so the rest is c1 only: a1 c1 b2.
    expect(items(out)).toEqual(['a1', 'c1', 'b2']);
  });

  it('resolves pins on one position in rule order and drops pins beyond n', () => {
    const ranked = cands('a1 a2 a3 a4 a5');
    expect(items(applyRules(ranked, { pin: [{ item: 'a5', position: 0 }, { item: 'a4', position: 0 }] }, 3))).toEqual(['a5', 'a4', 'a1']);
    expect(items(applyRules(ranked, { pin: [{ item: 'a1', position: 3 }] }, 3))).toEqual(['a2', 'a3', 'a4']);
    // A pin past the end of a short result lands at the end.
    expect(items(applyRules(cands('a1 a2'), { pin: [{ item: 'a1', position: 7 }] }, 10))).toEqual(['a2', 'a1']);
    // The first pin rule for an item wins.
    expect(items(applyRules(ranked, { pin: [{ item: 'a3', position: 0 }, { item: 'a3', position: 2 }] }, 3))).toEqual(['a3', 'a1', 'a2']);
  });

  it('counts a duplicated item once, at its first entry', () => {
    expect(items(applyRules(cands('a1 b1 a1 c1'), {}, 4))).toEqual(['a1', 'b1', 'c1']);
  });

  it('rejects a bad n or factor', () => {
    expect(() => applyRules([], {}, -1)).toThrow(/non-negative integer n/);
    expect(() => applyRules(cands('a1'), { boost: [{ item: 'a1', factor: 0 }] }, 1)).toThrow(/factor must be a positive/);
  });
});

describe('parseBusinessRules', () => {
  it('accepts a full config and returns a copy', () => {
    const json = {
      pin: [{ item: 'x', position: 0 }],
      boost: [{ category: 'new', factor: 2 }, { item: 'y', category: 'sale', factor: 0.5 }],
      bury: [{ item: 'z' }],
      maxPerCategory: 3,
    };
    const rules = parseBusinessRules(json);
    expect(rules).toEqual(json);
    expect(rules.pin).not.toBe(json.pin);
    expect(parseBusinessRules({})).toEqual({});
  });

  it.each([
    [null, 'rules must be an object'],
    [[], 'rules must be an object'],
    [{ pinned: [] }, 'rules.pinned is not a known field; known fields: pin, boost, bury, maxPerCategory'],
    [{ pin: {} }, 'rules.pin must be an array'],
    [{ pin: [{ item: 'x', position: -1 }] }, 'rules.pin[0].position must be a non-negative integer'],
    [{ pin: [{ item: 'x', position: 0 }, { position: 1 }] }, 'rules.pin[1].item must be a non-empty string'],
    [{ boost: [{ item: 'a', factor: 2 }, { item: 'b', factor: 1 }, { item: 'c', factor: -1 }] }, 'rules.boost[2].factor must be a positive number'],
    [{ boost: [{ item: 'a', factor: '2' }] }, 'rules.boost[0].factor must be a positive number'],
    [{ boost: [{ factor: 2 }] }, 'rules.boost[0] must name an item, a category or both'],
    [{ boost: [{ item: 'a', factor: 2, weight: 1 }] }, 'rules.boost[0].weight is not a known field'],
    [{ bury: ['a'] }, 'rules.bury[0] must be an object'],
    [{ bury: [{ category: 7 }] }, 'rules.bury[0].category must be a non-empty string'],
    [{ maxPerCategory: 0 }, 'rules.maxPerCategory must be a positive integer'],
    [{ maxPerCategory: 2.5 }, 'rules.maxPerCategory must be a positive integer'],
  ])('rejects %j naming the path', (json, message) => {
    expect(() => parseBusinessRules(json)).toThrow(message);
  });
});
