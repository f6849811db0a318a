import { describe, expect, it } from 'vitest';
import { buildDataset, DatasetBuilder, positiveRows, row, userItems, words } from '../../training/data/dataset.ts';
import type { Event } from '../../core/domain/event.ts';

const ev = (id: string, userId: string, itemId: string, timestamp: number, type = 'click', value?: number): Event =>
  value === undefined ? { id, type, userId, itemId, timestamp } : { id, type, userId, itemId, timestamp, value };

describe('Dataset', () => {
  const dataset = buildDataset({
    items: [
      { id: 'a', categories: ['drama'], tags: ['x'], text: 'The Big Sleep (1946)', attributes: { year: 1946, url: 'u1' } },
      { id: 'b', categories: ['drama', 'noir'], tags: ['x'], text: 'Big Heat', attributes: { year: 1953, url: 'u2' } },
      { id: 'c', categories: [], tags: [], text: '', attributes: {} },
    ],
    users: [{ id: 'u1', attributes: { age: 34, zip: '10001' } }, { id: 'u2', attributes: { age: 31, zip: '94110' } }],
    events: [
      ev('e3', 'u2', 'b', 3000, 'rating', 4),
      ev('e1', 'u1', 'a', 1000),
      ev('e2', 'u1', 'b', 2000, 'impression'),
      ev('e4', 'u1', 'c', 2000, 'dislike'),
      ev('e5', 'u3', 'd', 500, 'purchase'),
    ],
  });

  it('orders interactions by time, ties in input order', () => {
    const { timestamp, item } = dataset.interactions;
    expect(Array.from(timestamp)).toEqual([500, 1000, 2000, 2000, 3000]);
    expect(Array.from(item, (i) => dataset.itemIds[i])).toEqual(['d', 'a', 'b', 'c', 'b']);
  });

  it('indexes the catalog first, then ids first seen in events', () => {
    expect(dataset.itemIds).toEqual(['a', 'b', 'c', 'd']);
    expect(dataset.userIds).toEqual(['u1', 'u2', 'u3']);
  });

  it('weights by type, and ratings by their value', () => {
    expect(Array.from(dataset.interactions.weight)).toEqual([8, 2, 0, -4, 4]);
    expect(Array.from(positiveRows(dataset))).toEqual([0, 1, 4]);
  });

  it('keeps shared content tokens and drops ones a single item carries', () => {
    const names = (i: number) => Array.from(row(dataset.itemFeatures, i), (f) => dataset.itemFeatureNames[f]);
    expect(names(0)).toEqual(expect.arrayContaining(['category:drama', 'tag:x', 'word:big']));
    expect(names(0)).not.toContain('word:sleep');
    expect(names(0).some((t) => t?.startsWith('attr:url'))).toBe(false);
    expect(names(1)).toContain('category:noir');
    expect(names(2)).toEqual([]);
    expect(dataset.categoryNames).toEqual(['drama', 'noir']);
    // Ages 34 and 31 share a decade; zip codes are unique to one user each.
    expect(Array.from(row(dataset.userFeatures, 0), (f) => dataset.userFeatureNames[f])).toEqual(['age=30']);
  });

  it('lists each user\'s positive items in time order', () => {
    const csr = userItems(dataset);
    expect(Array.from(row(csr, 0), (i) => dataset.itemIds[i])).toEqual(['a']);
    expect(Array.from(row(csr, 1), (i) => dataset.itemIds[i])).toEqual(['b']);
    expect(Array.from(row(csr, 2), (i) => dataset.itemIds[i])).toEqual(['d']);
  });

  it('refuses an event type that is not configured, naming it', () => {
    const builder = new DatasetBuilder({ eventTypes: [{ name: 'view', weight: 1 }] });
    expect(() => builder.addEvent(ev('x', 'u', 'i', 1, 'click'))).toThrow("type 'click', which is not configured");
  });

  it('tokenises words without numbers-only tokens', () => {
    expect(words('Se7en (1995): the Movie!')).toEqual(['se7en', 'the', 'movie']);
  });
});
