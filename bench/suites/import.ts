// `kestrel import` of ml-100k (issue 3, "Benchmarks"): the whole command as a user runs it, in a
// child process (start-up included), into a fresh temporary data folder each run: u.item,
// u.user, then 100,000 ratings validated, published to the embedded log and projected into
// SQLite before the command returns. Reads ../shared/datasets/ml-100k (or $KESTREL_ML100K); the
// dataset is never copied into the repo.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { quantile } from '../harness.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const RUNS = 3;
const EVENTS = 100_000;
const ROOT = resolve(import.meta.dirname, '../..');
const DATASET = resolve(process.env.KESTREL_ML100K ?? join(ROOT, '../shared/datasets/ml-100k'));

export const suite: BenchSuite = {
  description: `\`kestrel import\` of the ml-100k folder into a fresh data folder (${RUNS} runs, median)`,
  async run(notes) {
    if (!existsSync(join(DATASET, 'u.data'))) {
      notes.skipped = `no ml-100k at ${DATASET}: set KESTREL_ML100K to the folder`;
      return [];
    }
    Object.assign(notes, {
      dataset: `${DATASET} (u.item, u.user, u.data: 100,000 ratings)`,
      protocol: `node bin/kestrel.js import --data <fresh tmp> <ml-100k>, wall time of the process incl. Node start-up, ${RUNS} runs`,
    });
    const seconds: number[] = [];
    const root = await mkdtemp(join(tmpdir(), 'kestrel-bench-import-'));
    try {
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        execFileSync(process.execPath, [join(ROOT, 'bin/kestrel.js'), 'import', '--data', join(root, `run-${i}`), DATASET], { stdio: ['ignore', 'ignore', 'ignore'] });
        seconds.push((performance.now() - t0) / 1000);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    seconds.sort((a, b) => a - b);
    const median = quantile(seconds, 0.5);
    notes.runs_s = seconds.map((s) => s.toFixed(2)).join(', ');
    return [
      { name: 'ml-100k', metric: 'total_s', value: median, unit: 's' },
      { name: 'ml-100k', metric: 'events_per_s', value: EVENTS / median, unit: 'events/s' },
    ];
  },
};
