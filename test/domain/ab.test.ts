import { describe, expect, it } from 'vitest';
import { assignArm, assignCompiled, compileExperiment, HOLDOUT_ARM } from '../../core/domain/ab.ts';
import type { Experiment } from '../../core/domain/ab.ts';
import { hashString, murmur3x86_32, utf8Encode } from '../../core/domain/hash.ts';

const USERS = 100_000;
const userIds = Array.from({ length: USERS }, (_, i) => `user-${i}`);

/** χ² critical value for 6 degrees of freedom at significance 0.001 (a 3×4 table). */
const CHI2_DF6_P001 = 22.458;

function shares(experiment: Experiment): Map<string, number> {
  const compiled = compileExperiment(experiment);
  const counts = new Map<string, number>();
  for (const u of userIds) {
    const { arm } = assignCompiled(u, compiled);
    counts.set(arm, (counts.get(arm) ?? 0) + 1);
  }
  for (const [k, v] of counts) counts.set(k, v / USERS);
  return counts;
}

describe('MurmurHash3 x86_32', () => {
  // Published test vectors of the reference implementation (SMHasher).
  it.each([
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['ab', 0x9747b28c, 0x74875592],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ])('hashes %j with seed %i to the reference value', (s, seed, want) => {
    expect(hashString(s, seed)).toBe(want);
  });

  it('encodes UTF-8 like the WHATWG encoder, lone surrogates included', () => {
    for (const s of ['plain', 'café', '日本語', 'emoji 🦅', 'lone \ud800 high', 'lone \udc00 low', 'end \ud83e']) {
      expect(Array.from(utf8Encode(s))).toEqual(Array.from(new TextEncoder().encode(s)));
    }
  });

  it('hashes every string as the bytes TextEncoder gives it, ASCII or not, short or long', () => {
    const long = 'x'.repeat(1000);
    for (const s of ['u1', long, 'ascii then é', `${long}🦅`, 'u2', 'lone \ud800', 'a'.repeat(65), 'b'.repeat(3)]) {
      for (const seed of [0, 7, 0x9747b28c]) expect(hashString(s, seed)).toBe(murmur3x86_32(new TextEncoder().encode(s), seed));
    }
  });
});

describe('assignArm', () => {
  const experiment: Experiment = {
    id: 'ranker-v2',
    arms: [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 2, params: { modelVersion: 'v2' } },
      { name: 'c', weight: 7 },
    ],
  };

  it('is deterministic and carries the arm params', () => {
    for (const u of ['alice', 'bob', 'user-42', '']) {
      expect(assignArm(u, experiment)).toEqual(assignArm(u, structuredClone(experiment)));
    }
    const compiled = compileExperiment(experiment);
    const b = userIds.map((u) => assignCompiled(u, compiled)).find((x) => x.arm === 'b');
    expect(b?.params).toEqual({ modelVersion: 'v2' });
    expect(b?.inExperiment).toBe(true);
  });

  it('matches the weight split within 1% (absolute) over 100k users', () => {
    const got = shares(experiment);
    for (const [name, want] of [['a', 0.1], ['b', 0.2], ['c', 0.7]] as const) {
      expect(Math.abs((got.get(name) ?? 0) - want), name).toBeLessThan(0.01);
    }
  });

  it('assigns independently across experiments (χ² test of the 3×4 table at p = 0.001)', () => {
    const other = compileExperiment({ id: 'mmr-lambda', arms: [1, 1, 1, 1].map((w, i) => ({ name: `l${i}`, weight: w })) });
    const first = compileExperiment(experiment);
    const table = Array.from({ length: 3 }, () => new Float64Array(4));
    for (const u of userIds) {
      const i = ['a', 'b', 'c'].indexOf(assignCompiled(u, first).arm);
      const j = Number(assignCompiled(u, other).arm.slice(1));
      const row = table[i] as Float64Array;
      row[j] = (row[j] as number) + 1;
    }
    const rows = table.map((r) => r.reduce((s, x) => s + x, 0));
    const cols = [0, 1, 2, 3].map((j) => table.reduce((s, r) => s + (r[j] as number), 0));
    let chi2 = 0;
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 4; j++) {
        const expected = ((rows[i] as number) * (cols[j] as number)) / USERS;
        chi2 += (((table[i] as Float64Array)[j] as number) - expected) ** 2 / expected;
      }
    }
    expect(chi2).toBeLessThan(CHI2_DF6_P001);
  });

  it('reshuffles users when the experiment id changes', () => {
    const half: Experiment = { id: 'exp-1', arms: [{ name: 'x', weight: 1 }, { name: 'y', weight: 1 }] };
    const renamed: Experiment = { ...half, id: 'exp-2' };
    const [before, after] = [compileExperiment(half), compileExperiment(renamed)];
    let same = 0;
    for (const u of userIds) if (assignCompiled(u, before).arm === assignCompiled(u, after).arm) same++;
    // Independent assignments agree with probability Σ p_i² = 0.5.
    expect(Math.abs(same / USERS - 0.5)).toBeLessThan(0.01);
  });

  it('keeps everyone who was in, on the same arm, when traffic grows', () => {
    const small = compileExperiment({ ...experiment, traffic: 0.2 });
    const large = compileExperiment({ ...experiment, traffic: 0.5 });
    let inSmall = 0;
    let inLarge = 0;
    let moved = 0;
    let badHoldout = 0;
    for (const u of userIds) {
      const s = assignCompiled(u, small);
      const l = assignCompiled(u, large);
      if (l.inExperiment) inLarge++;
      if (!s.inExperiment) {
        if (s.arm !== HOLDOUT_ARM || s.params !== undefined) badHoldout++;
        continue;
      }
      inSmall++;
      if (!l.inExperiment || l.arm !== s.arm) moved++;
    }
    expect(moved).toBe(0);
    expect(badHoldout).toBe(0);
    expect(Math.abs(inSmall / USERS - 0.2)).toBeLessThan(0.01);
    expect(Math.abs(inLarge / USERS - 0.5)).toBeLessThan(0.01);
    expect(shares({ ...experiment, traffic: 0 }).get(HOLDOUT_ARM)).toBe(1);
  });

  it('never assigns a zero-weight arm', () => {
    const got = shares({ id: 'z', arms: [{ name: 'off', weight: 0 }, { name: 'on', weight: 3 }, { name: 'off2', weight: 0 }] });
    expect([...got.keys()]).toEqual(['on']);
  });

  it('rejects broken experiments with errors that say what to fix', () => {
    expect(() => assignArm('u', { id: 'x', arms: [{ name: 'a', weight: 0 }] })).toThrow("experiment 'x' arm weights sum to 0");
    expect(() => assignArm('u', { id: 'x', arms: [{ name: 'a', weight: 1 }, { name: 'a', weight: 1 }] })).toThrow("experiment 'x' has two arms named 'a'");
    expect(() => assignArm('u', { id: 'x', arms: [{ name: 'a', weight: 1 }], traffic: 1.5 })).toThrow("experiment 'x' traffic must be in [0, 1], got 1.5");
    expect(() => assignArm('u', { id: 'x', arms: [{ name: 'a', weight: -1 }] })).toThrow("experiment 'x' arm 'a' weight must be a finite number >= 0, got -1");
    expect(() => assignArm('u', { id: 'x', arms: [] })).toThrow("experiment 'x' has no arms");
    expect(() => assignArm('u', { id: '', arms: [{ name: 'a', weight: 1 }] })).toThrow('experiment id must be a non-empty string');
  });
});
