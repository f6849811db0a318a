// A model directory on disk (ARCHITECTURE.md, "Contracts that must not drift"):
//
//   manifest.json         written last: a directory without it is incomplete (./manifest.ts)
//   user_tower.onnx       training/onnx/network.ts exportNetwork
//   item_tower.onnx
//   ranker.onnx           optional (Wide&Deep)
//   item_embeddings.f32   raw little-endian float32 [dims.items × dims.embedding]
//   item_ids.json         ["item id of row 0", ...]
//   vocabularies.json     { "<vocabulary>": ["value of id 0", ...] }
//   any extra files       listed in manifest.files like the rest
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  canonicalJson, FILE_NAME_PATTERN, MANIFEST_FILE, MANIFEST_FORMAT, ManifestError, MODEL_FILES, parseManifest, versionName,
} from './manifest.ts';
import type { FeatureSpec, Manifest, ManifestFile, NetworkInputSpec } from './manifest.ts';

/** What a training run hands over; the manifest's format, version and files are filled in. */
export interface ModelDirContents {
  manifest: Omit<Manifest, 'format' | 'version' | 'files'>;
  userTower: Uint8Array;
  itemTower: Uint8Array;
  ranker?: Uint8Array;
  /** [items × dims.embedding] row-major, row i for itemIds[i]. */
  itemEmbeddings: Float32Array;
  itemIds: readonly string[];
  vocabularies: Readonly<Record<string, readonly string[]>>;
  /** More files (a feature-scaling table, a README); names must not clash with the standard ones. */
  extraFiles?: Readonly<Record<string, Uint8Array>>;
}

/** A model directory read back and checked. */
export interface ModelDir {
  dir: string;
  manifest: Manifest;
  userTower: Uint8Array;
  itemTower: Uint8Array;
  ranker?: Uint8Array;
  itemEmbeddings: Float32Array;
  itemIds: string[];
  vocabularies: Record<string, string[]>;
}

export interface ReadModelDirOptions {
  /** Check every file's sha256 against the manifest (sizes are always checked). Default true. */
  verify?: boolean;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The version a manifest gets: its creation time and a hash of everything in it but the version. */
export function contentVersion(manifest: Omit<Manifest, 'version'> & { version?: string }): string {
  const { version: _ignored, ...rest } = manifest;
  return versionName(manifest.createdAt, sha256Hex(canonicalJson(rest)));
}

export function float32Bytes(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bytes = new Uint8Array(values.byteLength);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}

export function float32FromBytes(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes.subarray(0, out.byteLength));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** Writes `data` beside `path`, flushes it, then renames it over `path`: readers see the old file or the new one. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(temp, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** Each bag's vocabulary exists and fits the bag's rows; `where` names the directory in errors. */
function checkVocabularies(spec: FeatureSpec, vocabularies: Readonly<Record<string, readonly string[]>>, where: string): void {
  const networks: [string, NetworkInputSpec | undefined][] = [['userTower', spec.userTower], ['itemTower', spec.itemTower], ['ranker', spec.ranker]];
  for (const [network, inputs] of networks) {
    if (inputs === undefined) continue;
    for (const bag of inputs.wide === undefined ? inputs.bags : [...inputs.bags, inputs.wide]) {
      if (bag.vocabulary === undefined) continue;
      const values = vocabularies[bag.vocabulary];
      if (values === undefined) throw new Error(`${where}: featureSpec.${network} bag '${bag.name}' reads vocabulary '${bag.vocabulary}', which ${MODEL_FILES.vocabularies} lacks`);
      if (values.length > bag.rows) {
        throw new Error(`${where}: vocabulary '${bag.vocabulary}' has ${values.length} values but bag '${bag.name}' of featureSpec.${network} has only ${bag.rows} rows`);
      }
    }
  }
}

function checkContents(c: ModelDirContents, dir: string): void {
  const { dims } = c.manifest;
  if (c.itemIds.length !== dims.items) throw new Error(`${dir}: ${c.itemIds.length} item ids but dims.items is ${dims.items}`);
  if (c.itemEmbeddings.length !== dims.items * dims.embedding) {
    throw new Error(`${dir}: item embeddings hold ${c.itemEmbeddings.length} values, dims.items × dims.embedding = ${dims.items} × ${dims.embedding} needs ${dims.items * dims.embedding}`);
  }
  if (new Set(c.itemIds).size !== c.itemIds.length) throw new Error(`${dir}: item ids are not unique`);
  if ((c.ranker === undefined) !== (c.manifest.featureSpec.ranker === undefined)) {
    throw new Error(`${dir}: give both ranker bytes and featureSpec.ranker, or neither`);
  }
  checkVocabularies(c.manifest.featureSpec, c.vocabularies, dir);
}

/**
 * Writes a complete model directory into `dir` (created if missing): the files, then manifest.json
 * with their sizes and sha256 and the content version. Returns the manifest written.
 */
export async function writeModelDir(dir: string, contents: ModelDirContents): Promise<Manifest> {
  checkContents(contents, dir);
  const files = new Map<string, Uint8Array>();
  const text = (value: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(value)}\n`);
  files.set(MODEL_FILES.userTower, contents.userTower);
  files.set(MODEL_FILES.itemTower, contents.itemTower);
  if (contents.ranker !== undefined) files.set(MODEL_FILES.ranker, contents.ranker);
  files.set(MODEL_FILES.itemEmbeddings, float32Bytes(contents.itemEmbeddings));
  files.set(MODEL_FILES.itemIds, text(contents.itemIds));
  files.set(MODEL_FILES.vocabularies, text(contents.vocabularies));
  for (const [name, data] of Object.entries(contents.extraFiles ?? {})) {
    if (files.has(name) || name === MANIFEST_FILE) throw new Error(`${dir}: extra file '${name}' clashes with a standard file of the model directory`);
    if (!FILE_NAME_PATTERN.test(name)) throw new Error(`${dir}: extra file name '${name}' must be a plain file name (letters, digits, _ . -)`);
    files.set(name, data);
  }

  await mkdir(dir, { recursive: true });
  const listed: ManifestFile[] = [];
  for (const [name, data] of files) {
    await writeFile(join(dir, name), data);
    listed.push({ name, bytes: data.byteLength, sha256: sha256Hex(data) });
  }
  const draft: Omit<Manifest, 'version'> = { format: MANIFEST_FORMAT, ...contents.manifest, files: listed };
  const manifest: Manifest = { ...draft, version: contentVersion(draft) };
  await writeFileAtomic(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ManifestError(file, 'does not exist; a model directory is complete only once its manifest is written');
    }
    throw error;
  }
  return parseManifest(text, file);
}

async function readListed(dir: string, file: ManifestFile, verify: boolean): Promise<Uint8Array> {
  const path = join(dir, file.name);
  let data: Uint8Array;
  try {
    data = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: listed in ${MANIFEST_FILE} but missing`);
    throw error;
  }
  if (data.byteLength !== file.bytes) throw new Error(`${path}: ${MANIFEST_FILE} lists ${file.bytes} bytes, the file has ${data.byteLength}`);
  if (verify && sha256Hex(data) !== file.sha256) throw new Error(`${path}: sha256 differs from ${MANIFEST_FILE}; the file was changed or damaged after export`);
  return data;
}

function parseJsonFile(data: Uint8Array, path: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch (error) {
    throw new Error(`${path}: is not valid JSON (${(error as Error).message})`);
  }
}

/** Reads and checks a whole model directory: manifest, sizes, hashes, embeddings against dims. */
export async function readModelDir(dir: string, options: ReadModelDirOptions = {}): Promise<ModelDir> {
  const verify = options.verify ?? true;
  const manifest = await readManifest(dir);
  const data = new Map<string, Uint8Array>();
  for (const file of manifest.files) data.set(file.name, await readListed(dir, file, verify));
  const need = (name: string): Uint8Array => {
    const d = data.get(name);
    if (d === undefined) throw new Error(`${join(dir, MANIFEST_FILE)}: files does not list ${name}`);
    return d;
  };

  const { items, embedding } = manifest.dims;
  const embeddingsPath = join(dir, MODEL_FILES.itemEmbeddings);
  const embeddingBytes = need(MODEL_FILES.itemEmbeddings);
  if (embeddingBytes.byteLength !== items * embedding * 4) {
    throw new Error(`${embeddingsPath}: holds ${embeddingBytes.byteLength} bytes, dims.items × dims.embedding × 4 = ${items} × ${embedding} × 4 needs ${items * embedding * 4}`);
  }
  const idsPath = join(dir, MODEL_FILES.itemIds);
  const ids = parseJsonFile(need(MODEL_FILES.itemIds), idsPath);
  if (!Array.isArray(ids) || !ids.every((id): id is string => typeof id === 'string')) throw new Error(`${idsPath}: must be a JSON array of strings`);
  if (ids.length !== items) throw new Error(`${idsPath}: holds ${ids.length} ids but dims.items is ${items}`);
  const vocabPath = join(dir, MODEL_FILES.vocabularies);
  const vocab = parseJsonFile(need(MODEL_FILES.vocabularies), vocabPath);
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) throw new Error(`${vocabPath}: must be a JSON object of string arrays`);
  const vocabularies: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(vocab)) {
    if (!Array.isArray(values) || !values.every((v): v is string => typeof v === 'string')) throw new Error(`${vocabPath}: '${name}' must be an array of strings`);
    vocabularies[name] = values;
  }
  checkVocabularies(manifest.featureSpec, vocabularies, dir);

  const model: ModelDir = {
    dir,
    manifest,
    userTower: need(MODEL_FILES.userTower),
    itemTower: need(MODEL_FILES.itemTower),
    itemEmbeddings: float32FromBytes(embeddingBytes),
    itemIds: ids,
    vocabularies,
  };
  const ranker = data.get(MODEL_FILES.ranker);
  if (ranker !== undefined) model.ranker = ranker;
  return model;
}

/** Whether `path` exists and is a directory. */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
