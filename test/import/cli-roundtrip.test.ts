// generate → import → export → import into a fresh data folder → export: the two exports are
// byte for byte the same, so export writes exactly what import reads back.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kestrel, storeCounts } from './cli-helpers.ts';
import { tempFolder } from './helpers.ts';

const tmp = tempFolder('cli-roundtrip');
const FILES = ['items.jsonl', 'users.jsonl', 'events.jsonl'];

describe('kestrel export', () => {
  it('round-trips through import: the second export equals the first', async () => {
    const [generated, first, second] = ['generated', 'export-1', 'export-2'].map((d) => join(tmp.dir, d)) as [string, string, string];
    const [dataA, dataB] = [join(tmp.dir, 'data-a'), join(tmp.dir, 'data-b')];
    expect((await kestrel('generate', '--users', '25', '--items', '30', '--events', '1500', '--clusters', '3', '--out', generated)).code).toBe(0);
    expect((await kestrel('import', '--data', dataA, generated)).code).toBe(0);

    const exported = await kestrel('export', '--data', dataA, '--out', first);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^Exported 30 items, 25 users, 1,500 events from /);
    // Events in time order.
    const events = readFileSync(join(first, 'events.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { timestamp: number });
    expect(events).toHaveLength(1_500);
    expect(events.every((e, i) => i === 0 || (events[i - 1] as { timestamp: number }).timestamp <= e.timestamp)).toBe(true);

    const reimported = await kestrel('import', '--data', dataB, first);
    expect(reimported.code, reimported.stderr).toBe(0);
    expect(reimported.stdout).toMatch(/^total +1,555 +1,555 +0 +0 /m);
    expect(storeCounts(dataB)).toEqual(storeCounts(dataA));
    expect((await kestrel('export', '--data', dataB, '--out', second)).code).toBe(0);
    for (const f of FILES) expect(readFileSync(join(second, f), 'utf8'), f).toBe(readFileSync(join(first, f), 'utf8'));
  });

  it('--kind writes only the kinds asked for', async () => {
    const data = join(tmp.dir, 'data-a');
    const out = join(tmp.dir, 'only-users');
    const run = await kestrel('export', '--data', data, '--out', out, '--kind', 'user');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Exported 25 users from /);
    expect(readFileSync(join(out, 'users.jsonl'), 'utf8').split('\n')[0]).toMatch(/^\{"id":"[^"]+","attributes":\{/);
  });

  it('a data folder without a catalog exits 1', async () => {
    const run = await kestrel('export', '--data', join(tmp.dir, 'empty'), '--out', join(tmp.dir, 'x'));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no data in');
  });
});
