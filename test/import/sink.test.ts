// The import sink on its own, with in-memory ports: validation by the API's schemas, batching,
// duplicates and the rejection tally.
import { describe, expect, it } from 'vitest';
import type { ItemInput, UserInput } from '../../core/domain/catalog.ts';
import type { Event } from '../../core/domain/event.ts';
import { createImportSink, reasonKey } from '../../training/data/import/sink.ts';
import type { ImportRow } from '../../training/data/import/index.ts';

function memoryPorts() {
  const items = new Map<string, ItemInput>();
  const users = new Map<string, UserInput>();
  const published: Event[][] = [];
  const upsert = <T extends { id: string }>(store: Map<string, T>) => async (rows: readonly T[]) => rows.map((r) => {
    const outcome = store.has(r.id) ? 'updated' as const : 'created' as const;
    store.set(r.id, r);
    return { id: r.id, outcome };
  });
  return {
    items, users, published,
    ports: {
      items: { upsertMany: upsert(items) },
      users: { upsertMany: upsert(users) },
      bus: { publish: async (events: readonly Event[]) => { published.push([...events]); } },
      storedEvents: (ids: readonly string[]) => new Set(ids.filter((id) => id === 'stored-before')),
    },
  };
}

async function* rows(list: ImportRow[]): AsyncGenerator<ImportRow> {
  yield* list;
}

const event = (id: string, extra: Partial<Event> = {}): Event => ({ id, type: 'click', userId: 'u', itemId: 'i', timestamp: 1_700_000_000_000, ...extra });

describe('import sink', () => {
  it('publishes valid events in batches, skips stored and repeated ids, tallies rejections by reason', async () => {
    const m = memoryPorts();
    const sink = createImportSink(m.ports, { batchSize: 3, now: () => 1_800_000_000_000 });
    const input: ImportRow[] = [
      { line: 1, record: event('a') },
      { line: 2, record: event('b', { type: 'warp' }) },
      { line: 3, record: event('stored-before') },
      { line: 4, error: 'line 4: has 2 columns, the header has 4' },
      { line: 5, record: event('c') },
      { line: 6, record: event('a') },
      { line: 7, record: event('d', { type: 'zap' }) },
      { line: 8, record: event('e', { timestamp: 1_900_000_000_000 }) },
    ];
    const tally = await sink.importRows('event', rows(input));
    expect(m.published.map((b) => b.map((e) => e.id))).toEqual([['a'], ['c']]);
    expect(tally).toMatchObject({ read: 8, accepted: 2, duplicates: 2, rejected: 4 });
    const reasons = [...tally.reasons.values()];
    expect(reasons.map((r) => [r.count, r.lines])).toEqual([[2, [2, 7]], [1, [4]], [1, [8]]]);
    expect(reasons[0]?.example).toMatch(/^line 2: event\.type "warp" is not a configured event type/);

    // Once projected, "already stored" comes from the store; until then the sink remembers.
    sink.projected(['a', 'c']);
    const again = await sink.importRows('event', rows([{ line: 1, record: event('stored-before') }]));
    expect(again).toMatchObject({ read: 1, accepted: 0, duplicates: 1 });
  });

  it('upserts items and users, counting ids already stored as duplicates', async () => {
    const m = memoryPorts();
    const sink = createImportSink(m.ports);
    const item = { id: 'i1', categories: ['a'], tags: [], text: 't', attributes: { n: 1 } };
    const first = await sink.importRows('item', rows([{ line: 1, record: item }, { line: 2, record: { ...item, id: 'bad id' } }]));
    expect(first).toMatchObject({ read: 2, accepted: 1, duplicates: 0, rejected: 1 });
    const second = await sink.importRows('item', rows([{ line: 1, record: { ...item, text: 'new' } }]));
    expect(second).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(m.items.get('i1')?.text).toBe('new');
    const users = await sink.importRows('user', rows([{ line: 1, record: { id: 'u1', attributes: {} } }]));
    expect(users).toMatchObject({ accepted: 1 });
  });

  it('groups messages that differ only in their values', () => {
    expect(reasonKey('line 3: event.type "warp" is not a configured event type')).toBe(reasonKey('line 9: event.type "zap" is not a configured event type'));
    expect(reasonKey("line 7: column 'timestamp' is 'yesterday', not a number")).toBe(reasonKey("line 8: column 'timestamp' is 'x', not a number"));
    expect(reasonKey("line 7: column 'timestamp' is 'x', not a number")).not.toBe(reasonKey("line 7: column 'value' is 'x', not a number"));
  });
});
