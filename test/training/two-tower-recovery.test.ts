// The two-tower model, trained on what `kestrel generate` writes, recovers the structure the
// generator planted: users' taste clusters (far above what popularity explains), held-out
// accuracy above most-popular, and new items placed near their cluster from content alone.
// The run is deterministic (fixed seeds, WASM GEMM), so the thresholds guard against regressions,
// not noise; they sit below the lowest value measured over 15 runs (world seeds 7, 8, 11, 12, 13 ×
// training seeds 1, 2, 3), and each assertion says the spread and this seed's value.

import { beforeAll, describe, expect, it } from 'vitest';
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { buildDataset, row } from '../../training/data/dataset.ts';
import type { Dataset } from '../../training/data/dataset.ts';
import { syntheticEvents } from '../../training/data/sessions.ts';
import { buildWorld } from '../../training/data/synthetic.ts';
import type { SyntheticParams, World } from '../../training/data/synthetic.ts';
import { distinctUserItems, evaluate, fitMostPopular, temporalSplit, topK } from '../../training/eval/index.ts';
import type { Recommender } from '../../training/eval/index.ts';
import type { MatmulBackend } from '../../training/nn/index.ts';
import { trainTwoTower, twoTowerRecommender } from '../../training/two-tower/train.ts';
import type { TwoTowerResult } from '../../training/two-tower/train.ts';

/**
 * Small enough to train in seconds on two cores, large enough for the structure to show. More new
 * items than the default 5% so that the cold-start accuracy is measured over 45 items, not 15.
 */
const WORLD = { users: 400, items: 300, events: 35_000, clusters: 8, seed: 7, newItemShare: 0.15 };
const K = 10;
/** Each user's latest share of positives, held out for NDCG (the temporal protocol of training/eval). */
const TEST_FRACTION = 0.2;
/** The training rows' own latest share, for early stopping (as the two-stage pipeline does). */
const VALIDATION_FRACTION = 0.1;
/**
 * On this small world validation NDCG peaks at epoch 3–4 and falls after (the id embeddings
 * memorise 10k rows): early stopping picks the epoch, `patience` 2 keeps the run short.
 */
const TRAINING = { epochs: 10, patience: 2, seed: 1 };

interface Trained {
  world: World;
  dataset: Dataset;
  /** Positive rows the models saw (before the cutoff), and each user's held-out latest positives. */
  train: Int32Array;
  test: Int32Array;
  /** Planted cluster of each dataset item index. */
  itemCluster: Int32Array;
  /** World item / user number of each dataset item / user index. */
  plantedItem: Int32Array;
  plantedUser: Int32Array;
  result: TwoTowerResult;
}

function generate(params: Pick<SyntheticParams, 'users' | 'items' | 'events' | 'clusters' | 'seed' | 'newItemShare'>) {
  const world = buildWorld(params);
  const dataset = buildDataset({ events: syntheticEvents(world), items: world.items, users: world.users });
  const plantedItem = new Int32Array(dataset.itemIds.length).fill(-1);
  const plantedUser = new Int32Array(dataset.userIds.length).fill(-1);
  world.items.forEach((item, i) => plantedItem[dataset.itemIndex.get(item.id) ?? -1] = i);
  world.users.forEach((user, u) => plantedUser[dataset.userIndex.get(user.id) ?? -1] = u);
  const itemCluster = plantedItem.map((i) => world.itemCluster[i] ?? -1);
  return { world, dataset, itemCluster, plantedItem, plantedUser };
}

/**
 * Train = each user's earliest 80% of positives, cut at the new-item cutoff so that no new item
 * has a training row (they are embedded from content alone); test = each user's latest 20%.
 */
function trainOn(world: World, dataset: Dataset, backend: MatmulBackend, config: Record<string, number>): Pick<Trained, 'train' | 'test' | 'result'> {
  const split = temporalSplit(dataset, { testFraction: TEST_FRACTION });
  const time = dataset.interactions.timestamp;
  const train = split.train.filter((r) => (time[r] ?? Infinity) < world.cutoff);
  const folds = temporalSplit(dataset, { rows: train, testFraction: VALIDATION_FRACTION });
  const result = trainTwoTower(dataset, folds.train, { backend, config, validation: { rows: folds.test, k: K } });
  return { train, test: split.test, result };
}

/**
 * Mean over `users` of the share of their top-K (seen items excluded) that lies in `clusterOf(u)`:
 * "does the model recommend from the user's own cluster?".
 */
function clusterShare(t: Trained, recommender: Recommender, users: readonly number[], clusterOf: (u: number) => number): number {
  const n = t.dataset.itemIds.length;
  const histories = distinctUserItems(t.dataset, t.train);
  const scores = new Float32Array(n);
  const excluded = new Uint8Array(n);
  const top = new Int32Array(K);
  const heap = new Float32Array(K);
  let sum = 0;
  for (const u of users) {
    const history = row(histories, u);
    for (const i of history) excluded[i] = 1;
    scores.fill(0);
    recommender.scoreUser(u, history, scores);
    const count = topK(scores, K, excluded, top, heap);
    let hits = 0;
    for (let j = 0; j < count; j++) if (t.itemCluster[top[j] ?? 0] === clusterOf(u)) hits++;
    sum += hits / Math.max(count, 1);
    for (const i of history) excluded[i] = 0;
  }
  return sum / Math.max(users.length, 1);
}

/** Per planted cluster, the unit-length mean of the vectors of the items `include` picks. */
function centroids(vectors: Float32Array, dim: number, itemCluster: Int32Array, clusters: number, include: (i: number) => boolean): Float64Array {
  const out = new Float64Array(clusters * dim);
  for (let i = 0; i < itemCluster.length; i++) {
    const c = itemCluster[i] ?? -1;
    if (c < 0 || !include(i)) continue;
    for (let d = 0; d < dim; d++) out[c * dim + d] = (out[c * dim + d] ?? 0) + (vectors[i * dim + d] ?? 0);
  }
  for (let c = 0; c < clusters; c++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += (out[c * dim + d] ?? 0) ** 2;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let d = 0; d < dim; d++) out[c * dim + d] = (out[c * dim + d] ?? 0) * scale;
  }
  return out;
}

function nearest(centers: Float64Array, dim: number, vectors: Float32Array, i: number): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let c = 0; c * dim < centers.length; c++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += (centers[c * dim + d] ?? 0) * (vectors[i * dim + d] ?? 0);
    if (s > bestScore) {
      bestScore = s;
      best = c;
    }
  }
  return best;
}

describe('two-tower on the synthetic dataset: planted structure recovered', () => {
  let backend: MatmulBackend;
  let t: Trained;

  beforeAll(async () => {
    backend = await createWasmMatmul();
    const generated = generate(WORLD);
    t = { ...generated, ...trainOn(generated.world, generated.dataset, backend, TRAINING) };
  }, 120_000);

  it('stopped early at a validation peak, not at the last epoch', () => {
    // Measured: best epoch 4 of 6 run (3–6 over the 15 runs); validation NDCG@10 ≈ 0.15–0.20 at the peak.
    expect(t.result.bestEpoch).toBeGreaterThanOrEqual(2);
    expect(t.result.curve.length).toBeGreaterThan(t.result.bestEpoch);
  });

  it('recommends from users\' planted main cluster far more often than most-popular does', () => {
    // Drifting users (~22%) are left out: their main cluster changes at 30–70% of the window. The
    // model does not follow them: the share of their top 10 in the cluster they drifted to is
    // 0.09–0.16, below most-popular's 0.13–0.22, while 0.41–0.64 is still in the cluster they left.
    // The user tower has no notion of time (its history is a mean over the whole training history,
    // sampled in training from items before and after the target alike).
    const histories = distinctUserItems(t.dataset, t.train);
    const users: number[] = [];
    for (let u = 0; u < t.dataset.userIds.length; u++) {
      if (row(histories, u).length > 0 && (t.world.driftTo[t.plantedUser[u] ?? -1] ?? -1) < 0) users.push(u);
    }
    const main = (u: number) => t.world.main[t.plantedUser[u] ?? -1] ?? -1;
    expect(users.length).toBeGreaterThan(250); // measured 313 of 400 (310–325 over the seeds)
    const model = clusterShare(t, twoTowerRecommender(t.result.model), users, main);
    const popular = clusterShare(t, fitMostPopular(t.dataset, t.train), users, main);
    // Measured: model 0.687, most-popular 0.147 (4.7×). Over the 15 runs: model 0.53–0.74,
    // most-popular 0.15–0.25 (1/8 is chance; popular clusters lift it), ratio 2.5–4.7.
    expect(model).toBeGreaterThan(0.45);
    expect(model).toBeGreaterThan(2 * popular);
  });

  it('beats most-popular on NDCG@10 over each user\'s latest held-out positives', () => {
    const result = evaluate(t.dataset, { train: t.train, test: t.test }, [twoTowerRecommender(t.result.model), fitMostPopular(t.dataset, t.train)], { k: K });
    const [model, popular] = result.results.map((r) => r.metrics.ndcg);
    expect(result.users).toBeGreaterThan(300); // measured 373 (360–378 over the seeds)
    // Measured: model 0.194, most-popular 0.145 (1.34×). Over the 15 runs: model 0.16–0.22,
    // most-popular 0.10–0.15, ratio 1.15–2.02 (the low one stopped at epoch 6 of 8).
    expect(model ?? 0).toBeGreaterThan(1.1 * (popular ?? Infinity));
  });

  it('embeds new items, which have no training rows, near their planted cluster from content alone', () => {
    const { model } = t.result;
    const dim = model.config.dim;
    const vectors = model.embedItems();
    const isNew = (i: number) => t.world.isNew[t.plantedItem[i] ?? -1] === 1;
    const fresh = t.dataset.itemIds.map((_, i) => i).filter(isNew);
    expect(fresh).toHaveLength(45);
    // The premise: no new item had a training row, so each goes through the out-of-vocabulary id.
    expect(fresh.filter((i) => model.knownItems[i] === 1)).toEqual([]);
    const centers = centroids(vectors, dim, t.itemCluster, WORLD.clusters, (i) => !isNew(i) && model.knownItems[i] === 1);
    const correct = fresh.filter((i) => nearest(centers, dim, vectors, i) === t.itemCluster[i]).length;
    // Measured: 0.711 (32 of 45) nearest their own cluster's centroid; 0.49–0.93 over the 15 runs;
    // chance is 1/8. (Trained old items score 0.73–0.94 against the same centroids. With
    // itemIdDropout 0.3 instead of 0.1 the OOV path trains more: 0.73–0.96 on world 7.)
    expect(correct / fresh.length).toBeGreaterThan(0.35);
  });
});

describe('two-tower training is deterministic', () => {
  it('gives bitwise identical item embeddings for the same seeds, and different ones for another', async () => {
    const backend = await createWasmMatmul();
    const small = { users: 120, items: 100, events: 6_000, clusters: 4, seed: 3, newItemShare: 0.1 };
    const run = (seed: number) => {
      const { world, dataset } = generate(small);
      return trainOn(world, dataset, backend, { epochs: 2, patience: 2, seed, batch: 256 }).result.model.embedItems();
    };
    const a = run(5);
    const b = run(5);
    const c = run(6);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });
});
