// Batch recommendations from a model directory: the user tower and the ranker run on
// onnxruntime-node from the exported ONNX files, the item embeddings and co-visitation weights are
// read from the directory, and histories and ranker features come from the interactions given.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelDir } from '../../core/models/index.ts';
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { readModelDir } from '../../core/models/index.ts';
import { createNodeSession } from '../../core/ranking/onnx-session.ts';
import type { OnnxSession } from '../../core/ranking/onnx-session.ts';
import { belowCsr, positiveRows, row, withRows } from '../data/dataset.ts';
import type { Csr, Dataset } from '../data/dataset.ts';
import { loadSource } from '../data/training-source.ts';
import type { LoadReport } from '../data/load.ts';
import { distinctUserItems } from '../eval/baselines/cooccurrence.ts';
import { topK } from '../eval/evaluate.ts';
import { DENSE_SIZE } from '../features/feature-state.ts';
import { networkFeeds } from '../onnx/network.ts';
import { candidateRows, InputBuilder, RANKER_INPUTS, RANKER_OUTPUT } from '../ranker/inputs.ts';
import { combineLogits } from '../ranker/objectives.ts';
import { UserInputs } from '../two-tower/inputs.ts';
import { CO_VISITATION_FILE, modelVocabularies, PIPELINE_FILE } from './model-dir.ts';
import type { PipelineConfig } from './model-dir.ts';
import type { TrainingSource } from '../data/training-source.ts';
import { CandidateGenerator } from './two-stage.ts';

export interface Recommendation {
  user: string;
  items: string[];
  scores: number[];
}

export class ServedModel {
  private constructor(
    readonly model: ModelDir,
    readonly pipeline: PipelineConfig,
    private readonly userTower: OnnxSession,
    private readonly ranker: OnnxSession,
    private readonly coVisitation: Float32Array,
  ) {}

  static async open(dir: string): Promise<ServedModel> {
    const model = await readModelDir(dir);
    if (!model.ranker) throw new Error(`${dir} has no ranker.onnx: it is not a two-stage model`);
    const pipeline = JSON.parse(await readFile(join(dir, PIPELINE_FILE), 'utf8')) as PipelineConfig;
    const bytes = await readFile(join(dir, CO_VISITATION_FILE));
    const coVisitation = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const n = pipeline.coVisitationItems.length;
    if (coVisitation.length !== n * n) throw new Error(`${dir}/${CO_VISITATION_FILE} holds ${coVisitation.length} weights, ${n} × ${n} expected`);
    const userTower = await createNodeSession(model.userTower);
    const ranker = await createNodeSession(model.ranker);
    return new ServedModel(model, pipeline, userTower, ranker, coVisitation);
  }

  /** The training data this model was trained on, re-read with the model's index spaces. */
  async loadData(source: TrainingSource = this.pipeline.source): Promise<{ dataset: Dataset; report: LoadReport }> {
    return loadSource(source, { vocabularies: modelVocabularies(this.model.vocabularies) });
  }

  /**
   * Top `k` items for each user id, from the histories and features in `dataset` (built with
   * `loadData`). Users the data does not know get the cold-start user vector and popular items.
   */
  async recommend(dataset: Dataset, userIds: readonly string[], k: number, excludeSeen = true, batch = 256): Promise<Recommendation[]> {
    const { pipeline, model } = this;
    const positives = positiveRows(dataset);
    const histories = distinctUserItems(dataset, positives);
    const n = model.itemIds.length;
    const dim = model.manifest.dims.embedding;
    const subset = { items: Int32Array.from(pipeline.coVisitationItems), local: new Int32Array(dataset.itemIds.length).fill(-1) };
    subset.items.forEach((item, l) => (subset.local[item] = l));
    const generator = new CandidateGenerator(model.itemEmbeddings, dim, { subset, weights: this.coVisitation }, await createWasmMatmul());
    const features = generator.features(withRows(dataset, positives), pipeline.wideBuckets);
    // The ranker's tables have the model's rows: ids new since training go to its OOV rows, and new
    // categories or user features are left out.
    const vocab = modelVocabularies(model.vocabularies);
    const builder = new InputBuilder({
      users: vocab.userIds.length, items: vocab.itemIds.length, categories: vocab.categoryNames.length, userFeatures: vocab.userFeatureNames.length,
      itemCategories: belowCsr(dataset.itemCategories, vocab.categoryNames.length),
      userFeatureRows: belowCsr(dataset.userFeatures, vocab.userFeatureNames.length),
    });
    const popular = popularItems(dataset, positives, n, k);
    const out: Recommendation[] = new Array<Recommendation>(userIds.length);
    for (let start = 0; start < userIds.length; start += batch) {
      const slots: number[] = [];
      const ids: string[] = [];
      for (let at = start; at < Math.min(userIds.length, start + batch); at++) {
        const id = userIds[at] ?? '';
        if (dataset.userIndex.has(id)) {
          slots.push(at);
          ids.push(id);
        } else {
          // A user the data has never seen has no history and no features: the popular items.
          out[at] = { user: id, items: popular.map((i) => model.itemIds[i] ?? ''), scores: popular.map(() => 0) };
        }
      }
      if (ids.length === 0) continue;
      const users = Int32Array.from(ids, (id) => dataset.userIndex.get(id) ?? 0);
      const userHistories = Array.from(users, (u) => row(histories, u));
      const inputs = new UserInputs(dataset, pipeline.towerInputs, ids.length).fill(users, userHistories);
      const vectors = (await this.userTower.run(networkFeeds(inputs)))[model.manifest.featureSpec.userTower.output];
      if (!vectors) throw new Error('the user tower returned no output');
      // Stage one for the whole batch at once (one pass over the item vectors), then each user's ranking.
      const retrieved = generator.retrieveMany(
        userHistories.map((h) => (excludeSeen ? h : new Int32Array(0))), vectors.subarray(0, ids.length * dim), pipeline.candidates,
      );
      for (let r = 0; r < ids.length; r++) {
        const u = users[r] ?? 0;
        const { items: candidates, tt, cv } = retrieved[r] ?? { items: new Int32Array(0), tt: new Float32Array(0), cv: new Float32Array(0) };
        generator.setScores(u, candidates, tt, cv);
        const rows = candidateRows(features, u, candidates);
        const order = Int32Array.from({ length: rows.length }, (_, j) => j);
        const logits = rows.length === 0 ? new Float32Array(0) : (await this.ranker.run(networkFeeds(builder.build(rows, order, 0, rows.length), { name: RANKER_INPUTS.dense, size: DENSE_SIZE })))[RANKER_OUTPUT];
        if (!logits) throw new Error('the ranker returned no output');
        const combined = combineLogits(logits, pipeline.scoreWeights);
        // Best first, ties to the lower item index (topK's order), the candidates only.
        const best = Array.from(candidates.keys())
          .sort((a, b) => (combined[b] ?? 0) - (combined[a] ?? 0) || (candidates[a] ?? 0) - (candidates[b] ?? 0))
          .slice(0, k);
        out[slots[r] ?? 0] = {
          user: ids[r] ?? '',
          items: best.map((j) => model.itemIds[candidates[j] ?? 0] ?? dataset.itemIds[candidates[j] ?? 0] ?? ''),
          scores: best.map((j) => Math.round((combined[j] ?? 0) * 1e6) / 1e6),
        };
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.userTower.release();
    await this.ranker.release();
  }
}


/** The `k` items (of the model's `n`) with the most positive interactions. */
function popularItems(dataset: Dataset, rows: Int32Array, n: number, k: number): number[] {
  const counts = new Float32Array(n);
  for (const r of rows) {
    const i = dataset.interactions.item[r] ?? 0;
    if (i < n) counts[i] = (counts[i] ?? 0) + 1;
  }
  const top = new Int32Array(k);
  const count = topK(counts, k, new Uint8Array(n), top, new Float32Array(k));
  return Array.from(top.subarray(0, count));
}
