// Serving, assembled from config: the model host (hot-swap, catalog refresh), the served-features
// log, and the Prometheus metrics the engine reports its stages to (registered on the core's
// registry, core/runtime.ts). core/runtime.ts opens it when `kestrel serve` is given a model registry.

import { join } from 'node:path';
import type { ServingServices } from '../api/routes/recommendations.ts';
import type { ErasureHook } from '../catalog/erase.ts';
import type { InteractionStore } from '../catalog/ports.ts';
import type { EventTypeConfig } from '../domain/event-types.ts';
import type { RankerKind } from '../ranking/ranker.ts';
import { DEFAULT_ENGINE_CONFIG } from './engine.ts';
import { parseBusinessRules } from '../domain/rules.ts';
import type { EngineConfig, StageTimer } from './engine.ts';
import { EnginePool } from './engine-pool.ts';
import { FeatureLog } from './feature-log.ts';
import { dataPaths } from '../paths.ts';
import { ServingHost } from './host.ts';
import type { IndexChoice } from './host.ts';
import type { MetricsRegistry } from './metrics.ts';

export { DEFAULT_ENGINE_CONFIG, ServingEngine } from './engine.ts';
export type { EngineConfig, RecommendResponse } from './engine.ts';
export { ServingHost } from './host.ts';
export type { IndexChoice, ServingStatus } from './host.ts';

/**
 * The engine settings of a `--serving-config FILE`: `{ "quotas": { "two-tower": 400, ... },
 * "fusionWeights": { ... }, "maxCandidates": 1000, "mmrLambda": 0.85, "freshnessWeight": 0,
 * "sourceTimeoutMs": 50, "consumedTypes": ["purchase", ...], "slateTtlSeconds": 300,
 * "rules": { "pin": [...], "boost": [...], "bury": [...], "maxPerCategory": 3 } }`; every field optional.
 */
export function parseEngineConfig(json: unknown, source: string): Partial<EngineConfig> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: expected a JSON object of engine settings`);
  const input = json as Record<string, unknown>;
  const out: Partial<EngineConfig> = {};
  const known = new Set([...Object.keys(DEFAULT_ENGINE_CONFIG), 'consumedTypes', 'exactScoresUpTo']);
  for (const key of Object.keys(input)) if (!known.has(key)) throw new Error(`${source}: '${key}' is not an engine setting; known: ${[...known].join(', ')}`);
  const numberMap = (key: 'quotas' | 'fusionWeights') => {
    const value = input[key];
    if (value === undefined) return;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${source}: ${key} must be an object of source name → number`);
    for (const [name, v] of Object.entries(value)) {
      if (typeof v !== 'number' || !(v >= 0)) throw new Error(`${source}: ${key}.${name} must be a number ≥ 0`);
    }
    out[key] = { ...DEFAULT_ENGINE_CONFIG[key], ...(value as Record<string, number>) };
  };
  numberMap('quotas');
  numberMap('fusionWeights');
  const num = (key: 'sourceTimeoutMs' | 'fusionK' | 'maxCandidates' | 'mmrLambda' | 'freshnessWeight' | 'slateTtlSeconds' | 'exactScoresUpTo', min: number, max: number) => {
    const value = input[key];
    if (value === undefined) return;
    if (typeof value !== 'number' || !(value >= min && value <= max)) throw new Error(`${source}: ${key} must be a number from ${min} to ${max}`);
    out[key] = value;
  };
  if (input.fusion !== undefined) {
    if (input.fusion !== 'rrf' && input.fusion !== 'quota') throw new Error(`${source}: fusion must be 'rrf' or 'quota'`);
    out.fusion = input.fusion;
  }
  num('sourceTimeoutMs', 1, 60_000);
  num('fusionK', 1e-6, 1e6);
  num('maxCandidates', 1, 100_000);
  num('mmrLambda', 0, 1);
  num('freshnessWeight', -1e6, 1e6);
  num('slateTtlSeconds', 1, 86_400 * 7);
  num('exactScoresUpTo', 0, 1e9);
  if (input.consumedTypes !== undefined) {
    if (!Array.isArray(input.consumedTypes) || !input.consumedTypes.every((t) => typeof t === 'string')) throw new Error(`${source}: consumedTypes must be an array of event type names`);
    out.consumedTypes = input.consumedTypes as string[];
  }
  if (input.rules !== undefined) out.rules = parseBusinessRules(input.rules);
  return out;
}

export interface ServingConfig {
  /** The model registry folder (`kestrel train --out`). */
  models: string;
  /** Default 'onnx'. */
  ranker?: RankerKind;
  /** Milvus address (host:port); the embedded HNSW index when absent. */
  milvus?: string;
  engine?: Partial<EngineConfig>;
  modelPollMs?: number;
  refreshMs?: number;
  /** Write the served-features log under <dataDir>/served. Default true. */
  featureLog?: boolean;
  /** Days the served-features log keeps a record at least (FeatureLogOptions.retentionDays). Default: for ever. */
  featureLogRetentionDays?: number;
  /**
   * Engine threads that answer recommendations and slates beside the main thread (engine-pool.ts):
   * each holds its own snapshot, sessions and in-memory index. Default 0: the main thread's engine.
   */
  engineThreads?: number;
}

export interface Serving {
  services: ServingServices;
  /** What serving holds of a user, removed on erasure (DELETE /v1/users/{id}), by name. */
  erasureHooks: Record<string, ErasureHook>;
  /** Brings the gauges it registered (model version, snapshot size) up to date; call before rendering the registry. */
  refreshMetrics(): void;
  host: ServingHost;
  close(): Promise<void>;
}

export async function openServing(config: ServingConfig, deps: {
  dataDir: string;
  interactions: InteractionStore;
  eventTypes: readonly EventTypeConfig[];
  log: (line: string) => void;
  /** Where serving registers its metrics (the core's /metrics). */
  registry: MetricsRegistry;
}): Promise<Serving> {
  const { registry } = deps;
  const stages = registry.histogram('kestrel_stage_duration_seconds', 'Time per serving stage (history, user-tower, retrieval:<source>, fusion, features, ranking, reranking, total)', ['stage']);
  const candidates = registry.counter('kestrel_retrieval_candidates_total', 'Candidates returned per retrieval source', ['source']);
  const errors = registry.counter('kestrel_retrieval_errors_total', 'Retrieval sources that failed or timed out', ['source']);
  const model = registry.gauge('kestrel_model_info', 'The model version serving (value 1)', ['version']);
  const snapshotItems = registry.gauge('kestrel_snapshot_items', 'Items in the serving snapshot', []);
  const timer: StageTimer = {
    stage: (stage, seconds) => stages.observe({ stage }, seconds),
    candidates: (source, count) => candidates.inc({ source }, count),
    sourceError: (source) => errors.inc({ source }),
  };
  const index: IndexChoice = config.milvus === undefined ? { kind: 'hnsw' } : { kind: 'milvus', address: config.milvus };
  const host = await ServingHost.open({
    registryRoot: config.models, dataDir: deps.dataDir, interactions: deps.interactions, eventTypes: deps.eventTypes,
    ranker: config.ranker ?? 'onnx', index, config: { ...DEFAULT_ENGINE_CONFIG, ...config.engine }, timer, log: deps.log,
    ...(config.modelPollMs !== undefined ? { modelPollMs: config.modelPollMs } : {}),
    ...(config.refreshMs !== undefined ? { refreshMs: config.refreshMs } : {}),
  });
  const featureLog = config.featureLog === false ? undefined : new FeatureLog({
    dir: join(deps.dataDir, 'served'), log: deps.log,
    ...(config.featureLogRetentionDays !== undefined ? { retentionDays: config.featureLogRetentionDays } : {}),
  });
  const threads = config.engineThreads ?? 0;
  if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`engineThreads must be a whole number ≥ 0, got ${threads}`);
  // Started once the main host has loaded (and, as the index's owner, filled) the current model.
  const pool = threads === 0 ? undefined : new EnginePool({
    registryRoot: config.models, dataDir: deps.dataDir, catalogPath: dataPaths(deps.dataDir).catalog, eventTypes: deps.eventTypes,
    ranker: config.ranker ?? 'onnx', index, config: { ...DEFAULT_ENGINE_CONFIG, ...config.engine },
    ...(config.modelPollMs !== undefined ? { modelPollMs: config.modelPollMs } : {}),
    ...(config.refreshMs !== undefined ? { refreshMs: config.refreshMs } : {}),
  }, threads, timer, deps.log);
  let shown: string | undefined;
  return {
    services: { host, ...(featureLog ? { featureLog } : {}), ...(pool ? { pool } : {}) },
    erasureHooks: {
      servingSnapshot: async (userId) => {
        const at = Date.now();
        pool?.eraseUser(userId, at);
        return host.eraseUser(userId, at);
      },
      ...(featureLog ? { servedFeatureLog: (userId: string) => featureLog.eraseUser(userId) } : {}),
    },
    host,
    refreshMetrics() {
      const status = host.status();
      if (status.version !== shown) {
        if (shown !== undefined) model.set({ version: shown }, 0);
        if (status.version !== undefined) model.set({ version: status.version }, 1);
        shown = status.version;
      }
      snapshotItems.set({}, status.snapshot?.items ?? 0);
    },
    async close() {
      await pool?.close();
      await host.close();
      await featureLog?.close();
    },
  };
}
