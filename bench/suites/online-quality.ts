// Relevance of the online engine, the way a user meets it. ml-100k is cut per user in time (the
// latest 20% of each user's ratings held out, as `kestrel evaluate --protocol temporal` and the
// quality suite's temporal row cut it); the rest
// is imported into a core's catalog and trained on with `kestrel train --from-bus`; then the
// serving engine answers every user with held-out items (what GET /v1/recommendations/{user}?n=10
// runs, in process) and the top 10 are scored against the held-out items with the evaluator's
// metrics (core/domain/metrics.ts, Microsoft Recommenders definitions; seen items excluded).
//
// Rows: the default engine (seven sources, RRF, ranker, MMR λ 0.85); the same without MMR (λ 1);
// the offline pipeline's candidate set (two-tower + item-item only, no MMR); and the anonymous
// answer (trending + popular + fresh) every user would get without a model.
//
// ml-100k is read from ../shared/datasets/ml-100k (or $KESTREL_ML100K); the core's data folder
// lives under the OS temp dir and is reused by later runs.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/main.ts';
import { DEFAULT_EVENT_TYPES } from '../../core/domain/event-types.ts';
import { rankingMetrics } from '../../core/domain/metrics.ts';
import type { RankingMetrics } from '../../core/domain/metrics.ts';
import { openRuntime } from '../../core/runtime.ts';
import { DEFAULT_ENGINE_CONFIG, ServingHost } from '../../core/serving/index.ts';
import type { EngineConfig } from '../../core/serving/index.ts';
import { row, userItems } from '../../training/data/dataset.ts';
import { loadDataset } from '../../training/data/load.ts';
import { temporalSplit } from '../../training/eval/protocols.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DATASET = resolve(process.env.KESTREL_ML100K ?? join(ROOT, '../shared/datasets/ml-100k'));
const DATA = join(tmpdir(), 'kestrel-bench-online-quality-ml100k');
const K = 10;

const OFFLINE_SOURCES = { 'two-tower': 100, 'item-item': 100, 'co-visitation': 0, content: 0, trending: 0, fresh: 0, popular: 0 };

const VARIANTS: { name: string; config: Partial<EngineConfig>; anonymous?: boolean }[] = [
  { name: 'engine (defaults)', config: {} },
  { name: 'engine, no MMR', config: { mmrLambda: 1 } },
  { name: 'two-tower + item-item sources only, no MMR', config: { quotas: OFFLINE_SOURCES, mmrLambda: 1 } },
  { name: 'anonymous answer (no personal signal)', config: { mmrLambda: 1 }, anonymous: true },
];

export const suite: BenchSuite = {
  description: 'ml-100k relevance of the online engine (temporal 20% holdout, top 10 per user)',
  async run(notes) {
    if (!existsSync(DATASET)) throw new Error(`no ml-100k at ${DATASET}: set KESTREL_ML100K to the folder holding u.data`);
    const { dataset } = await loadDataset({ interactions: join(DATASET, 'u.data'), items: join(DATASET, 'u.item'), users: join(DATASET, 'u.user') });
    const split = temporalSplit(dataset, { testFraction: 0.2 });
    const { interactions } = dataset;
    if (!existsSync(join(DATA, 'models', 'current.json'))) {
      // The training part as events, beside ml-100k's own item and user files.
      const folder = join(DATA, 'train-part');
      mkdirSync(folder, { recursive: true });
      const lines = Array.from(split.train, (r) => JSON.stringify({
        id: `r${r}`, type: 'rating', userId: dataset.userIds[interactions.user[r] ?? 0], itemId: dataset.itemIds[interactions.item[r] ?? 0],
        value: interactions.value[r], timestamp: interactions.timestamp[r],
      }));
      writeFileSync(join(folder, 'events.jsonl'), `${lines.join('\n')}\n`);
      for (const file of ['u.item', 'u.user', join(folder, 'events.jsonl')]) {
        const path = file.includes('/') ? file : join(DATASET, file);
        if ((await main(['import', '--data', DATA, path])) !== 0) throw new Error(`kestrel import ${path} failed`);
      }
      if ((await main(['train', '--from-bus', '--data', DATA, '--out', join(DATA, 'models')])) !== 0) throw new Error('kestrel train failed');
    }
    const test = userItems(dataset, split.test);
    const trained = userItems(dataset, split.train);
    const users: number[] = [];
    for (let u = 0; u < dataset.userIds.length; u++) if (row(test, u).length > 0) users.push(u);

    const runtime = await openRuntime({ dataDir: DATA, log: () => undefined, inlineProjector: true });
    const rows: BenchRow[] = [];
    try {
      for (const variant of VARIANTS) {
        const host = await ServingHost.open({
          registryRoot: join(DATA, 'models'), dataDir: DATA, interactions: runtime.catalog.interactions, eventTypes: DEFAULT_EVENT_TYPES,
          ranker: 'onnx', index: { kind: 'hnsw' }, config: { ...DEFAULT_ENGINE_CONFIG, sourceTimeoutMs: 10_000, ...variant.config },
          modelPollMs: 0, refreshMs: 0, log: () => undefined,
        });
        const engine = host.engine;
        if (engine === undefined) throw new Error(`no model in ${join(DATA, 'models')}`);
        const sum: RankingMetrics = { precision: 0, recall: 0, ndcg: 0, map: 0, hitRate: 0 };
        const t0 = performance.now();
        for (const u of users) {
          const id = variant.anonymous === true ? `anonymous-${u}` : (dataset.userIds[u] ?? '');
          const { response } = await engine.recommend(id, { n: K, requestId: `q${u}` });
          // The anonymous answer does not know the user's history: drop what they had seen, as the engine does for them.
          const seen = new Set(row(trained, u));
          const ranked = response.items.map((i) => dataset.itemIndex.get(i.id) ?? -1).filter((i) => i >= 0 && !seen.has(i));
          const m = rankingMetrics(ranked, new Set(row(test, u)), K);
          sum.precision += m.precision; sum.recall += m.recall; sum.ndcg += m.ndcg; sum.map += m.map; sum.hitRate += m.hitRate;
        }
        const ms = (performance.now() - t0) / users.length;
        await host.close();
        for (const metric of ['precision', 'recall', 'ndcg', 'map', 'hitRate'] as const) {
          rows.push({ name: variant.name, metric: `${metric}@${K}`, value: sum[metric] / users.length, unit: '' });
        }
        rows.push({ name: variant.name, metric: 'ms_per_user', value: ms, unit: 'ms' });
      }
    } finally {
      await runtime.close();
    }
    notes.dataset = `ml-100k (${DATASET}): ${split.train.length} training ratings imported into ${DATA}, ${split.test.length} held out (latest 20% per user), ${users.length} users scored`;
    notes.protocol = 'temporal holdout (as kestrel evaluate --protocol temporal); top 10 of the engine per user, items seen in training excluded; metrics as in core/domain/metrics.ts';
    notes.model = 'kestrel train --from-bus defaults (its own validation cuts the training part again)';
    return rows;
  },
};
