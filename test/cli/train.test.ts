// `kestrel train`, `evaluate` and `recommend` on data the project generates: a plain
// user,item,value,timestamp CSV, a generated folder, and the catalog a core ingested (--from-bus).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import type { Event } from '../../core/domain/event.ts';
import { writeDataset } from '../../training/data/write.ts';
import { captureConsole } from '../support/console.ts';

const root = mkdtempSync(join(tmpdir(), 'kestrel-train-'));
const data = join(root, 'generated');
const csv = join(root, 'plain.csv');
const models = join(root, 'models');
let users: string[] = [];

beforeAll(async () => {
  await writeDataset(data, { users: 200, items: 150, events: 15_000, seed: 5, clusters: 5, zipf: 1, driftShare: 0.1, newItemShare: 0.05 }, { format: 'jsonl' });
  // The shape the issue names: `user,item,value,timestamp` with a header, nothing else.
  const events = readFileSync(join(data, 'events.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Event);
  const rows = events.filter((e) => e.type === 'click' || e.type === 'purchase' || e.type === 'rating').map((e) => `${e.userId},${e.itemId},${e.value ?? 1},${e.timestamp}`);
  writeFileSync(csv, `user,item,value,timestamp\n${rows.join('\n')}\n`);
  users = [...new Set(events.map((e) => e.userId))].slice(0, 5);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
}, 60_000);

afterEach(() => {
  vi.mocked(console.log).mockRestore?.();
  vi.mocked(console.error).mockRestore?.();
});

afterAll(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('kestrel train / recommend / evaluate', () => {
  it('trains on a plain CSV, reports the pipeline beside its baselines, and promotes the first model', async () => {
    const io = captureConsole();
    expect(await main(['train', '--interactions', csv, '--out', models, '--epochs', '4'])).toBe(0);
    const out = io.out();
    expect(out).toMatch(/\| two-tower \+ ranker \| [\d.]+ \| [\d.]+ \| [\d.]+/);
    expect(out).toContain('| two-tower |');
    expect(out).toContain('| most-popular |');
    expect(out).toMatch(/Promoted: no model is current yet/);
    const current = JSON.parse(readFileSync(join(models, 'current.json'), 'utf8')) as { version: string };
    const dir = join(models, 'versions', current.version);
    for (const f of ['manifest.json', 'user_tower.onnx', 'item_tower.onnx', 'ranker.onnx', 'item_embeddings.f32', 'report.md', 'learning-curves.svg']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { metrics: Record<string, number> };
    expect(manifest.metrics['ndcg@10']).toBeGreaterThan(manifest.metrics['most-popular:ndcg@10'] ?? 1);
  }, 120_000);

  it('does not promote a model that is not better than the current one, and says why', async () => {
    const io = captureConsole();
    // The same data and seed train the same model: a tie on validation NDCG@10 is not a reason to switch.
    expect(await main(['train', '--interactions', csv, '--out', models, '--epochs', '4'])).toBe(0);
    expect(io.out()).toMatch(/Not promoted: .*ndcg@10/);
    const versions = readdirSync(join(models, 'versions'));
    expect(versions).toHaveLength(2);
  }, 120_000);

  it('writes one JSON line per user with k unseen items from the current model', async () => {
    const list = join(root, 'users.txt');
    writeFileSync(list, `user\n${users.join('\n')}\nsomeone-new\n`);
    const out = join(root, 'recs.jsonl');
    captureConsole();
    expect(await main(['recommend', '--model', models, '--users', list, '--k', '5', '--exclude-seen', '--out', out])).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { user: string; items: string[] });
    expect(lines.map((l) => l.user)).toEqual([...users, 'someone-new']);
    const seen = new Map<string, Set<string>>();
    for (const line of readFileSync(csv, 'utf8').trimEnd().split('\n').slice(1)) {
      const [u = '', i = ''] = line.split(',');
      if (!seen.has(u)) seen.set(u, new Set());
      seen.get(u)?.add(i);
    }
    for (const l of lines) {
      expect(l.items).toHaveLength(5);
      expect(new Set(l.items).size).toBe(5);
      for (const i of l.items) expect(seen.get(l.user)?.has(i) ?? false).toBe(false);
    }
  }, 60_000);

  it('trains from the catalog a core ingested from its event bus', async () => {
    const dataDir = join(root, 'core-data');
    captureConsole();
    expect(await main(['import', '--data', dataDir, data])).toBe(0);
    const io = captureConsole();
    expect(await main(['train', '--from-bus', '--data', dataDir, '--out', join(root, 'bus-models'), '--epochs', '3'])).toBe(0);
    expect(io.out()).toMatch(/Promoted: no model is current yet/);
  }, 120_000);

  it('evaluates the model beside every baseline on the random protocol and writes the report files', async () => {
    const out = join(root, 'eval');
    const io = captureConsole();
    expect(await main(['evaluate', '--interactions', data, '--protocol', 'random', '--k', '10', '--out', out])).toBe(0);
    for (const name of ['two-tower + ranker', 'two-tower', 'most-popular', 'item-knn', 'ease']) expect(io.out()).toContain(`| ${name}`);
    for (const f of ['report.json', 'report.md', 'learning-curves.svg']) expect(existsSync(join(out, f)), f).toBe(true);
  }, 120_000);

  it('says what to fix for a bad command line', async () => {
    const io = captureConsole();
    expect(await main(['train', '--out', models])).toBe(2);
    expect(io.err()).toContain('--interactions or --from-bus is required');
    expect(await main(['train', '--interactions', join(root, 'missing.csv'), '--out', models])).toBe(2);
    expect(io.err()).toContain('missing.csv: no such file or folder');
    expect(await main(['recommend', '--model', join(root, 'nowhere')])).toBe(2);
    expect(io.err()).toContain('neither a model directory');
    expect(await main(['evaluate', '--interactions', csv, '--protocol', 'leave-one-out'])).toBe(2);
    expect(io.err()).toContain('--protocol must be random or temporal');
    const one = join(root, 'one.csv');
    writeFileSync(one, 'user,item,value,timestamp\nu1,i1,1,1000\n');
    expect(await main(['train', '--interactions', one, '--out', join(root, 'none')])).toBe(1);
    expect(io.err()).toContain('1 positive interactions to train on; the two-tower model needs at least 16');
  });
});
