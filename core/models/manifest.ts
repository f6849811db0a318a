// manifest.json of a model directory (ARCHITECTURE.md, "Contracts that must not drift"): what was
// trained on which data, the inputs each network reads, its dims, the metrics it was promoted on,
// and every file of the directory with its size and sha256. No runtime imports: the edge may read it.

export const MANIFEST_FILE = 'manifest.json';
/** Bumped when a field changes meaning; readers refuse formats they do not know. */
export const MANIFEST_FORMAT = 1;

/** The files of a model directory besides manifest.json. */
export const MODEL_FILES = {
  userTower: 'user_tower.onnx',
  itemTower: 'item_tower.onnx',
  ranker: 'ranker.onnx',
  /** Raw little-endian float32 [items × dims.embedding], row i = item_ids.json[i]. */
  itemEmbeddings: 'item_embeddings.f32',
  /** JSON array of the catalog's item ids, in the row order of item_embeddings.f32. */
  itemIds: 'item_ids.json',
  /** JSON object: vocabulary name → values; a value's position in its array is its id. */
  vocabularies: 'vocabularies.json',
} as const;

export const REQUIRED_FILES: readonly string[] = [
  MODEL_FILES.userTower, MODEL_FILES.itemTower, MODEL_FILES.itemEmbeddings, MODEL_FILES.itemIds, MODEL_FILES.vocabularies,
];

/** One embedding bag input of a network (training/models/spec.ts BagSpec, without weights). */
export interface BagInputSpec {
  /** ONNX input name: `<name>` int64 [batch, L] and `<name>_mask` float32 [batch, L]. */
  name: string;
  /** The vocabulary in vocabularies.json that maps feature values to ids; absent for hashed features. */
  vocabulary?: string;
  rows: number;
  mode: 'mean' | 'sum';
}

/** The inputs one network reads, so that the serving side can build its feeds. */
export interface NetworkInputSpec {
  /** In the order the network concatenates them. */
  bags: BagInputSpec[];
  /** Dense float input `<name>` [batch, features.length], features in column order. */
  dense?: { name: string; features: string[] };
  /** Wide&Deep's wide part (Cheng 2016): a sum bag added to the output. */
  wide?: BagInputSpec;
  /** ONNX output name. */
  output: string;
}

export interface FeatureSpec {
  userTower: NetworkInputSpec;
  itemTower: NetworkInputSpec;
  ranker?: NetworkInputSpec;
}

export interface ManifestFile {
  /** A plain file name inside the model directory. */
  name: string;
  bytes: number;
  /** Lowercase hex. */
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  /** The registry's name for this model: `<createdAt as YYYYMMDDTHHMMSSZ>-<8 hex of the content hash>`. */
  version: string;
  /** Unix epoch milliseconds. */
  createdAt: number;
  /** The event time range the model was trained on, epoch milliseconds, `from` inclusive, `to` exclusive. */
  dataWindow: { from: number; to: number };
  dims: {
    /** Output width of both towers = columns of item_embeddings.f32. */
    embedding: number;
    /** Rows of item_embeddings.f32 = length of item_ids.json. */
    items: number;
    /** Output width of ranker.onnx, when there is one. */
    rankerOutputs?: number;
  };
  featureSpec: FeatureSpec;
  /** Validation metrics (e.g. 'recall@100', 'ndcg@10'); promotion compares one of them. */
  metrics: Record<string, number>;
  /** How the metrics were measured (split, cutoff, candidate set); metrics under different protocols are not compared. */
  protocol: string;
  files: ManifestFile[];
}

/** A manifest.json that does not hold what it must; the message names the file and the field. */
export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(readonly file: string, readonly problem: string) {
    super(`${file}: ${problem}`);
  }
}

// ---- validation: each check throws a `problem` string that names the field's path ----

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

class Problem extends Error {}

function get(obj: Json, key: string, path: string): unknown {
  const v = obj[key];
  if (v === undefined) throw new Problem(`${path}${key} is missing`);
  return v;
}

function object(obj: Json, key: string, path: string): Json {
  const v = get(obj, key, path);
  if (!isObject(v)) throw new Problem(`${path}${key} must be an object, got ${describe(v)}`);
  return v;
}

function string(obj: Json, key: string, path: string, pattern?: RegExp): string {
  const v = get(obj, key, path);
  if (typeof v !== 'string' || v === '') throw new Problem(`${path}${key} must be a non-empty string, got ${describe(v)}`);
  if (pattern !== undefined && !pattern.test(v)) throw new Problem(`${path}${key} must match ${String(pattern)}, got ${describe(v)}`);
  return v;
}

function integer(obj: Json, key: string, path: string, min: number): number {
  const v = get(obj, key, path);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new Problem(`${path}${key} must be an integer ≥ ${min}, got ${describe(v)}`);
  }
  return v;
}

function array(obj: Json, key: string, path: string): unknown[] {
  const v = get(obj, key, path);
  if (!Array.isArray(v)) throw new Problem(`${path}${key} must be an array, got ${describe(v)}`);
  return v;
}

function element(v: unknown, path: string): Json {
  if (!isObject(v)) throw new Problem(`${path} must be an object, got ${describe(v)}`);
  return v;
}

/** A file name inside the model directory: no separators, not hidden. */
export const FILE_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;

function checkBag(b: Json, path: string): void {
  string(b, 'name', path);
  if (b.vocabulary !== undefined) string(b, 'vocabulary', path);
  integer(b, 'rows', path, 1);
  const mode = get(b, 'mode', path);
  if (mode !== 'mean' && mode !== 'sum') throw new Problem(`${path}mode must be 'mean' or 'sum', got ${describe(mode)}`);
}

function checkNetworkInputs(n: Json, path: string): void {
  array(n, 'bags', path).forEach((b, i) => checkBag(element(b, `${path}bags[${i}]`), `${path}bags[${i}].`));
  if (n.dense !== undefined) {
    const dense = object(n, 'dense', path);
    string(dense, 'name', `${path}dense.`);
    array(dense, 'features', `${path}dense.`).forEach((f, i) => {
      if (typeof f !== 'string') throw new Problem(`${path}dense.features[${i}] must be a string, got ${describe(f)}`);
    });
  }
  if (n.wide !== undefined) checkBag(object(n, 'wide', path), `${path}wide.`);
  string(n, 'output', path);
}

function checkManifest(m: Json): void {
  const format = get(m, 'format', '');
  if (format !== MANIFEST_FORMAT) {
    throw new Problem(`format ${describe(format)} is not one this Kestrel reads (${MANIFEST_FORMAT}); re-export the model with this version`);
  }
  string(m, 'version', '');
  integer(m, 'createdAt', '', 0);
  const window = object(m, 'dataWindow', '');
  const from = integer(window, 'from', 'dataWindow.', 0);
  const to = integer(window, 'to', 'dataWindow.', 0);
  if (to < from) throw new Problem(`dataWindow.to (${to}) is before dataWindow.from (${from})`);
  const dims = object(m, 'dims', '');
  integer(dims, 'embedding', 'dims.', 1);
  integer(dims, 'items', 'dims.', 0);
  if (dims.rankerOutputs !== undefined) integer(dims, 'rankerOutputs', 'dims.', 1);
  const features = object(m, 'featureSpec', '');
  checkNetworkInputs(object(features, 'userTower', 'featureSpec.'), 'featureSpec.userTower.');
  checkNetworkInputs(object(features, 'itemTower', 'featureSpec.'), 'featureSpec.itemTower.');
  if (features.ranker !== undefined) checkNetworkInputs(object(features, 'ranker', 'featureSpec.'), 'featureSpec.ranker.');
  const metrics = object(m, 'metrics', '');
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Problem(`metrics.${k} must be a finite number, got ${describe(v)}`);
  }
  string(m, 'protocol', '');
  const names = new Set<string>();
  array(m, 'files', '').forEach((f, i) => {
    const path = `files[${i}].`;
    const file = element(f, `files[${i}]`);
    const name = string(file, 'name', path, FILE_NAME_PATTERN);
    if (name === MANIFEST_FILE) throw new Problem(`${path}name must not be ${MANIFEST_FILE} itself`);
    if (names.has(name)) throw new Problem(`files lists '${name}' twice`);
    names.add(name);
    integer(file, 'bytes', path, 0);
    string(file, 'sha256', path, SHA256_PATTERN);
  });
  for (const required of REQUIRED_FILES) {
    if (!names.has(required)) throw new Problem(`files does not list ${required}, which every model directory holds`);
  }
  if (features.ranker !== undefined && !names.has(MODEL_FILES.ranker)) {
    throw new Problem(`featureSpec.ranker is set but files does not list ${MODEL_FILES.ranker}`);
  }
}

/**
 * Parses and checks a manifest.json; `file` is the path named in errors. Fields this version does
 * not know are kept as they are (a newer writer may add some within the same format).
 */
export function parseManifest(text: string, file: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(file, `is not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(value)) throw new ManifestError(file, `must hold a JSON object, got ${describe(value)}`);
  try {
    checkManifest(value);
  } catch (error) {
    if (error instanceof Problem) throw new ManifestError(file, error.message);
    throw error;
  }
  return value as unknown as Manifest;
}

/** JSON with object keys sorted at every level: the same manifest always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** `YYYYMMDDTHHMMSSZ-<8 hex>`: sorts by creation time (to the second), then by content. */
export const VERSION_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/** The version name for a manifest created at `createdAt` whose content hashes to `contentSha256`. */
export function versionName(createdAt: number, contentSha256: string): string {
  const stamp = new Date(createdAt).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  return `${stamp}-${contentSha256.slice(0, 8)}`;
}
