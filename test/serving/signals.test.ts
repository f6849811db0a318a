// The non-model retrieval signals on small hand-made catalogs: co-visitation pairs what users
// consume together and forgets with time, trending decays, fresh favours new and little-shown
// items, and the content index ranks by shared rare tokens.
import { describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { buildSignals, DAY_MS } from '../../core/serving/signals.ts';
import { coVisitationSource, contentSource, freshSource, trendingSource } from '../../core/serving/sources.ts';
import type { Candidates, RetrievalContext } from '../../core/serving/sources.ts';
import type { ServingSnapshot } from '../../core/serving/snapshot.ts';
import { DatasetBuilder, positiveRows, row } from '../../training/data/dataset.ts';
import type { Dataset } from '../../training/data/dataset.ts';
import type { ItemRecord } from '../../training/data/import/records.ts';

const T0 = Date.UTC(2026, 0, 1);
let seq = 0;
const ev = (user: string, item: string, t: number, type = 'click'): Event => ({ id: `e${seq++}`, type, userId: user, itemId: item, timestamp: t });
const item = (id: string, extra: Partial<ItemRecord> = {}): ItemRecord => ({ id, categories: [], tags: [], text: '', attributes: {}, ...extra });

function dataset(items: ItemRecord[], events: Event[]): Dataset {
  const b = new DatasetBuilder({ minTokenRows: 1 });
  for (const i of items) b.addItem(i);
  for (const e of events) b.addEvent(e);
  return b.build();
}

function context(ds: Dataset, signals: ReturnType<typeof buildSignals>, history: string[], categories?: number[]): RetrievalContext {
  const snapshot = { dataset: ds, signals } as unknown as ServingSnapshot;
  const excluded = new Uint8Array(ds.itemIds.length);
  const h = Int32Array.from(history, (id) => ds.itemIndex.get(id) ?? 0);
  for (const i of h) excluded[i] = 1;
  return { snapshot, user: 0, history: h, excluded, filter: {}, ...(categories ? { categories } : {}) };
}

const ids = (ds: Dataset, found: Candidates) => Array.from(found.items, (i) => ds.itemIds[i]);

describe('retrieval signals', () => {
  it('co-visitation recommends what others consumed next to the history, recent pairs over old ones', async () => {
    const events: Event[] = [];
    // Long ago, many users paired a with old; lately, fewer paired a with new.
    for (let u = 0; u < 10; u++) events.push(ev(`old${u}`, 'a', T0), ev(`old${u}`, 'old', T0 + 1000));
    for (let u = 0; u < 4; u++) events.push(ev(`new${u}`, 'a', T0 + 200 * DAY_MS), ev(`new${u}`, 'new', T0 + 200 * DAY_MS + 1000));
    events.push(ev('x', 'unrelated', T0 + 200 * DAY_MS), ev('y', 'b', T0 + 1));
    const ds = dataset(['a', 'old', 'new', 'unrelated', 'b'].map((id) => item(id)), events);
    const clock = T0 + 200 * DAY_MS + 2000;
    const signals = buildSignals(ds, positiveRows(ds), clock, { coVisitationHalfLifeMs: 30 * DAY_MS });
    const found = await coVisitationSource.retrieve(context(ds, signals, ['a']), 5);
    expect(ids(ds, found)).toEqual(['new', 'old']);
    // Without decay, the pair seen by more users wins.
    const flat = buildSignals(ds, positiveRows(ds), clock, { coVisitationHalfLifeMs: 1e15 });
    expect(ids(ds, await coVisitationSource.retrieve(context(ds, flat, ['a']), 5))).toEqual(['old', 'new']);
  });

  it('trending decays with time, per category too, and ties fall back to all-time popularity', async () => {
    const events: Event[] = [];
    for (let u = 0; u < 20; u++) events.push(ev(`u${u}`, 'classic', T0));
    for (let u = 0; u < 3; u++) events.push(ev(`v${u}`, 'hot', T0 + 100 * DAY_MS));
    for (let u = 0; u < 2; u++) events.push(ev(`w${u}`, 'ancient', T0 - 2000 * DAY_MS));
    const ds = dataset([item('classic', { categories: ['film'] }), item('hot', { categories: ['film'] }), item('ancient', { categories: ['book'] })], events);
    const signals = buildSignals(ds, positiveRows(ds), T0 + 100 * DAY_MS + 1, { trendingHalfLifeMs: DAY_MS });
    expect(Array.from(signals.trending.items, (i) => ds.itemIds[i])).toEqual(['hot', 'classic', 'ancient']);
    const film = ds.categoryNames.indexOf('film');
    expect(ids(ds, await trendingSource.retrieve(context(ds, signals, [], [film]), 5))).toEqual(['hot', 'classic']);
    // 2,000 half-lives underflow to 0 even in float64; the item is still listed, after the others.
    expect(signals.trending.score[ds.itemIndex.get('ancient') ?? 0]).toBe(0);
  });

  it('fresh lists recently published items, less shown first among equals, and never old ones', async () => {
    const clock = T0 + 30 * DAY_MS;
    const events = [ev('u', 'old', T0), ev('u', 'shown', clock - 10, 'impression'), ev('u', 'shown', clock - 9, 'impression')];
    for (let k = 0; k < 300; k++) events.push(ev(`s${k}`, 'shown', clock - 5, 'impression'));
    const ds = dataset([
      item('old', { publishedAt: T0 - 100 * DAY_MS }), item('newest', { publishedAt: clock - DAY_MS }),
      item('shown', { publishedAt: clock - DAY_MS }), item('week', { publishedAt: clock - 7 * DAY_MS }),
    ], events);
    const signals = buildSignals(ds, positiveRows(ds), clock, { freshWindowMs: 14 * DAY_MS });
    expect(ids(ds, await freshSource.retrieve(context(ds, signals, []), 10))).toEqual(['newest', 'week', 'shown']);
  });

  it('content ranks items by the rare tokens they share with the recent history', async () => {
    const items = [
      item('seen', { tags: ['noir', 'heist'], categories: ['film'] }),
      item('both', { tags: ['noir', 'heist'], categories: ['film'] }),
      item('one', { tags: ['noir'], categories: ['film'] }),
      item('none', { tags: ['comedy'], categories: ['film'] }),
      item('pad1', { tags: ['comedy'], categories: ['film'] }), item('pad2', { tags: ['romance'], categories: ['film'] }),
      item('pad3', { tags: ['romance'], categories: ['film'] }), item('pad4', { tags: ['drama'], categories: ['film'] }),
      item('pad5', { tags: ['drama'], categories: ['film'] }), item('pad6', { tags: ['war'], categories: ['film'] }),
      ...['pad7', 'pad8', 'pad9', 'pad10', 'pad11'].map((id) => item(id, { tags: ['western'], categories: ['film'] })),
    ];
    const ds = dataset(items, [ev('u', 'seen', T0)]);
    const signals = buildSignals(ds, positiveRows(ds), T0 + 1);
    // 'film' is on every item: more than the 20% share, so it is not indexed and matches nothing;
    // 'noir' (3 of 15) is, and 'heist' (2 of 15) is rarer, so it weighs more.
    const found = await contentSource.retrieve(context(ds, signals, ['seen']), 10);
    expect(ids(ds, found)).toEqual(['both', 'one']);
    expect(row(signals.content.postings, ds.itemFeatureNames.findIndex((n) => n.includes('film')))).toHaveLength(0);
  });
  it('reads at most 50,000 postings per request, strongest tokens first, skipping a list that does not fit whole', async () => {
    // A catalog too large to hand-make item by item, so its index is built directly: 260,000
    // items, a common token on the first 52,000 (20%, the most an indexed token can have), a rare
    // token on items 100..109. The history is item 100, which has both.
    const n = 260_000;
    const common = Int32Array.from({ length: 52_000 }, (_, i) => i);
    const rare = Int32Array.from({ length: 10 }, (_, i) => 100 + i);
    const itemFeatures = { offsets: new Int32Array(n + 1), indices: new Int32Array(0) };
    const lists: number[][] = Array.from({ length: n }, () => []);
    for (const i of common) lists[i]?.push(0);
    for (const i of rare) lists[i]?.push(1);
    let at = 0;
    const flat: number[] = [];
    lists.forEach((l, i) => {
      flat.push(...l);
      at += l.length;
      itemFeatures.offsets[i + 1] = at;
    });
    itemFeatures.indices = Int32Array.from(flat);
    const postings = { offsets: Int32Array.of(0, common.length, common.length + rare.length), indices: Int32Array.from([...common, ...rare]) };
    const idf = Float32Array.of(Math.log(n / common.length), Math.log(n / rare.length));
    const norm = Float32Array.from(lists, (l) => (l.length > 0 ? 1 / Math.sqrt(l.length) : 0));
    const ds = { itemIds: Array.from({ length: n }, (_, i) => `i${i}`), itemFeatures } as unknown as Dataset;
    const snapshot = { dataset: ds, signals: { content: { postings, idf, norm } } } as unknown as ServingSnapshot;
    const excluded = new Uint8Array(n);
    excluded[100] = 1;
    const found = await contentSource.retrieve({ snapshot, user: 0, history: Int32Array.of(100), excluded, filter: {} }, 20);
    // The common token's 52,000 postings do not fit the budget: only the rare token's items come back.
    expect(Array.from(found.items)).toEqual([101, 102, 103, 104, 105, 106, 107, 108, 109]);
  });
});
