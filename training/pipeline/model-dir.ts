// A trained two-stage model as a model directory (core/models): the three ONNX networks, the item
// embeddings of the whole catalog, the vocabularies that map ids and feature names to rows, the
// co-visitation weights, and pipeline.json (candidate counts, score weights, where the training
// data came from) — everything `kestrel recommend` and the core need to serve it.

import type { BagInputSpec, FeatureSpec, ModelDirContents, NetworkInputSpec } from '../../core/models/index.ts';
import type { Dataset, DatasetVocabularies } from '../data/dataset.ts';
import { vocabulariesOf } from '../data/dataset.ts';
import type { TrainingSource } from '../data/training-source.ts';
import { DENSE_FEATURES } from '../features/feature-state.ts';
import type { NetworkSpec } from '../models/spec.ts';
import { exportNetwork } from '../onnx/network.ts';
import type { ObjectiveWeights } from '../ranker/objectives.ts';
import { RANKER_INPUTS } from '../ranker/inputs.ts';
import { BAG } from '../two-tower/inputs.ts';
import type { TowerInputSpec } from '../two-tower/inputs.ts';
import type { TwoStageModel } from './two-stage.ts';

export const PIPELINE_FILE = 'pipeline.json';
export const CO_VISITATION_FILE = 'co_visitation.f32';

export type { TrainingSource } from '../data/training-source.ts';

/** pipeline.json: what serving needs beyond the networks. */
export interface PipelineConfig {
  candidates: number;
  coVisitation: 'ease' | 'item-knn';
  /** Global item indexes of the co-visitation matrix's rows/columns (co_visitation.f32 is n × n). */
  coVisitationItems: number[];
  wideBuckets: number;
  scoreWeights: ObjectiveWeights;
  towerInputs: TowerInputSpec;
  source: TrainingSource;
}

const VOCABULARY = { users: 'users', items: 'items', itemFeatures: 'itemFeatures', userFeatures: 'userFeatures', categories: 'categories' } as const;

export interface ModelDirInfo {
  metrics: Record<string, number>;
  protocol: string;
  source: TrainingSource;
  wideBuckets: number;
}

export function twoStageContents(model: TwoStageModel, dataset: Dataset, info: ModelDirInfo): ModelDirContents {
  const towers = model.twoTower.toSpecs();
  const ranker = model.ranker.toSpec();
  const vocab = vocabulariesOf(dataset);
  const { timestamp, length } = dataset.interactions;
  const pipeline: PipelineConfig = {
    candidates: model.candidates,
    coVisitation: model.coVisitation,
    coVisitationItems: Array.from(model.generator.coVisitation.subset.items),
    wideBuckets: info.wideBuckets,
    scoreWeights: { ...model.ranker.scoreWeights },
    towerInputs: model.twoTower.inputs,
    source: info.source,
  };
  const featureSpec: FeatureSpec = {
    userTower: inputSpec(towers.user, { [BAG.userId]: VOCABULARY.users, [BAG.history]: VOCABULARY.items, [BAG.userFeatures]: VOCABULARY.userFeatures }),
    itemTower: inputSpec(towers.item, { [BAG.itemId]: VOCABULARY.items, [BAG.itemFeatures]: VOCABULARY.itemFeatures }),
    ranker: inputSpec(ranker, {
      [RANKER_INPUTS.user]: VOCABULARY.users, [RANKER_INPUTS.item]: VOCABULARY.items,
      [RANKER_INPUTS.categories]: VOCABULARY.categories, [RANKER_INPUTS.userFeatures]: VOCABULARY.userFeatures,
    }, [...DENSE_FEATURES]),
  };
  const weights = model.generator.coVisitation.weights;
  return {
    manifest: {
      createdAt: Date.now(),
      dataWindow: { from: length > 0 ? (timestamp[0] ?? 0) : 0, to: length > 0 ? (timestamp[length - 1] ?? 0) + 1 : 0 },
      dims: { embedding: model.twoTower.config.dim, items: dataset.itemIds.length, rankerOutputs: 2 },
      featureSpec,
      metrics: info.metrics,
      protocol: info.protocol,
    },
    userTower: exportNetwork(towers.user, { graphName: 'user_tower' }),
    itemTower: exportNetwork(towers.item, { graphName: 'item_tower' }),
    ranker: exportNetwork(ranker, { graphName: 'ranker' }),
    itemEmbeddings: model.generator.itemVectors,
    itemIds: dataset.itemIds,
    vocabularies: {
      [VOCABULARY.users]: vocab.userIds, [VOCABULARY.items]: vocab.itemIds, [VOCABULARY.itemFeatures]: vocab.itemFeatureNames,
      [VOCABULARY.userFeatures]: vocab.userFeatureNames, [VOCABULARY.categories]: vocab.categoryNames,
    },
    extraFiles: {
      [PIPELINE_FILE]: new TextEncoder().encode(`${JSON.stringify(pipeline, null, 2)}\n`),
      [CO_VISITATION_FILE]: new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength),
    },
  };
}

/** The dataset vocabularies stored in a model directory. */
export function modelVocabularies(vocabularies: Readonly<Record<string, readonly string[]>>): DatasetVocabularies {
  const get = (name: string): readonly string[] => {
    const v = vocabularies[name];
    if (!v) throw new Error(`the model's vocabularies.json lacks '${name}'; retrain the model with this version of Kestrel`);
    return v;
  };
  return {
    userIds: get(VOCABULARY.users), itemIds: get(VOCABULARY.items), itemFeatureNames: get(VOCABULARY.itemFeatures),
    userFeatureNames: get(VOCABULARY.userFeatures), categoryNames: get(VOCABULARY.categories),
  };
}

function inputSpec(spec: NetworkSpec, vocabularies: Record<string, string>, denseFeatures?: string[]): NetworkInputSpec {
  const bag = (b: NetworkSpec['bags'][number]): BagInputSpec => {
    const vocabulary = vocabularies[b.name];
    return { name: b.name, rows: b.rows, mode: b.mode, ...(vocabulary ? { vocabulary } : {}) };
  };
  return {
    bags: spec.bags.map(bag),
    ...(spec.dense && denseFeatures ? { dense: { name: spec.dense.name, features: denseFeatures } } : {}),
    ...(spec.wide ? { wide: bag(spec.wide) } : {}),
    output: spec.outputName,
  };
}
