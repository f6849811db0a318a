// The two-stage pipeline end to end on a synthetic world: trained in TypeScript, exported as a
// model directory, served from ONNX: the served recommendations are the trained pipeline's.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { writeModelDir } from '../../core/models/index.ts';
import { buildDataset, positiveRows, row, withRows } from '../../training/data/dataset.ts';
import type { Dataset } from '../../training/data/dataset.ts';
import { syntheticEvents } from '../../training/data/sessions.ts';
import { buildWorld } from '../../training/data/synthetic.ts';
import { distinctUserItems } from '../../training/eval/baselines/cooccurrence.ts';
import { fitMostPopular } from '../../training/eval/baselines/popular.ts';
import { evaluate } from '../../training/eval/evaluate.ts';
import { temporalSplit } from '../../training/eval/protocols.ts';
import { twoStageContents } from '../../training/pipeline/model-dir.ts';
import { ServedModel } from '../../training/pipeline/serve.ts';
import { trainTwoStage } from '../../training/pipeline/two-stage.ts';
import type { TwoStageModel } from '../../training/pipeline/two-stage.ts';

const WIDE_BUCKETS = 1 << 14;
let dir: string;
let dataset: Dataset;
let model: TwoStageModel;
let split: { train: Int32Array; test: Int32Array };

beforeAll(async () => {
  const world = buildWorld({ users: 300, items: 240, events: 30_000, clusters: 6, seed: 7 });
  dataset = buildDataset({ events: syntheticEvents(world), items: world.items, users: world.users });
  split = temporalSplit(dataset, { testFraction: 0.1 });
  model = trainTwoStage(dataset, split.train, {
    seed: 3, backend: await createWasmMatmul(), holdout: 'temporal', candidates: 40, wideBuckets: WIDE_BUCKETS,
    twoTower: { epochs: 4, batch: 256 }, ranker: { maxEpochs: 3 },
  });
  dir = await mkdtemp(join(tmpdir(), 'kestrel-pipeline-'));
  await writeModelDir(dir, twoStageContents(model, dataset, {
    metrics: { 'ndcg@10': 0.1 }, protocol: 'test', wideBuckets: WIDE_BUCKETS, source: { interactions: 'in-memory' },
  }));
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('two-stage pipeline', () => {
  it('ranks held-out interactions far better than popularity', () => {
    const result = evaluate(dataset, split, [model.pipeline, model.retrieval, fitMostPopular(dataset, split.train)], { k: 10 });
    const [pipeline, twoTower, popular] = result.results.map((r) => r.metrics.ndcg);
    // Measured (world seed 7, training seed 3, latest 10% per user held out): pipeline 0.151,
    // two-tower 0.180, most-popular 0.112. On this small drifting world the ranker does not add to
    // the two-tower (on ml-100k it does: README, "Quality"); both must stay clearly above popularity.
    expect(pipeline).toBeGreaterThan(1.25 * (popular ?? 1));
    expect(twoTower).toBeGreaterThan(1.4 * (popular ?? 1));
  });

  it('serves from the ONNX files the same recommendations the trained pipeline ranks', async () => {
    const served = await ServedModel.open(dir);
    try {
      // The model was trained on the train rows: serve it the same data, so histories and features agree.
      const trained = withRows(dataset, split.train);
      const histories = distinctUserItems(trained, positiveRows(trained));
      const users = dataset.userIds.slice(0, 40);
      const recs = await served.recommend(trained, users, 10, true);
      const scores = new Float32Array(dataset.itemIds.length);
      let compared = 0;
      users.forEach((id, r) => {
        const u = dataset.userIndex.get(id) ?? -1;
        model.pipeline.scoreUser(u, row(histories, u), scores);
        const rec = recs[r];
        expect(rec?.user).toBe(id);
        // The served score of each recommended item is the in-memory ranker's score (ONNX vs TS float32).
        rec?.items.forEach((itemId, j) => {
          const expected = scores[dataset.itemIndex.get(itemId) ?? -1] ?? Number.NaN;
          expect(Math.abs((rec.scores[j] ?? 0) - expected)).toBeLessThan(1e-3 * Math.max(1, Math.abs(expected)));
          compared++;
        });
        const seen = new Set(row(histories, u));
        for (const itemId of rec?.items ?? []) expect(seen.has(dataset.itemIndex.get(itemId) ?? -1)).toBe(false);
      });
      expect(compared).toBe(400);
    } finally {
      await served.close();
    }
  });

  it('adds logged impressions of the label period as ranker rows when the training rows have them', async () => {
    // The rows a user had before their held-out period, every type: impressions, clicks, skips...
    const from = new Map<number, number>();
    for (const r of split.test) {
      const u = dataset.interactions.user[r] ?? 0;
      from.set(u, Math.min(from.get(u) ?? Infinity, dataset.interactions.timestamp[r] ?? Infinity));
    }
    const rows: number[] = [];
    for (let r = 0; r < dataset.interactions.length; r++) {
      if ((dataset.interactions.timestamp[r] ?? 0) < (from.get(dataset.interactions.user[r] ?? 0) ?? Infinity)) rows.push(r);
    }
    const withImpressions = trainTwoStage(dataset, Int32Array.from(rows), {
      seed: 3, backend: await createWasmMatmul(), holdout: 'temporal', candidates: 40, wideBuckets: WIDE_BUCKETS,
      twoTower: { epochs: 2, batch: 256 }, ranker: { maxEpochs: 2 },
    });
    expect(model.report.impressionRows).toBe(0);
    expect(withImpressions.report.impressionRows).toBeGreaterThan(1000);
    expect(withImpressions.report.rankerRows).toBeGreaterThan(withImpressions.report.impressionRows);
  }, 60_000);

  it('gives a user the data has never seen the popular items instead of failing', async () => {
    const served = await ServedModel.open(dir);
    try {
      const [rec] = await served.recommend(dataset, ['nobody-at-all'], 5);
      expect(rec?.items).toHaveLength(5);
    } finally {
      await served.close();
    }
  });
});
