import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CURRENT_FILE, decidePromotion, MANIFEST_FILE, ManifestError, MODEL_FILES, openRegistry, PROMOTIONS_LOG, readModelDir,
  RegistryBusyError, VERSION_PATTERN, writeModelDir,
} from '../../core/models/index.ts';
import type { Manifest, ModelDirContents } from '../../core/models/index.ts';
import { createNodeSession } from '../../core/ranking/onnx-session.ts';
import { forwardNetwork } from '../../training/models/forward.ts';
import type { NetworkSpec } from '../../training/models/spec.ts';
import { exportNetwork } from '../../training/onnx/network.ts';
import { freshSeed, gaussian, mulberry32, relativeError } from '../support/random.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 26, 16, 30, 0);
const DIM = 4;
const ITEMS = ['a', 'b', 'c', 'd', 'e'];
const PROTOCOL = 'temporal split 2026-11-19, leave-last-out, full catalog';

function tower(name: string, rows: number, seed: number): NetworkSpec {
  const rng = mulberry32(seed);
  const r = (n: number): Float32Array => Float32Array.from({ length: n }, () => gaussian(rng));
  return {
    bags: [{ name, rows, dim: 3, mode: 'mean', table: r(rows * 3) }],
    layers: [{ inputs: 3, outputs: DIM, weight: r(3 * DIM), bias: r(DIM), activation: 'none' }],
    output: 'l2',
    outputName: 'embedding',
  };
}

interface Fixture { createdAt?: number; metrics?: Record<string, number>; protocol?: string; seed?: number }

function contents({ createdAt = T0, metrics = { 'ndcg@10': 0.3 }, protocol = PROTOCOL, seed = 1 }: Fixture = {}): ModelDirContents {
  const rng = mulberry32(seed);
  return {
    manifest: {
      createdAt,
      dataWindow: { from: createdAt - 30 * DAY, to: createdAt - DAY },
      dims: { embedding: DIM, items: ITEMS.length },
      featureSpec: {
        userTower: { bags: [{ name: 'history', vocabulary: 'item', rows: 6, mode: 'mean' }], output: 'embedding' },
        itemTower: { bags: [{ name: 'item', vocabulary: 'item', rows: 6, mode: 'mean' }], output: 'embedding' },
      },
      metrics,
      protocol,
    },
    userTower: exportNetwork(tower('history', 6, seed)),
    itemTower: exportNetwork(tower('item', 6, seed + 1)),
    itemEmbeddings: Float32Array.from({ length: ITEMS.length * DIM }, () => gaussian(rng)),
    itemIds: ITEMS,
    vocabularies: { item: ['<pad>', ...ITEMS] },
  };
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kestrel-registry-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const quiet = { onNote: () => undefined };
const ndcg = { metric: 'ndcg@10', higherIsBetter: true };

describe('model directory', () => {
  it('round-trips towers, embeddings, ids and vocabularies, and lists every file with its sha256', async () => {
    const c = contents();
    const dir = join(root, 'model');
    const manifest = await writeModelDir(dir, c);
    expect(manifest.version).toMatch(VERSION_PATTERN);
    expect(manifest.version.startsWith('20261126T163000Z-')).toBe(true);
    expect(manifest.files.map((f) => f.name).sort()).toEqual(
      [MODEL_FILES.itemEmbeddings, MODEL_FILES.itemIds, MODEL_FILES.itemTower, MODEL_FILES.userTower, MODEL_FILES.vocabularies].sort(),
    );
    const model = await readModelDir(dir);
    expect(model.manifest).toEqual(manifest);
    expect(Array.from(model.itemEmbeddings)).toEqual(Array.from(c.itemEmbeddings));
    expect(model.itemIds).toEqual(ITEMS);
    expect(model.vocabularies).toEqual(c.vocabularies);
    expect(model.userTower).toEqual(c.userTower);
    expect(model.ranker).toBeUndefined();
    // item_embeddings.f32 is raw little-endian float32, nothing else.
    const raw = await readFile(join(dir, MODEL_FILES.itemEmbeddings));
    expect(raw.byteLength).toBe(ITEMS.length * DIM * 4);
    expect(raw.readFloatLE(4 * 5)).toBe(c.itemEmbeddings[5]);
  });

  it('the user tower read back runs on onnxruntime-node like the spec it was exported from', async () => {
    const seed = freshSeed();
    const spec = tower('history', 6, seed);
    const dir = join(root, 'model');
    await writeModelDir(dir, { ...contents(), userTower: exportNetwork(spec) });
    const session = await createNodeSession((await readModelDir(dir)).userTower);
    try {
      const ids = Int32Array.of(1, 2, 3, 0, 5, 0);
      const mask = Float32Array.of(1, 1, 1, 0, 1, 0);
      const out = (await session.run({
        history: { data: BigInt64Array.from(ids, (i) => BigInt(i)), dims: [2, 3] },
        history_mask: { data: mask, dims: [2, 3] },
      })).embedding;
      const want = forwardNetwork(spec, { batch: 2, bags: { history: { ids, mask, length: 3 } } });
      expect(relativeError(out ?? new Float32Array(), want), `seed ${seed}`).toBeLessThanOrEqual(1e-5);
    } finally {
      await session.release();
    }
  });

  it('refuses contents that disagree with their dims or vocabularies', async () => {
    const c = contents();
    await expect(writeModelDir(join(root, 'm'), { ...c, itemIds: ['a', 'b'] })).rejects.toThrow('2 item ids but dims.items is 5');
    await expect(writeModelDir(join(root, 'm'), { ...c, itemEmbeddings: new Float32Array(3) })).rejects.toThrow(
      'item embeddings hold 3 values, dims.items × dims.embedding = 5 × 4 needs 20',
    );
    await expect(writeModelDir(join(root, 'm'), { ...c, vocabularies: {} })).rejects.toThrow(
      "featureSpec.userTower bag 'history' reads vocabulary 'item', which vocabularies.json lacks",
    );
    await expect(writeModelDir(join(root, 'm'), { ...c, ranker: new Uint8Array(1) })).rejects.toThrow('give both ranker bytes and featureSpec.ranker');
  });

  describe('says which file and field is wrong', () => {
    const dir = (): string => join(root, 'model');
    const editManifest = async (edit: (m: Record<string, unknown>) => void): Promise<void> => {
      const path = join(dir(), MANIFEST_FILE);
      const m = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      edit(m);
      await writeFile(path, JSON.stringify(m));
    };
    beforeEach(async () => {
      await writeModelDir(dir(), contents());
    });

    it.each([
      ['a missing dims field', (m: Record<string, unknown>) => { m.dims = { embedding: DIM }; }, 'dims.items is missing'],
      ['a wrong type', (m: Record<string, unknown>) => { m.createdAt = '2026-11-26'; }, 'createdAt must be an integer ≥ 0, got the string "2026-11-26"'],
      ['an unknown format', (m: Record<string, unknown>) => { m.format = 2; }, 'format number 2 is not one this Kestrel reads (1)'],
      ['a non-finite metric', (m: Record<string, unknown>) => { m.metrics = { auc: 'high' }; }, 'metrics.auc must be a finite number'],
      ['a bad bag mode', (m: Record<string, unknown>) => {
        m.featureSpec = { ...(m.featureSpec as object), itemTower: { bags: [{ name: 'item', rows: 6, mode: 'max' }], output: 'e' } };
      }, "featureSpec.itemTower.bags[0].mode must be 'mean' or 'sum'"],
      ['a file name with a path', (m: Record<string, unknown>) => {
        m.files = [...(m.files as object[]), { name: '../x', bytes: 0, sha256: '0'.repeat(64) }];
      }, 'files[5].name must match'],
      ['a required file not listed', (m: Record<string, unknown>) => {
        m.files = (m.files as { name: string }[]).filter((f) => f.name !== MODEL_FILES.itemTower);
      }, 'files does not list item_tower.onnx'],
      ['a window that ends before it starts', (m: Record<string, unknown>) => { m.dataWindow = { from: 10, to: 5 }; }, 'dataWindow.to (5) is before dataWindow.from (10)'],
    ])('%s', async (_label, edit, problem) => {
      await editManifest(edit);
      const error = await readModelDir(dir()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ManifestError);
      expect((error as Error).message.startsWith(`${join(dir(), MANIFEST_FILE)}: ${problem}`), (error as Error).message).toBe(true);
    });

    it('a manifest that is not JSON, or absent', async () => {
      await writeFile(join(dir(), MANIFEST_FILE), '{ "version": ');
      await expect(readModelDir(dir())).rejects.toThrow(`${join(dir(), MANIFEST_FILE)}: is not valid JSON`);
      await rm(join(dir(), MANIFEST_FILE));
      await expect(readModelDir(dir())).rejects.toThrow('does not exist; a model directory is complete only once its manifest is written');
    });

    it('a file changed, truncated or missing after export', async () => {
      const embeddings = join(dir(), MODEL_FILES.itemEmbeddings);
      const raw = await readFile(embeddings);
      raw[0] = (raw[0] ?? 0) ^ 1;
      await writeFile(embeddings, raw);
      await expect(readModelDir(dir())).rejects.toThrow(`${embeddings}: sha256 differs from manifest.json`);
      await expect(readModelDir(dir(), { verify: false })).resolves.toBeDefined();
      await writeFile(embeddings, raw.subarray(4));
      await expect(readModelDir(dir(), { verify: false })).rejects.toThrow(`${embeddings}: manifest.json lists 80 bytes, the file has 76`);
      await rm(embeddings);
      await expect(readModelDir(dir())).rejects.toThrow(`${embeddings}: listed in manifest.json but missing`);
    });
  });
});

describe('decidePromotion', () => {
  const manifest = (version: string, metrics: Record<string, number>, protocol = PROTOCOL): Manifest =>
    ({ version, metrics, protocol }) as unknown as Manifest;
  const cand = (v: number, protocol?: string): Manifest => manifest('20261126T163000Z-0000000b', { 'ndcg@10': v, recall: 0.5 }, protocol);
  const cur = manifest('20261101T000000Z-0000000a', { 'ndcg@10': 0.3 });

  it.each([
    ['no current model', cand(0.1), undefined, ndcg, true, 'no model is current yet; 20261126T163000Z-0000000b becomes the first (ndcg@10 0.1)'],
    ['better', cand(0.31), cur, ndcg, true, 'ndcg@10 0.31 beats 0.3 of the current 20261101T000000Z-0000000a (higher is better)'],
    ['worse', cand(0.29), cur, ndcg, false, 'ndcg@10 0.29 does not beat 0.3 of the current 20261101T000000Z-0000000a (higher is better)'],
    ['a tie', cand(0.3), cur, ndcg, false, 'ndcg@10 0.3 ties the current 20261101T000000Z-0000000a; a tie keeps the current model'],
    ['lower is better', cand(0.29), cur, { metric: 'ndcg@10', higherIsBetter: false }, true, 'ndcg@10 0.29 beats 0.3 of the current 20261101T000000Z-0000000a (lower is better)'],
    ['the candidate lacks the metric', cand(0.9), cur, { metric: 'auc', higherIsBetter: true }, false,
      "20261126T163000Z-0000000b has no 'auc' in its metrics (it has ndcg@10, recall); evaluate it on 'auc' first"],
    ['the current lacks the metric', cand(0.9), manifest('20261101T000000Z-0000000a', {}), ndcg, false,
      "the current 20261101T000000Z-0000000a has no 'ndcg@10' to compare against; use rollback(20261126T163000Z-0000000b) to switch without a comparison"],
    ['another protocol', cand(0.9, 'random split'), cur, ndcg, false,
      "20261126T163000Z-0000000b was evaluated under protocol 'random split' but the current 20261101T000000Z-0000000a under '" + PROTOCOL + "'; the metrics are not comparable"],
  ])('%s', (_label, candidate, current, criterion, promoted, reason) => {
    const decision = decidePromotion(candidate, current, criterion);
    expect(decision.promoted).toBe(promoted);
    expect(decision.reason.startsWith(reason), decision.reason).toBe(true);
  });
});

describe('model registry', () => {
  const stage = async (fixture: Fixture): Promise<string> => {
    const registry = await openRegistry(root, quiet);
    return registry.stage((dir) => writeModelDir(dir, contents(fixture)).then(() => undefined));
  };

  it('stages from a writer or a directory, names versions by time and content, and lists them oldest first', async () => {
    const registry = await openRegistry(root, quiet);
    const later = await registry.stage(async (dir) => {
      await writeModelDir(dir, contents({ createdAt: T0 + DAY }));
    });
    const source = join(root, 'exported');
    const written = await writeModelDir(source, contents());
    const earlier = await registry.stage(source);
    expect(earlier).toBe(written.version);
    expect(later.startsWith('20261127T163000Z-')).toBe(true);
    expect(await registry.list()).toEqual([earlier, later]);
    // The same content again is the same version; nothing is left behind in versions/.
    expect(await registry.stage(source)).toBe(earlier);
    expect(await readdir(join(root, 'versions'))).toEqual([earlier, later].sort());
    expect(await registry.current()).toBeUndefined();
    expect((await registry.manifest(earlier)).version).toBe(earlier);
  });

  it('renames a staged directory whose manifest carries another version', async () => {
    const registry = await openRegistry(root, quiet);
    const source = join(root, 'exported');
    await writeModelDir(source, contents());
    const path = join(source, MANIFEST_FILE);
    await writeFile(path, JSON.stringify({ ...(JSON.parse(await readFile(path, 'utf8')) as object), version: 'my-model-v7' }));
    const version = await registry.stage(source);
    expect(version).toMatch(VERSION_PATTERN);
    expect((await registry.load(version)).manifest.version).toBe(version);
  });

  it('refuses to stage a broken directory and cleans up after it', async () => {
    const registry = await openRegistry(root, quiet);
    await expect(registry.stage(async (dir) => {
      await writeModelDir(dir, contents());
      await writeFile(join(dir, MODEL_FILES.itemIds), '["a"]\n');
    })).rejects.toThrow('item_ids.json: manifest.json lists');
    await expect(registry.stage(join(root, 'nowhere'))).rejects.toThrow(`${join(root, 'nowhere', MANIFEST_FILE)}: does not exist`);
    expect(await readdir(join(root, 'versions'))).toEqual([]);
  });

  it('promotes the first model, then only one that beats the current, and says why', async () => {
    const registry = await openRegistry(root, { ...quiet, now: () => T0 });
    const first = await stage({ metrics: { 'ndcg@10': 0.3 } });
    const worse = await stage({ metrics: { 'ndcg@10': 0.25 }, createdAt: T0 + 1000 });
    const tie = await stage({ metrics: { 'ndcg@10': 0.3 }, createdAt: T0 + 2000 });
    const lacking = await stage({ metrics: { recall: 0.9 }, createdAt: T0 + 3000 });
    const better = await stage({ metrics: { 'ndcg@10': 0.35 }, createdAt: T0 + 4000 });

    expect(await registry.promote(first, ndcg)).toMatchObject({ promoted: true, candidate: first, candidateValue: 0.3 });
    expect(await registry.promote(worse, ndcg)).toMatchObject({ promoted: false, current: first, currentValue: 0.3, candidateValue: 0.25 });
    const tied = await registry.promote(tie, ndcg);
    expect(tied.promoted).toBe(false);
    expect(tied.reason).toContain('a tie keeps the current model');
    const missing = await registry.promote(lacking, ndcg);
    expect(missing.promoted).toBe(false);
    expect(missing.reason).toContain("has no 'ndcg@10' in its metrics (it has recall)");
    expect(await registry.current()).toBe(first);
    expect((await registry.promote(first, ndcg)).reason).toBe(`${first} is already current`);

    const win = await registry.promote(better, ndcg);
    expect(win).toMatchObject({ promoted: true, current: first });
    expect(win.reason).toBe(`ndcg@10 0.35 beats 0.3 of the current ${first} (higher is better)`);
    expect(JSON.parse(await readFile(join(root, CURRENT_FILE), 'utf8'))).toEqual({
      version: better, since: T0, previous: first, reason: win.reason,
    });
    const log = (await readFile(join(root, PROMOTIONS_LOG), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { promoted: boolean });
    expect(log.map((l) => l.promoted)).toEqual([true, false, false, false, false, true]);
    // current.json is replaced by rename: no temporary files stay behind.
    expect((await readdir(root)).sort()).toEqual([CURRENT_FILE, PROMOTIONS_LOG, 'versions']);

    const loaded = await registry.load();
    expect(loaded.manifest.version).toBe(better);
    expect(loaded.manifest.metrics).toEqual({ 'ndcg@10': 0.35 });
  });

  it('rolls back to any staged version without comparing', async () => {
    const registry = await openRegistry(root, quiet);
    const a = await stage({ metrics: { 'ndcg@10': 0.3 } });
    const b = await stage({ metrics: { 'ndcg@10': 0.4 }, createdAt: T0 + 1000 });
    await registry.promote(a, ndcg);
    await registry.promote(b, ndcg);
    await registry.rollback(a, 'b serves stale items');
    expect(await registry.currentPointer()).toMatchObject({ version: a, previous: b, reason: 'b serves stale items' });
    await expect(registry.rollback('20990101T000000Z-deadbeef')).rejects.toThrow(
      `model version 20990101T000000Z-deadbeef is not staged in ${join(root, 'versions')}; stage it first`,
    );
    await expect(registry.promote('20990101T000000Z-deadbeef', ndcg)).rejects.toThrow('is not staged');
    await expect(registry.rollback('../../etc')).rejects.toThrow("'../../etc' is not a model version");
  });

  it('serialises concurrent promotions: the best candidate ends up current', async () => {
    const registry = await openRegistry(root, quiet);
    const values = [0.31, 0.5, 0.2, 0.45, 0.33, 0.49];
    const versions: string[] = [];
    for (const [i, v] of values.entries()) versions.push(await stage({ metrics: { 'ndcg@10': v }, createdAt: T0 + i * 1000 }));
    const decisions = await Promise.all(versions.map((v) => registry.promote(v, ndcg)));
    expect(await registry.current()).toBe(versions[1]);
    // Every promotion saw the pointer the one before it left: the chain of `current`s is consistent.
    const promoted = decisions.filter((d) => d.promoted);
    for (const d of decisions) {
      if (d.current !== undefined) expect(d.currentValue).toBe(values[versions.indexOf(d.current)]);
    }
    expect(promoted.filter((d) => d.current === undefined)).toHaveLength(1);
    expect(await readdir(root)).not.toContain('LOCK');
  });

  it('waits for a lock held by a live process, then says who holds it; takes over a dead one', async () => {
    const notes: string[] = [];
    const registry = await openRegistry(root, { lockWaitMs: 60, onNote: (n) => notes.push(n) });
    const v = await stage({});
    const holder = spawnSync(process.execPath, ['-e', '']);
    await writeFile(join(root, 'LOCK'), `${process.ppid}\n`);
    const error = await registry.promote(v, ndcg).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryBusyError);
    expect((error as Error).message).toBe(
      `model registry ${root} is being changed by process ${process.ppid} (a promotion or rollback); try again when it finishes, or delete ${join(root, 'LOCK')} if that process is stuck`,
    );
    expect(await registry.current()).toBeUndefined();

    await writeFile(join(root, 'LOCK'), `${holder.pid}\n`);
    expect((await registry.promote(v, ndcg)).promoted).toBe(true);
    expect(notes).toEqual([`model registry: ${root}: process ${holder.pid} no longer runs but left its lock; taking it over`]);
  });

  it('says what is wrong with current.json and unknown versions', async () => {
    const registry = await openRegistry(root, quiet);
    await expect(registry.load()).rejects.toThrow(`model registry ${root} has no current model yet`);
    await writeFile(join(root, CURRENT_FILE), JSON.stringify({ version: '20990101T000000Z-deadbeef' }));
    await expect(registry.current()).rejects.toThrow(`${join(root, CURRENT_FILE)}: names version 20990101T000000Z-deadbeef, which is not in ${join(root, 'versions')}`);
    await expect(registry.load('20990101T000000Z-deadbeef')).rejects.toThrow('is not staged');
    await expect(registry.load('latest')).rejects.toThrow("'latest' is not a model version");
  });
});
