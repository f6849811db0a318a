// The real ml-100k, read where the project keeps it (../shared/datasets/ml-100k from the repo
// root); never copied into the repo (its licence forbids redistribution).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { openImport } from '../../training/data/import/index.ts';
import type { ImportRow } from '../../training/data/import/index.ts';

const DIR = resolve(import.meta.dirname, '../../../shared/datasets/ml-100k');
const present = existsSync(resolve(DIR, 'u.data'));

async function count(file: string): Promise<{ records: ImportRow[]; errors: string[] }> {
  const source = await openImport(resolve(DIR, file));
  const records: ImportRow[] = [];
  const errors: string[] = [];
  for await (const row of source.rows) {
    if ('error' in row) errors.push(row.error);
    else records.push(row);
  }
  return { records, errors };
}

describe.skipIf(!present)(`ml-100k at ${DIR} (skipped when absent: the dataset is not in the repo)`, () => {
  it('reads 100,000 ratings, 943 users and 1682 items without errors', async () => {
    const t0 = performance.now();
    const [ratings, users, items] = await Promise.all([count('u.data'), count('u.user'), count('u.item')]);
    const ms = performance.now() - t0;
    console.log(`ml-100k read in ${ms.toFixed(0)} ms (u.data + u.user + u.item)`);
    expect(ratings.errors).toEqual([]);
    expect(users.errors).toEqual([]);
    expect(items.errors).toEqual([]);
    expect(ratings.records).toHaveLength(100_000);
    expect(users.records).toHaveLength(943);
    expect(items.records).toHaveLength(1682);
    const events = ratings.records.map((r) => ('record' in r ? (r.record as Event) : undefined));
    expect(new Set(events.map((e) => e?.id)).size).toBe(100_000);
    expect(new Set(events.map((e) => e?.userId)).size).toBe(943);
    expect(new Set(events.map((e) => e?.itemId)).size).toBe(1682);
    // Timestamps in ms: the data was collected from September 1997 to April 1998.
    expect(events.every((e) => e !== undefined && e.timestamp >= Date.UTC(1997, 8, 1) && e.timestamp < Date.UTC(1998, 4, 1))).toBe(true);
  });
});
