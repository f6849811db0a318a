import { startCore } from '../../core/server.ts';
import type { RunningCore } from '../../core/server.ts';
import { checkOpenApi, loadApiKeys, loadEventTypes, openRuntime } from '../../core/runtime.ts';
import type { CoreRuntime, RuntimeConfig } from '../../core/runtime.ts';
import { existsSync, readFileSync } from 'node:fs';
import { parseEngineConfig } from '../../core/serving/index.ts';
import type { EngineConfig } from '../../core/serving/index.ts';
import { join, resolve } from 'node:path';
import { dataPaths } from '../../core/paths.ts';
import { parseCommandLine, parsePort, UsageError } from '../command.ts';
import type { Command } from '../command.ts';

const help = `Usage: kestrel serve [--models DIR] [--port 8080] [--host 127.0.0.1] [--data DIR] [--milvus ADDRESS]
                     [--kafka BROKERS] [--ranker onnx|wasm|webgpu] [--engine-threads N] [--api-keys FILE]
                     [--event-types FILE] [--ingest-threads N] [--served-retention-days N]

Runs the core: the REST API (/v1/items, /v1/users, /v1/events, /v1/openapi.json), /healthz,
/readyz and Prometheus metrics on /metrics, over the SQLite catalog and the event bus, with the
projector that feeds the catalog from the bus. With --models it also serves recommendations
(/v1/recommendations/{user}, /v1/candidates/{user}, /v1/items/{id}/similar, /v1/popular) from
the registry's current model, swapping in a newly promoted one without a restart. Runs until
interrupted (Ctrl-C), then stops the projector and closes the bus and the catalog.

Options:
      --port <port>       Port (default 8080; 0 picks a free one).
      --host <address>    Address to listen on (default 127.0.0.1).
      --data <dir>        Data folder: catalog.db, events/, spool/ (default $KESTREL_DATA_DIR or .kestrel).
      --models <dir>      Model registry folder (\`kestrel train --out\`); default <data>/models when it exists.
      --ranker <kind>     onnx (onnxruntime-node on the CPU, default), wasm (the WASM SIMD GEMM) or
                          webgpu (WGSL on the GPU through Dawn).
      --milvus <address>  Item vectors in Milvus (host:port) instead of the embedded HNSW index.
      --engine-threads <n>
                          Answer recommendations and slates on n worker threads, each with its own
                          engine (snapshot, sessions, in-memory index: n times the serving memory),
                          so requests use more than one core; default 0 (the main thread's engine).
      --serving-config <file>
                          Engine settings, JSON: per-source quotas and fusion weights, maxCandidates,
                          mmrLambda, freshnessWeight, consumedTypes, business rules (see README, "Serving").
      --ingest-threads <n>
                          Prepare POST /v1/events batches (JSON parse, validation, the log's
                          framing) on n worker threads, so concurrent batches use more than one
                          core; 0 does it on the main thread. Default: the cores, at most 4,
                          with the embedded log; 0 with --kafka (slower there on 2 cores).
      --served-retention-days <n>
                          Days the served-features log (<data>/served/, the features each
                          recommendation was ranked with, ~4 KB a request) keeps a record: a
                          day's file is deleted once its last record is n days old. Default 7;
                          0 keeps it for ever.
      --kafka <brokers>   Publish events to Kafka (host:port,...) instead of the embedded log.
      --topic <name>      Kafka topic (default events).
      --event-types <file>
                          Interaction types and their training weights, JSON
                          { "eventTypes": [{ "name": "view", "weight": 1 }, ...] } (default
                          $KESTREL_EVENT_TYPES, else the built-in set; see README, "Event types").
      --api-keys <file>   API keys, JSON { "keys": [{ "key", "scopes": ["read","write"], "name" }] }
                          (default $KESTREL_API_KEYS). Without keys the API is open, which is
                          allowed on loopback only.
  -h, --help              Show this help.`;

export interface CoreConfigFlags {
  port: number;
  host: string;
  data?: string;
  kafka?: string;
  topic?: string;
  apiKeys?: string;
  eventTypes?: string;
  models?: string;
  ranker?: string;
  milvus?: string;
  servingConfig?: string;
  engineThreads?: string;
  ingestThreads?: string;
  servedRetentionDays?: string;
}

/** Days the served-features log keeps records when no --served-retention-days is given. */
export const DEFAULT_SERVED_RETENTION_DAYS = 7;

/** Opens the runtime and starts the core's HTTP server on it; closes what it opened on failure. */
export async function startFullCore(flags: CoreConfigFlags, log: (line: string) => void = console.error): Promise<{ core: RunningCore; runtime: CoreRuntime; close(): Promise<void> }> {
  const apiKeys = loadApiKeys(flags.apiKeys);
  checkOpenApi(apiKeys, flags.host, log);
  const brokers = flags.kafka?.split(',').map((b) => b.trim()).filter((b) => b !== '');
  if (brokers !== undefined && brokers.length === 0) throw new UsageError('--kafka needs host:port[,host:port...]');
  let ingestThreads: number | undefined;
  if (flags.ingestThreads !== undefined) {
    ingestThreads = Number(flags.ingestThreads);
    if (!/^\d+$/.test(flags.ingestThreads) || ingestThreads > 64) throw new UsageError(`--ingest-threads must be a whole number from 0 to 64, not '${flags.ingestThreads}'`);
  }
  const runtime = await openRuntime({
    ...(ingestThreads === undefined ? {} : { ingestThreads }),
    dataDir: flags.data,
    kafka: brokers === undefined ? undefined : { brokers, topic: flags.topic },
    eventTypes: loadEventTypes(flags.eventTypes),
    log,
    ...servingConfig(flags),
  });
  // The ingest threads load meanwhile (they would otherwise start with the first batch, and load
  // while the first batches are served on the event loop).
  void runtime.services.ingest?.whenReady();
  let core: RunningCore;
  try {
    core = await startCore({
      port: flags.port, host: flags.host, version: process.env.npm_package_version ?? 'dev',
      services: runtime.services, readiness: runtime.readiness, apiKeys, log,
      metrics: runtime.metrics,
    });
  } catch (error) {
    await runtime.close();
    throw error;
  }
  return {
    core,
    runtime,
    async close() {
      try {
        await core.close();
      } finally {
        await runtime.close();
      }
    },
  };
}

/** The serving part of the runtime config: --models, or <data>/models when it exists. */
export function servingConfig(flags: CoreConfigFlags): Pick<RuntimeConfig, 'serving'> {
  if (flags.ranker !== undefined && flags.ranker !== 'onnx' && flags.ranker !== 'webgpu' && flags.ranker !== 'wasm') throw new UsageError(`--ranker must be onnx, wasm or webgpu, not '${flags.ranker}'`);
  const models = flags.models ?? join(dataPaths(flags.data).dir, 'models');
  if (flags.models === undefined && !existsSync(models)) {
    if (flags.ranker !== undefined || flags.milvus !== undefined || flags.servingConfig !== undefined || flags.engineThreads !== undefined || flags.servedRetentionDays !== undefined) {
      throw new UsageError(`--ranker, --milvus, --serving-config, --engine-threads and --served-retention-days need a model registry: pass --models DIR (no ${models})`);
    }
    return {};
  }
  let engine: Partial<EngineConfig> | undefined;
  if (flags.servingConfig !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.servingConfig, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read --serving-config ${flags.servingConfig}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      engine = parseEngineConfig(JSON.parse(text), flags.servingConfig);
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  }
  let engineThreads: number | undefined;
  if (flags.engineThreads !== undefined) {
    engineThreads = Number(flags.engineThreads);
    if (!/^\d+$/.test(flags.engineThreads) || engineThreads > 64) throw new UsageError(`--engine-threads must be a whole number from 0 to 64, not '${flags.engineThreads}'`);
  }
  let retentionDays = DEFAULT_SERVED_RETENTION_DAYS;
  if (flags.servedRetentionDays !== undefined) {
    retentionDays = Number(flags.servedRetentionDays);
    if (!/^\d+$/.test(flags.servedRetentionDays) || retentionDays > 36_500) {
      throw new UsageError(`--served-retention-days must be a whole number of days (0 keeps the log for ever), not '${flags.servedRetentionDays}'`);
    }
  }
  return {
    serving: {
      models: resolve(models), ...(flags.ranker ? { ranker: flags.ranker } : {}), ...(flags.milvus ? { milvus: flags.milvus } : {}), ...(engine ? { engine } : {}),
      ...(engineThreads !== undefined ? { engineThreads } : {}),
      ...(retentionDays > 0 ? { featureLogRetentionDays: retentionDays } : {}),
    },
  };
}

/** Resolves with exit code 0 on SIGINT/SIGTERM, after `stop` ran. */
export function untilSignal(stop: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) return;
      stopping = true;
      stop().then(() => resolve(0), (error: unknown) => {
        console.error(`kestrel: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        resolve(1);
      });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run the core (REST API, catalog, event bus) on this machine',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      kafka: { type: 'string' },
      topic: { type: 'string' },
      'api-keys': { type: 'string' },
      'event-types': { type: 'string' },
      models: { type: 'string' },
      ranker: { type: 'string' },
      milvus: { type: 'string' },
      'serving-config': { type: 'string' },
      'engine-threads': { type: 'string' },
      'ingest-threads': { type: 'string' },
      'served-retention-days': { type: 'string' },
    }, false);
    const running = await startFullCore({
      port: parsePort(values.port, 8080, '--port'),
      host: values.host ?? '127.0.0.1',
      data: values.data,
      kafka: values.kafka,
      topic: values.topic,
      apiKeys: values['api-keys'],
      eventTypes: values['event-types'],
      models: values.models,
      ranker: values.ranker,
      milvus: values.milvus,
      servingConfig: values['serving-config'],
      engineThreads: values['engine-threads'],
      ingestThreads: values['ingest-threads'],
      servedRetentionDays: values['served-retention-days'],
    });
    console.log([
      `Kestrel core listening on ${running.core.url} (${running.runtime.describe})`,
      `  GET ${running.core.url}/healthz, /readyz, /v1/openapi.json`,
      'Press Ctrl-C to stop.',
    ].join('\n'));
    return untilSignal(() => running.close());
  },
};
