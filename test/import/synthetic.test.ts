// Reads the synthetic generator's output back: what `kestrel generate` writes, `kestrel import` reads.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import type { SyntheticItem, SyntheticUser } from '../../training/data/synthetic.ts';
import { writeDataset } from '../../training/data/write.ts';
import { openImport } from '../../training/data/import/index.ts';
import { errors, readAll, records, tempFolder } from './helpers.ts';

const SIZE = { users: 50, items: 80, events: 3_000, clusters: 4 };
const tmp = tempFolder('synthetic');
const jsonDir = join(tmp.dir, 'jsonl');
const csvDir = join(tmp.dir, 'csv');

function lines<T>(file: string): T[] {
  return readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as T);
}

beforeAll(async () => {
  await writeDataset(jsonDir, SIZE);
  await writeDataset(csvDir, SIZE, { format: 'csv' });
});

describe('synthetic dataset read back', () => {
  it('events.jsonl gives back exactly the events written', async () => {
    const path = join(jsonDir, 'events.jsonl');
    const rows = await readAll(path);
    expect(errors(rows)).toEqual([]);
    expect(records<Event>(rows)).toEqual(lines<Event>(path));
    expect(rows[0]?.line).toBe(1);
  });

  it('events.csv gives back the same events as events.jsonl, less the context it has no column for', async () => {
    const rows = await readAll(join(csvDir, 'events.csv'));
    expect(errors(rows)).toEqual([]);
    const written = lines<Event>(join(jsonDir, 'events.jsonl')).map(({ context: _, ...rest }) => rest);
    expect(records<Event>(rows)).toEqual(written);
    expect(rows[0]?.line).toBe(2); // line 1 is the header
  });

  it('items.jsonl and users.jsonl give back the catalog and the users', async () => {
    const items = await openImport(join(jsonDir, 'items.jsonl'));
    expect(items.kind).toBe('item');
    const itemRows = await readAll(items.path);
    expect(records(itemRows)).toEqual(lines<SyntheticItem>(join(jsonDir, 'items.jsonl')));
    const userRows = await readAll(join(jsonDir, 'users.jsonl'));
    expect(records(userRows)).toEqual(lines<SyntheticUser>(join(jsonDir, 'users.jsonl')));
  });

  it('reports progress up to the file size', async () => {
    const calls: [number, number][] = [];
    const source = await openImport(join(jsonDir, 'events.jsonl'), { progress: (read, total) => calls.push([read, total]) });
    let n = 0;
    for await (const _ of source.rows) n++;
    expect(n).toBe(SIZE.events);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.at(-1)).toEqual([source.totalBytes, source.totalBytes]);
    expect(calls.every(([read], i) => i === 0 || read >= (calls[i - 1]?.[0] ?? 0))).toBe(true);
  });
});
