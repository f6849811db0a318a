import { describe, expect, it } from 'vitest';
import { positiveRows } from '../../../training/data/dataset.ts';
import type { Dataset } from '../../../training/data/dataset.ts';
import { randomSplit, temporalSplit } from '../../../training/eval/protocols.ts';
import type { Split } from '../../../training/eval/protocols.ts';
import { randomRatings } from './fixtures.ts';

const dataset = randomRatings(60, 80, 40, 7);

function perUser(d: Dataset, rows: Int32Array): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const r of rows) {
    const u = d.interactions.user[r] ?? -1;
    let list = out.get(u);
    if (!list) out.set(u, (list = []));
    list.push(r);
  }
  return out;
}

function expectPartition(d: Dataset, split: Split): void {
  const train = new Set(split.train);
  for (const r of split.test) expect(train.has(r)).toBe(false);
  const all = [...split.train, ...split.test].sort((a, b) => a - b);
  expect(all).toEqual([...positiveRows(d)]);
  expect([...split.train]).toEqual([...split.train].sort((a, b) => a - b));
  expect([...split.test]).toEqual([...split.test].sort((a, b) => a - b));
}

describe('randomSplit', () => {
  it('partitions the positive rows (negatives in neither), per user at the ratio', () => {
    const split = randomSplit(dataset, { seed: 1, testFraction: 0.25 });
    expectPartition(dataset, split);
    const train = perUser(dataset, split.train);
    const test = perUser(dataset, split.test);
    let singles = 0;
    for (const [u, rows] of perUser(dataset, positiveRows(dataset))) {
      const n = rows.length;
      const nTrain = train.get(u)?.length ?? 0;
      // Recommenders' stratified split: floor(0.75·n) in train; a one-rating user stays in train.
      expect(nTrain).toBe(Math.max(1, Math.floor(0.75 * n)));
      expect(nTrain + (test.get(u)?.length ?? 0)).toBe(n);
      if (n === 1) singles++;
    }
    expect(singles).toBeGreaterThan(0); // the fixture exercises the one-rating rule
  });

  it('is deterministic in its seed, and different seeds differ', () => {
    const a = randomSplit(dataset, { seed: 3 });
    const b = randomSplit(dataset, { seed: 3 });
    const c = randomSplit(dataset, { seed: 4 });
    expect(a.test).toEqual(b.test);
    expect(a.train).toEqual(b.train);
    expect([...a.test]).not.toEqual([...c.test]);
  });

  it('refuses a fraction outside (0, 1)', () => {
    expect(() => randomSplit(dataset, { seed: 1, testFraction: 1 })).toThrow(/strictly between 0 and 1/);
  });
});

describe('temporalSplit', () => {
  it("holds out each user's latest 20%, strictly later than all their train rows", () => {
    const split = temporalSplit(dataset, { testFraction: 0.2 });
    expectPartition(dataset, split);
    const ts = dataset.interactions.timestamp;
    const train = perUser(dataset, split.train);
    for (const [u, rows] of perUser(dataset, split.test)) {
      const trainRows = train.get(u) ?? [];
      expect(trainRows.length).toBeGreaterThan(0);
      const lastTrain = Math.max(...trainRows.map((r) => ts[r] ?? 0));
      const firstTest = Math.min(...rows.map((r) => ts[r] ?? 0));
      expect(firstTest).toBeGreaterThan(lastTrain);
      const n = trainRows.length + rows.length;
      expect(Math.abs(rows.length / n - 0.2)).toBeLessThanOrEqual(1 / n);
    }
  });
});
