// `kestrel import` of the real ml-100k folder (../shared/datasets/ml-100k from the repo root;
// never copied into the repo, its licence forbids redistribution).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kestrel, storeCounts } from './cli-helpers.ts';
import { tempFolder } from './helpers.ts';

const DIR = resolve(import.meta.dirname, '../../../shared/datasets/ml-100k');
const present = existsSync(join(DIR, 'u.data'));
const tmp = tempFolder('cli-ml100k');

describe.skipIf(!present)(`kestrel import of ml-100k at ${DIR} (skipped when absent: the dataset is not in the repo)`, () => {
  it('the folder gives 100,000 events, 943 users and 1,682 items', { timeout: 120_000 }, async () => {
    const data = join(tmp.dir, 'data');
    const t0 = performance.now();
    const run = await kestrel('import', '--data', data, DIR);
    console.log(`kestrel import ml-100k: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^u\.data +ml-100k-ratings \(events\) +100,000 +100,000 +0 +0 /m);
    expect(run.stdout).toMatch(/^u\.user +ml-100k-users \(users\) +943 +943 +0 +0 /m);
    // Publish times may predate 1970 (173 of these films do); every film is imported whole.
    expect(run.stdout).toMatch(/^u\.item +ml-100k-items \(items\) +1,682 +1,682 +0 +0 /m);
    expect(storeCounts(data)).toEqual({ items: 1_682, stubs: 0, users: 943, interactions: 100_000 });
  });
});
