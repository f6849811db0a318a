import { describe, expect, it } from 'vitest';
import type { Event } from '../../../core/domain/event.ts';
import { buildDataset } from '../../../training/data/dataset.ts';
import type { Dataset } from '../../../training/data/dataset.ts';
import { murmur3x86_32 } from '../../../core/domain/hash.ts';
import {
  DAY_MS, DENSE_INDEX, DENSE_SIZE, FeatureState, ROW_EXPLICIT_NEGATIVE, ROW_IMPRESSION, ROW_POSITIVE, ROW_SAMPLED,
  WideBuilder, buildRankerRows, crossHash, freezeFeatures, pointInTimeFeatures, positionBucket,
} from '../../../training/features/index.ts';
import type { DenseFeatureName, FeatureRows, RankerRows } from '../../../training/features/index.ts';
import { rowsWhere, syntheticDataset, withRows } from './fixtures.ts';

const T0 = Date.UTC(2025, 2, 1);
const S = 1000;

/** Seven events by two users over three items, with a tie at T0 (see each test for what it checks). */
function handMade(): Dataset {
  const at = (id: string, type: string, userId: string, itemId: string, dt: number, extra: Partial<Event> = {}): Event => ({
    id, type, userId, itemId, timestamp: T0 + dt, ...extra,
  });
  return buildDataset({
    items: [
      { id: 'a', categories: ['c1'], tags: [], text: '', attributes: {}, publishedAt: T0 - 2 * DAY_MS },
      { id: 'b', categories: ['c1', 'c2'], tags: [], text: '', attributes: {} },
      { id: 'c', categories: [], tags: [], text: '', attributes: {} },
    ],
    users: [{ id: 'u1', attributes: { country: 'DE' } }, { id: 'u2', attributes: { country: 'DE' } }],
    events: [
      at('e1', 'click', 'u1', 'a', 0, { position: 0 }),
      at('e2', 'click', 'u2', 'a', 0),
      at('e3', 'impression', 'u1', 'b', 10 * S, { position: 3 }),
      at('e4', 'view', 'u1', 'b', 20 * S),
      at('e5', 'dislike', 'u1', 'c', 30 * S),
      at('e6', 'rating', 'u2', 'a', 40 * S, { value: 2 }),
      at('e7', 'purchase', 'u1', 'a', 2 * 3_600_000),
    ],
  });
}

function feature(rows: { dense: Float32Array }, r: number, name: DenseFeatureName): number {
  return rows.dense[r * DENSE_SIZE + DENSE_INDEX[name]] ?? Number.NaN;
}

function wideOf(rows: FeatureRows, r: number): number[] {
  return [...rows.wideIds.subarray(rows.wideOffsets[r] ?? 0, rows.wideOffsets[r + 1] ?? 0)];
}

function denseOf(rows: FeatureRows, r: number): number[] {
  return [...rows.dense.subarray(r * DENSE_SIZE, (r + 1) * DENSE_SIZE)];
}

describe('point-in-time features on hand-made data', () => {
  const dataset = handMade();
  const rows = pointInTimeFeatures(dataset, { recentHalfLifeMs: 20 * S });
  const f = (r: number, name: DenseFeatureName) => feature(rows, r, name);
  const close = (v: number) => expect.closeTo(v, 5);

  it('sees nothing at the first timestamp, and events at the same timestamp do not see each other', () => {
    for (const r of [0, 1]) {
      expect(f(r, 'itemPopularity')).toBe(0);
      expect(f(r, 'itemRecentPopularity')).toBe(0);
      expect(f(r, 'userActivity')).toBe(0);
      expect(f(r, 'sinceCategoryMissing')).toBe(1);
      expect(f(r, 'categoryAffinity')).toBe(0);
      expect(f(r, 'externalScoreMissing')).toBe(1);
    }
    expect(f(0, 'itemAgeDays')).toEqual(close(Math.log1p(2)));
    expect(f(0, 'itemAgeMissing')).toBe(0);
    expect(f(0, 'position')).toBe(0);
    expect(f(0, 'positionMissing')).toBe(0);
    expect(f(1, 'positionMissing')).toBe(1);
  });

  it('counts the user, the category and the time since it; impressions and negatives update nothing', () => {
    // e3: u1's impression of b (c1, c2) 10 s after u1 clicked a (c1).
    expect(f(2, 'userActivity')).toEqual(close(Math.log1p(1)));
    expect(f(2, 'sinceCategorySeconds')).toEqual(close(Math.log1p(10)));
    expect(f(2, 'categoryAffinity')).toBe(1);
    expect(f(2, 'itemPopularity')).toBe(0);
    expect(f(2, 'itemAgeMissing')).toBe(1);
    expect(f(2, 'position')).toEqual(close(Math.log1p(3)));
    // e4: the impression changed nothing but the clock.
    expect(f(3, 'userActivity')).toEqual(close(Math.log1p(1)));
    expect(f(3, 'sinceCategorySeconds')).toEqual(close(Math.log1p(20)));
    // e5: c has no categories; u1 now has two positives (a, b).
    expect(f(4, 'userActivity')).toEqual(close(Math.log1p(2)));
    expect(f(4, 'sinceCategoryMissing')).toBe(1);
    expect(f(4, 'categoryAffinity')).toBe(0);
    // e6: u2 rates a; the dislike of c did not count, a has the two clicks.
    expect(f(5, 'itemPopularity')).toEqual(close(Math.log1p(2)));
    expect(f(5, 'userActivity')).toEqual(close(Math.log1p(1)));
  });

  it('decays recent popularity with the half-life', () => {
    // e7 at 2 h: a had clicks at 0 (×2) and the rating at 40 s, all ≫ half-lives ago.
    expect(f(6, 'itemPopularity')).toEqual(close(Math.log1p(3)));
    const decayed = 2 * 2 ** -(7200 / 20) + 2 ** -((7200 - 40) / 20);
    expect(f(6, 'itemRecentPopularity')).toEqual(close(Math.log1p(decayed)));
    const week = pointInTimeFeatures(dataset).dense; // the default half-life, 7 days
    const weekDecayed = 2 * 2 ** -(7200 / (7 * 86_400)) + 2 ** -((7200 - 40) / (7 * 86_400));
    expect(week[6 * DENSE_SIZE + DENSE_INDEX.itemRecentPopularity]).toBeCloseTo(Math.log1p(weekDecayed), 5);
  });

  it('hashes crosses into buckets: user × category, item × position bucket, user feature × category', () => {
    const w0 = wideOf(rows, 0);
    const w1 = wideOf(rows, 1);
    expect(w0).toHaveLength(3);
    expect(w1).toHaveLength(3);
    expect(w0[0]).not.toBe(w1[0]); // u1 × c1 vs u2 × c1
    expect(w0[1]).not.toBe(w1[1]); // a × slot 0 vs a × unknown slot
    expect(w0[2]).toBe(w1[2]); // country=DE × c1 for both
    expect(wideOf(rows, 2)).toHaveLength(2 + 1 + 2);
    for (const id of rows.wideIds) expect(id).toBeLessThan(1 << 18);
    const bytes = Uint8Array.of(0x78, 0x56, 0x34, 0x12, 0xff, 0xee, 0xdd, 0xcc);
    expect(crossHash(3, 0x12345678, 0xccddeeff)).toBe(murmur3x86_32(bytes, 3));
    expect(crossHash(1, 0, 0xffffffff)).toBe(murmur3x86_32(Uint8Array.of(0, 0, 0, 0, 255, 255, 255, 255), 1));
    expect([-1, 0, 1, 2, 3, 4, 5, 9, 10, 50].map(positionBucket)).toEqual([0, 1, 2, 3, 4, 4, 5, 5, 6, 6]);
  });

  it('freezes at the end of the data for serving', () => {
    const frozen = freezeFeatures(dataset);
    const out = new Float32Array(DENSE_SIZE);
    frozen.dense(1, 1, out); // u2, b
    expect(out[DENSE_INDEX.itemPopularity]).toBeCloseTo(Math.log1p(1), 5);
    expect(out[DENSE_INDEX.userActivity]).toBeCloseTo(Math.log1p(2), 5);
    expect(out[DENSE_INDEX.positionMissing]).toBe(1);
    expect(() => frozen.state.dense(0, 0, T0, -1, out)).toThrow(/leak the future/);
  });

  it('passes the external score callback only the history before t', () => {
    const seen: [number, number[]][] = [];
    const scored = pointInTimeFeatures(dataset, {
      externalScore: (user, item, history, t) => {
        seen.push([t, [...history]]);
        return user * 10 + item + history.length / 100;
      },
    });
    expect(feature(scored, 0, 'externalScoreMissing')).toBe(0);
    expect(feature(scored, 6, 'externalScore')).toBeCloseTo(0 + 0 + 2 / 100, 5); // u1: a, b before 2 h
    expect(seen[6]).toEqual([T0 + 7_200_000, [0, 1]]);
    expect(seen[0]).toEqual([T0, []]);
  });
});

describe('ranker rows on hand-made data', () => {
  const rows = buildRankerRows(handMade(), { seed: 3 });

  it('anchors rows at impressions, unattributed positives and negatives; labels follow attribution', () => {
    const anchored = [...rows.kind].map((k, r) => [k, rows.source[r], rows.click[r], rows.engagement[r]]).filter(([k]) => k !== ROW_SAMPLED);
    expect(anchored).toEqual([
      [ROW_POSITIVE, 0, 1, 0], // e1 click; e7's purchase is 2 h later, outside the window
      [ROW_POSITIVE, 1, 1, 0], // e2 click; e6's rating of 2 is not engagement
      [ROW_IMPRESSION, 2, 1, 0], // e3, clicked through by e4's view
      [ROW_EXPLICIT_NEGATIVE, 4, 0, 0], // e5 dislike
      [ROW_POSITIVE, 6, 1, 1], // e7 purchase: engagement
    ]);
  });

  it('opens a new row for a positive after an explicit negative, and lets a row absorb a later negative', () => {
    const at = (id: string, type: string, itemId: string, dt: number): Event => ({ id, type, userId: 'u', itemId, timestamp: T0 + dt });
    const dataset = buildDataset({
      events: [at('s', 'skip', 'a', 0), at('c', 'click', 'a', 10 * S), at('d', 'dislike', 'a', 20 * S), at('x', 'view', 'b', 30 * S)],
    });
    const built = buildRankerRows(dataset, { sampledNegatives: 0 });
    expect([...built.kind]).toEqual([ROW_EXPLICIT_NEGATIVE, ROW_POSITIVE, ROW_POSITIVE]);
    expect([...built.source]).toEqual([0, 1, 3]);
    expect([...built.click]).toEqual([0, 1, 1]);
  });

  it('samples one negative per clicked row, an item the user had no positive with before t', () => {
    const sampled = [...rows.kind.keys()].filter((r) => rows.kind[r] === ROW_SAMPLED);
    expect(sampled.length).toBeGreaterThanOrEqual(3);
    for (const r of sampled) {
      const anchor = rows.source[r] ?? 0;
      expect(rows.user[r]).toBe(rows.user[rows.source.indexOf(anchor)]);
      expect(rows.item[r]).not.toBe(rows.item[rows.source.indexOf(anchor)]);
      expect(rows.click[r]).toBe(0);
      expect(rows.position[r]).toBe(-1);
    }
    // u1 at 2 h has had a and b: the only item left for its purchase row is c.
    const last = sampled.filter((r) => rows.source[r] === 6);
    expect(last.map((r) => rows.item[r])).toEqual([2]);
  });
});

// --- Leakage: features must be a function of the past only. ---------------------------------------

describe('no future data leaks into the features', () => {
  const dataset = syntheticDataset({ users: 50, items: 80, events: 4000, seed: 7, clusters: 4 });
  const { timestamp, length } = dataset.interactions;
  const options = { externalScore: (u: number, i: number, h: readonly number[]) => u * 0.001 + i * 0.01 + h.length };
  const full = pointInTimeFeatures(dataset, options);

  it('has ties, so the tie rule is exercised', () => {
    let ties = 0;
    for (let r = 1; r < length; r++) if (timestamp[r] === timestamp[r - 1]) ties++;
    expect(ties).toBeGreaterThan(100);
  });

  it('gives every row the same features when only the events strictly before it (and itself) exist', () => {
    for (let r = 0; r < length; r += 23) {
      const t = timestamp[r] ?? 0;
      const truncated = withRows(dataset, rowsWhere(dataset, (s) => (timestamp[s] ?? 0) < t || s === r));
      const alone = pointInTimeFeatures(truncated, options);
      const last = truncated.interactions.length - 1;
      expect(denseOf(alone, last), `row ${r}`).toEqual(denseOf(full, r));
      expect(wideOf(alone, last)).toEqual(wideOf(full, r));
    }
  });

  it('does not change any earlier row when future events are appended', () => {
    const cut = timestamp[Math.floor(length * 0.6)] ?? 0;
    const prefix = withRows(dataset, rowsWhere(dataset, (s) => (timestamp[s] ?? 0) < cut));
    const early = pointInTimeFeatures(prefix, options);
    expect(early.length).toBeGreaterThan(1000);
    expect(early.dense).toEqual(full.dense.subarray(0, early.length * DENSE_SIZE));
    expect(early.wideIds).toEqual(full.wideIds.subarray(0, early.wideIds.length));
  });

  it('builds the same ranker rows (features, sampled negatives) before a cut with or without the future', () => {
    const cut = timestamp[Math.floor(length * 0.6)] ?? 0;
    const prefix = withRows(dataset, rowsWhere(dataset, (s) => (timestamp[s] ?? 0) < cut));
    const a = buildRankerRows(prefix, { ...options, seed: 5, sampledNegatives: 2 });
    const b = buildRankerRows(dataset, { ...options, seed: 5, sampledNegatives: 2 });
    const before = (rows: RankerRows) => [...rows.timestamp].filter((t) => t < cut).length;
    const n = before(a);
    expect(n).toBe(before(b));
    expect(n).toBeGreaterThan(1000);
    for (const key of ['user', 'item', 'position', 'kind', 'source'] as const) expect(a[key].subarray(0, n)).toEqual(b[key].subarray(0, n));
    expect(a.dense.subarray(0, n * DENSE_SIZE)).toEqual(b.dense.subarray(0, n * DENSE_SIZE));
    expect(a.wideOffsets.subarray(0, n + 1)).toEqual(b.wideOffsets.subarray(0, n + 1));
  });

  it('rows() gives one user\'s rows exactly as dense() and wide() per item, its wide ids listed or grouped by category, across times, users and positions', () => {
    const state = new FeatureState(dataset, { ...options, coVisitationScore: (u, i) => (u % 3) - i * 0.002 });
    const users = dataset.userIds.length;
    expect(dataset.userFeatures.indices.length).toBeGreaterThan(0);
    let multiCategory = 0;
    for (let i = 0; i < dataset.itemIds.length; i++) if ((dataset.itemCategories.offsets[i + 1] ?? 0) - (dataset.itemCategories.offsets[i] ?? 0) > 1) multiCategory++;
    expect(multiCategory).toBeGreaterThan(0);
    let checked = 0;
    // Each cut at its own time and at one later time, that one last, then first: two calls in a
    // row at the later time with the state moved between them.
    const late = (timestamp[Math.floor(length * 0.95)] ?? 0) + 1;
    for (const [cut, t] of [0.2, 0.5, 0.5, 0.9].flatMap((c, k) => {
      const at = (timestamp[Math.floor(length * c)] ?? 0) + 1;
      return k % 2 === 0 ? [[at, at], [at, late]] : [[at, late], [at, at]];
    })) {
      state.advanceTo(cut ?? 0);
      // The same time twice (0.5): the second call reads the caches the first one filled.
      for (const user of [3, 17, 3, users]) {
        for (const position of [-1, 0, 4]) {
          const items = Int32Array.from({ length: 60 }, (_, k) => (k * 13 + user) % dataset.itemIds.length);
          const dense = new Float32Array(items.length * DENSE_SIZE);
          const wide = new WideBuilder();
          state.rows(user, items, t ?? 0, position, dense, wide);
          const built = wide.build();
          // The same rows with the wide ids grouped (WideGroupSink): each row's ids are its
          // categories' ids and its own, the same multiset as listed.
          const groupedDense = new Float32Array(items.length * DENSE_SIZE);
          const byCategory = new Map<number, number[]>();
          const groupedRows: number[][] = [];
          state.rows(user, items, t ?? 0, position, groupedDense, {
            category: (c, userCross, featureCrosses, from, count) => {
              expect(byCategory.has(c), `category ${c} given twice in one call`).toBe(false);
              byCategory.set(c, [userCross, ...featureCrosses.subarray(from, from + count)]);
            },
            row: (itemCross, categories, from, to) => {
              groupedRows.push([itemCross, ...[...categories.subarray(from, to)].flatMap((c) => byCategory.get(c) ?? [Number.NaN])]);
            },
          });
          expect(groupedDense).toEqual(dense);
          expect(groupedRows.length).toBe(items.length);
          const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);
          const one = new Float32Array(DENSE_SIZE);
          items.forEach((item, k) => {
            state.dense(user, item, t ?? 0, position, one);
            expect(dense.subarray(k * DENSE_SIZE, (k + 1) * DENSE_SIZE)).toEqual(one);
            const ids: number[] = [];
            state.wide(user, item, position, ids);
            expect(Array.from(built.wideIds.subarray(built.wideOffsets[k], built.wideOffsets[k + 1]))).toEqual(ids);
            expect(sorted(groupedRows[k] ?? [])).toEqual(sorted(ids));
            checked++;
          });
        }
      }
    }
    expect(checked).toBe(8 * 4 * 3 * 60);
  });

  it('matches a state advanced by hand for arbitrary pairs (the frozen serving path)', () => {
    const t = timestamp[Math.floor(length / 2)] ?? 0;
    const frozen = freezeFeatures(dataset, options, t);
    const state = new FeatureState(withRows(dataset, rowsWhere(dataset, (s) => (timestamp[s] ?? 0) < t)), options);
    state.advanceTo(Infinity);
    const x = new Float32Array(DENSE_SIZE);
    const y = new Float32Array(DENSE_SIZE);
    for (let u = 0; u < 10; u++) {
      for (let i = 0; i < 80; i += 7) {
        frozen.dense(u, i, x);
        state.dense(u, i, t, -1, y);
        expect(x).toEqual(y);
      }
    }
  });
});
