// The model registry: a folder of immutable model versions and a pointer to the one that serves.
//
//   <root>/versions/<version>/   model directories (./model-dir.ts), never changed once staged
//   <root>/current.json          { version, since, previous?, reason }, replaced atomically
//   <root>/promotions.jsonl      one line per promote/rollback decision, promoted or not
//   <root>/LOCK                  held while current.json is decided and written
//
// The pointer is a JSON file written to a temporary name and renamed over the old one, rather than
// a symlink: rename is atomic on every platform Node runs on, symlinks need privileges on Windows,
// and the file can say why and when the version became current.
//
// A version is promoted only when its validation metric beats the current version's, measured
// under the same protocol; a tie keeps the current one (a new model has to earn the swap, since
// every swap cold-starts caches at the edge).
import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLogLock, LogLockedError } from '../events/log/index.ts';
import type { LogLock } from '../events/log/index.ts';
import { MANIFEST_FILE, VERSION_PATTERN } from './manifest.ts';
import type { Manifest } from './manifest.ts';
import { contentVersion, isDirectory, readManifest, readModelDir, writeFileAtomic } from './model-dir.ts';
import type { ModelDir, ReadModelDirOptions } from './model-dir.ts';

export const VERSIONS_DIR = 'versions';
export const CURRENT_FILE = 'current.json';
export const PROMOTIONS_LOG = 'promotions.jsonl';
/** How long promote/rollback wait for another one to finish before giving up. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;
const LOCK_RETRY_MS = 25;
const STAGING_PREFIX = '.staging-';

export interface CurrentPointer {
  version: string;
  /** When it became current, epoch milliseconds. */
  since: number;
  previous?: string;
  reason: string;
}

export interface PromotionCriterion {
  /** A key of manifest.metrics, e.g. 'ndcg@10'. */
  metric: string;
  higherIsBetter: boolean;
}

export interface PromotionDecision {
  promoted: boolean;
  /** Why, in words fit for a training report. */
  reason: string;
  candidate: string;
  /** The current version before the decision. */
  current?: string;
  metric: string;
  candidateValue?: number;
  currentValue?: number;
}

/** How to stage: an existing model directory to copy, or a writer that fills the directory it is given. */
export type StageSource = string | ((dir: string) => Promise<void>);

export interface ModelRegistry {
  readonly root: string;
  /** The directory of a version (whether or not it exists). */
  dir(version: string): string;
  /** Staged versions, oldest first. */
  list(): Promise<string[]>;
  /** The version current.json points at; undefined before the first promotion. */
  current(): Promise<string | undefined>;
  currentPointer(): Promise<CurrentPointer | undefined>;
  /**
   * Checks a model directory (manifest, sizes, hashes) and adds it under versions/ with its content
   * version. Staging the same content twice returns the same version. Does not change current.
   */
  stage(source: StageSource): Promise<string>;
  /** Makes `version` current if it beats the current version on `criterion` (see the file comment). */
  promote(version: string, criterion: PromotionCriterion): Promise<PromotionDecision>;
  /** Makes any staged version current without comparing metrics: to undo a promotion, or to adopt a new protocol. */
  rollback(version: string, reason?: string): Promise<void>;
  manifest(version: string): Promise<Manifest>;
  /** Reads and checks a version's model directory; the current one when `version` is omitted. */
  load(version?: string, options?: ReadModelDirOptions): Promise<ModelDir>;
}

export interface RegistryOptions {
  /** How long promote/rollback wait for a concurrent one; default DEFAULT_LOCK_WAIT_MS. */
  lockWaitMs?: number;
  /** Where notes go (a lock left by a crashed process taken over); default console.warn. */
  onNote?: (note: string) => void;
  /** Clock for `since` in current.json and the promotions log. */
  now?: () => number;
}

/** Another process (or call) is promoting or rolling back in the same registry. */
export class RegistryBusyError extends Error {
  override name = 'RegistryBusyError';
  constructor(readonly root: string, readonly pid: number) {
    super(`model registry ${root} is being changed by process ${pid} (a promotion or rollback); try again when it finishes, or delete ${join(root, 'LOCK')} if that process is stuck`);
  }
}

function checkVersionName(version: string): void {
  if (!VERSION_PATTERN.test(version)) throw new RangeError(`'${version}' is not a model version (expected YYYYMMDDTHHMMSSZ-<8 hex>, e.g. 20261126T163000Z-1a2b3c4d)`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(6).replace(/\.?0+$/, '');
}

/** The decision alone, on manifests already read: pure, so each refusal reason is easy to test. */
export function decidePromotion(
  candidate: Manifest, current: Manifest | undefined, { metric, higherIsBetter }: PromotionCriterion,
): PromotionDecision {
  const base = { candidate: candidate.version, metric };
  const value = candidate.metrics[metric];
  if (value === undefined) {
    const has = Object.keys(candidate.metrics);
    return { ...base, ...(current && { current: current.version }), promoted: false,
      reason: `${candidate.version} has no '${metric}' in its metrics (it has ${has.length === 0 ? 'none' : has.join(', ')}); evaluate it on '${metric}' first` };
  }
  if (current === undefined) {
    return { ...base, candidateValue: value, promoted: true, reason: `no model is current yet; ${candidate.version} becomes the first (${metric} ${fmt(value)})` };
  }
  const withCurrent = { ...base, current: current.version, candidateValue: value };
  if (current.version === candidate.version) return { ...withCurrent, promoted: false, reason: `${candidate.version} is already current` };
  const currentValue = current.metrics[metric];
  if (currentValue === undefined) {
    return { ...withCurrent, promoted: false,
      reason: `the current ${current.version} has no '${metric}' to compare against; use rollback(${candidate.version}) to switch without a comparison` };
  }
  const both = { ...withCurrent, currentValue };
  if (candidate.protocol !== current.protocol) {
    return { ...both, promoted: false,
      reason: `${candidate.version} was evaluated under protocol '${candidate.protocol}' but the current ${current.version} under '${current.protocol}'; the metrics are not comparable (re-evaluate, or use rollback(${candidate.version}) to switch anyway)` };
  }
  const direction = higherIsBetter ? 'higher is better' : 'lower is better';
  if (value === currentValue) {
    return { ...both, promoted: false, reason: `${metric} ${fmt(value)} ties the current ${current.version}; a tie keeps the current model` };
  }
  const beats = higherIsBetter ? value > currentValue : value < currentValue;
  return beats
    ? { ...both, promoted: true, reason: `${metric} ${fmt(value)} beats ${fmt(currentValue)} of the current ${current.version} (${direction})` }
    : { ...both, promoted: false, reason: `${metric} ${fmt(value)} does not beat ${fmt(currentValue)} of the current ${current.version} (${direction})` };
}

/** Opens (creating if needed) the registry at `root`. */
export async function openRegistry(root: string, options: RegistryOptions = {}): Promise<ModelRegistry> {
  const versionsDir = join(root, VERSIONS_DIR);
  await mkdir(versionsDir, { recursive: true });
  const lockWaitMs = options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;
  const onNote = options.onNote ?? console.warn;
  const now = options.now ?? Date.now;
  const dir = (version: string): string => {
    checkVersionName(version);
    return join(versionsDir, version);
  };

  // The event log's single-writer lock (a pid file created with O_EXCL), retried until lockWaitMs.
  const lock = async (): Promise<LogLock> => {
    const deadline = Date.now() + lockWaitMs;
    for (;;) {
      try {
        return await acquireLogLock(root, (note) => onNote(`model registry: ${note.replace(/^event log /, '')}`));
      } catch (error) {
        const pid = error instanceof LogLockedError ? error.pid : undefined;
        // acquireLogLock also throws a plain Error while another process is between creating and filling the file.
        const filling = !(error instanceof LogLockedError) && error instanceof Error && error.message.includes('is being opened by another process');
        if (pid === undefined && !filling) throw error;
        if (Date.now() >= deadline) throw new RegistryBusyError(root, pid ?? 0);
        await sleep(LOCK_RETRY_MS);
      }
    }
  };

  const currentPointer = async (): Promise<CurrentPointer | undefined> => {
    const path = join(root, CURRENT_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let pointer: unknown;
    try {
      pointer = JSON.parse(text);
    } catch {
      throw new Error(`${path}: is not valid JSON; point it at a version with rollback(version)`);
    }
    const version = (pointer as { version?: unknown } | null)?.version;
    if (typeof version !== 'string' || !VERSION_PATTERN.test(version)) throw new Error(`${path}: 'version' must name a model version, got ${JSON.stringify(version)}`);
    if (!(await isDirectory(join(versionsDir, version)))) throw new Error(`${path}: names version ${version}, which is not in ${versionsDir}`);
    return pointer as CurrentPointer;
  };

  const staged = async (version: string): Promise<string> => {
    const path = dir(version);
    if (!(await isDirectory(path))) throw new Error(`model version ${version} is not staged in ${versionsDir}; stage it first`);
    return path;
  };

  const manifest = async (version: string): Promise<Manifest> => {
    const m = await readManifest(await staged(version));
    if (m.version !== version) throw new Error(`${join(dir(version), MANIFEST_FILE)}: says version ${m.version} but sits in ${version}`);
    return m;
  };

  const record = async (entry: Record<string, unknown>): Promise<void> => {
    await appendFile(join(root, PROMOTIONS_LOG), `${JSON.stringify({ at: now(), ...entry })}\n`);
  };

  const setCurrent = async (version: string, previous: string | undefined, reason: string): Promise<void> => {
    const pointer: CurrentPointer = { version, since: now(), reason };
    if (previous !== undefined) pointer.previous = previous;
    await writeFileAtomic(join(root, CURRENT_FILE), `${JSON.stringify(pointer, null, 2)}\n`);
  };

  const registry: ModelRegistry = {
    root,
    dir,

    async list() {
      const names = await readdir(versionsDir);
      const versions: string[] = [];
      for (const name of names) {
        if (VERSION_PATTERN.test(name) && (await isDirectory(join(versionsDir, name)))) versions.push(name);
      }
      return versions.sort();
    },

    async current() {
      return (await currentPointer())?.version;
    },
    currentPointer,

    async stage(source) {
      // Staged beside the versions so that the final rename stays on one file system.
      const temp = join(versionsDir, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        if (typeof source === 'string') {
          await readManifest(source); // a clear error before copying anything
          await cp(source, temp, { recursive: true, errorOnExist: true, force: false });
        } else {
          await mkdir(temp);
          await source(temp);
        }
        const { manifest: m } = await readModelDir(temp, { verify: true });
        const version = contentVersion(m);
        if (m.version !== version) await writeFileAtomic(join(temp, MANIFEST_FILE), `${JSON.stringify({ ...m, version }, null, 2)}\n`);
        try {
          await rename(temp, join(versionsDir, version));
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // The same content is staged already: versions are content-addressed, so keep the first.
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
        }
        return version;
      } finally {
        await rm(temp, { recursive: true, force: true });
      }
    },

    async promote(version, criterion) {
      const candidate = await manifest(version);
      const held = await lock();
      try {
        const currentVersion = await registry.current();
        const decision = decidePromotion(candidate, currentVersion === undefined ? undefined : await manifest(currentVersion), criterion);
        if (decision.promoted) await setCurrent(version, currentVersion, decision.reason);
        await record({ action: 'promote', ...decision });
        return decision;
      } finally {
        await held.release();
      }
    },

    async rollback(version, reason) {
      await manifest(version);
      const held = await lock();
      try {
        const previous = await registry.current();
        const why = reason ?? `set by rollback${previous === undefined ? '' : ` from ${previous}`}`;
        await setCurrent(version, previous, why);
        await record({ action: 'rollback', version, ...(previous !== undefined && { previous }), reason: why });
      } finally {
        await held.release();
      }
    },

    manifest,

    async load(version, loadOptions) {
      const v = version ?? (await registry.current());
      if (v === undefined) throw new Error(`model registry ${root} has no current model yet; train one and promote it`);
      const model = await readModelDir(await staged(v), loadOptions);
      if (model.manifest.version !== v) throw new Error(`${join(dir(v), MANIFEST_FILE)}: says version ${model.manifest.version} but sits in ${v}`);
      return model;
    },
  };
  return registry;
}
