// `kestrel train --served-join` (issue 5): the ranker trains on the served impressions with the
// dense features as they were logged. A core trained on generated data serves real requests (the
// real FeatureLog writes the log), more records go through FeatureLog with features the
// recomputation could never give, events come back through POST /v1/events with the request ids,
// and the rows the ranker's trainer receives are checked against the log.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { createCoreApp } from '../../core/api/app.ts';
import type { CoreApp } from '../../core/api/app.ts';
import { openSqliteCatalog } from '../../core/catalog/index.ts';
import type { Event } from '../../core/domain/event.ts';
import { openRuntime } from '../../core/runtime.ts';
import type { CoreRuntime } from '../../core/runtime.ts';
import type { ServedFeatures } from '../../core/serving/engine.ts';
import { FeatureLog } from '../../core/serving/feature-log.ts';
import type { RecommendResponse } from '../../core/serving/index.ts';
import { loadCatalogDataset } from '../../training/data/catalog-source.ts';
import type { Dataset } from '../../training/data/dataset.ts';
import { writeDataset } from '../../training/data/write.ts';
import { temporalSplit } from '../../training/eval/protocols.ts';
import { DENSE_FEATURES, DENSE_SIZE, FeatureState } from '../../training/features/feature-state.ts';
import type { RankerRows } from '../../training/features/ranker-rows.ts';
import type { WideAndDeepOptions } from '../../training/ranker/wide-deep.ts';
import { captureConsole } from '../support/console.ts';

// Every call of the ranker's trainer, with the rows it was handed.
const trainerCalls = vi.hoisted(() => [] as { dataset: Dataset; rows: RankerRows; wideBuckets: number; options: WideAndDeepOptions }[]);
vi.mock('../../training/ranker/train.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../training/ranker/train.ts')>();
  return {
    ...actual,
    trainWideAndDeep: (dataset: Dataset, rows: RankerRows, wideBuckets: number, options: WideAndDeepOptions = {}) => {
      trainerCalls.push({ dataset, rows, wideBuckets, options });
      return actual.trainWideAndDeep(dataset, rows, wideBuckets, options);
    },
  };
});

const root = mkdtempSync(join(tmpdir(), 'kestrel-served-training-'));
const generated = join(root, 'generated');
const dataDir = join(root, 'core');
const models = join(root, 'models');
const servedModels = join(root, 'served-models');
const MINUTE = 60_000;
/** Added to the logged dense values of the records written below: no recomputation gives them. */
const OFFSET = 0.375;

let runtime: CoreRuntime | undefined;
let app: CoreApp;
let users: string[] = [];
/** Real records, served now: each user's latest positive (a click below) is in their validation period. */
const real: ServedFeatures[] = [];
let anonymous: ServedFeatures | undefined;
/** Records the trainer must receive, with the labels each row must carry. */
const expected = new Map<string, { click: number; engagement: number }>();
const skippedExpected = { featureNames: 0, unranked: 0, badValues: 0, unknownItem: 0, heldOut: 0 };
let readExpected = 0;

const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
  const res = await app.request(path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
};

const key = (user: string, item: string, dense: ArrayLike<number>) => `${user}|${item}|${Array.from(dense, (v) => Math.fround(v)).join(',')}`;

/** The log's dense vector of a record shifted by OFFSET (the 0/1 flags and the position stay as served). */
function shifted(dense: readonly number[], by: number): number[] {
  return dense.map((v, f) => (DENSE_FEATURES[f]?.endsWith('Missing') || DENSE_FEATURES[f] === 'position' ? v : v + by));
}

async function serveReal(): Promise<void> {
  runtime = await openRuntime({ dataDir, log: () => undefined, serving: { models, modelPollMs: 0, refreshMs: 0 } });
  app = createCoreApp({ version: 'test', services: runtime.services, readiness: runtime.readiness, log: () => undefined });
  for (const user of [...users, 'someone-new']) {
    const { status, body } = await call<RecommendResponse>('GET', `/v1/recommendations/${user}?n=5`);
    expect(status).toBe(200);
    expect(body.items).toHaveLength(5);
  }
  await runtime.services.serving?.featureLog?.flush();
  const dir = join(dataDir, 'served');
  const records = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n')).filter((l) => l !== '').map((l) => JSON.parse(l) as ServedFeatures);
  real.push(...records.filter((r) => users.includes(r.userId)));
  anonymous = records.find((r) => r.userId === 'someone-new');
}

beforeAll(async () => {
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  await writeDataset(generated, { users: 60, items: 50, events: 3_000, seed: 5, clusters: 3 }, { format: 'jsonl' });
  const events = readFileSync(join(generated, 'events.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Event);
  const tally = new Map<string, number>();
  for (const e of events) tally.set(e.userId, (tally.get(e.userId) ?? 0) + 1);
  users = [...tally].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([u]) => u);
  captureConsole();
  expect(await main(['import', '--data', dataDir, generated])).toBe(0);
  expect(await main(['train', '--from-bus', '--data', dataDir, '--out', models, '--epochs', '1'])).toBe(0);
  await serveReal();
  expect(real.map((r) => r.userId).sort()).toEqual([...users].sort());
  // An anonymous request is logged without ranker features.
  expect(anonymous?.items.every((i) => i.dense.length === 0)).toBe(true);
  const [a, b, c] = real;
  if (!a || !b || !c || !anonymous) throw new Error('four served requests expected');

  // Records through FeatureLog, served in each user's past (an hour after their first event), with
  // the real records' items and dense features shifted by OFFSET.
  const dataset = (await loadCatalogDataset(dataDir)).dataset;
  const firstAt = (user: string) => {
    const u = dataset.userIndex.get(user);
    for (let r = 0; r < dataset.interactions.length; r++) if (dataset.interactions.user[r] === u) return dataset.interactions.timestamp[r] ?? 0;
    throw new Error(`no events of ${user}`);
  };
  const copy = (r: ServedFeatures, requestId: string, at: number, change: Partial<ServedFeatures> = {}, by = OFFSET): ServedFeatures =>
    ({ ...r, requestId, at, items: r.items.map((i) => ({ ...i, dense: shifted(i.dense, by) })), ...change });
  const past = real.map((r) => copy(r, `past-${r.userId}`, firstAt(r.userId) + 60 * MINUTE));
  const pa = past[0];
  if (!pa) throw new Error('no past record');
  // The same names in reverse order, mapped by name.
  const reversed = copy(a, 'reversed', pa.at + 60 * MINUTE, {}, 2 * OFFSET);
  reversed.features = [...reversed.features].reverse();
  reversed.items = reversed.items.map((i) => ({ ...i, dense: [...i.dense].reverse() }));
  // Served by a model with another feature set: same length, one name differs.
  const otherModel = copy(b, 'other-model', firstAt(b.userId) + 120 * MINUTE, { modelVersion: 'older', features: [...DENSE_FEATURES.slice(0, -1), 'dwellSeconds'] });
  // A value that is not a number (NaN is written as null).
  const broken = copy(c, 'broken', firstAt(c.userId) + 120 * MINUTE, {}, 3 * OFFSET);
  broken.items[0] = { ...(broken.items[0] ?? { item: '', position: 0, score: 0, dense: [], sources: [] }), dense: new Array<number>(DENSE_SIZE).fill(Number.NaN) };
  // Items the training data does not have.
  const gone = copy(a, 'gone', pa.at + 120 * MINUTE, { items: a.items.map((i, k) => ({ ...i, item: `item-gone-${k}` })) });
  const featureLog = new FeatureLog({ dir: join(dataDir, 'served'), log: () => undefined });
  for (const r of [...past, reversed, otherModel, broken, gone]) featureLog.record(r);
  await featureLog.close();

  // Events with the request ids: in each past record, a click on slot 0 and a purchase (no
  // click) on slot 1; in the real records, a click on slot 0 (now: in the validation period).
  const sent: Event[] = [];
  const ev = (r: ServedFeatures, slot: number, type: string, dt: number): Event =>
    ({ id: `${r.requestId}-${slot}-${type}`, type, userId: r.userId, itemId: r.items[slot]?.item ?? '', timestamp: r.at + dt, requestId: r.requestId, position: slot });
  for (const r of past) sent.push(ev(r, 0, 'click', 1_000), ev(r, 1, 'purchase', 2_000));
  for (const r of real) sent.push(ev(r, 0, 'click', 1_000));
  const posted = await call<{ accepted: number }>('POST', '/v1/events', { events: sent });
  expect(posted.body.accepted).toBe(sent.length);
  await runtime?.projector.drained();
  await runtime?.close();
  runtime = undefined;

  // What the trainer must receive, by (user, item, logged dense).
  for (const r of past) {
    r.items.forEach((i, slot) => expected.set(key(r.userId, i.item, i.dense), { click: slot <= 1 ? 1 : 0, engagement: slot === 1 ? 1 : 0 }));
  }
  reversed.items.forEach((i) => expected.set(key(reversed.userId, i.item, [...i.dense].reverse()), { click: 0, engagement: 0 }));
  broken.items.slice(1).forEach((i) => expected.set(key(broken.userId, i.item, i.dense), { click: 0, engagement: 0 }));
  Object.assign(skippedExpected, { featureNames: 5, unranked: 5, badValues: 1, unknownItem: 5, heldOut: 15 });
  readExpected = 5 * 11;
}, 180_000);

afterAll(async () => {
  await runtime?.close();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('kestrel train --served-join', () => {
  it('trains the ranker on the served rows with the features as logged, skipping and counting what it cannot use', async () => {
    // Precondition of the held-out count: every real record was served in its user's validation period.
    const dataset = (await loadCatalogDataset(dataDir)).dataset;
    const split = temporalSplit(dataset, { testFraction: 0.1 });
    for (const r of real) {
      const u = dataset.userIndex.get(r.userId);
      const from = Math.min(...Array.from(split.test).filter((row) => dataset.interactions.user[row] === u).map((row) => dataset.interactions.timestamp[row] ?? Infinity));
      expect(from).toBeLessThanOrEqual(r.at);
    }

    trainerCalls.length = 0;
    const io = captureConsole();
    expect(await main(['train', '--from-bus', '--data', dataDir, '--out', servedModels, '--epochs', '1', '--served-join', '--served-weight', '2'])).toBe(0);
    expect(trainerCalls).toHaveLength(1);
    const { rows, options, wideBuckets } = trainerCalls[0] ?? { rows: undefined, options: {}, wideBuckets: 0 };
    if (!rows) throw new Error('the ranker was not trained');
    const n = expected.size;
    expect(n).toBe(24);

    // The served rows come first: ids, dense features exactly as logged, labels from the join.
    const state = new FeatureState(dataset, { wideBuckets });
    const seen = new Set<string>();
    for (let r = 0; r < n; r++) {
      const user = dataset.userIds[rows.user[r] ?? -1] ?? '';
      const item = dataset.itemIds[rows.item[r] ?? -1] ?? '';
      const k = key(user, item, rows.dense.subarray(r * DENSE_SIZE, (r + 1) * DENSE_SIZE));
      const labels = expected.get(k);
      expect(labels, `row ${r}: ${k} is not a logged row`).toBeDefined();
      expect({ click: rows.click[r], engagement: rows.engagement[r] }).toEqual(labels);
      expect(rows.group?.[r]).toBe(-1);
      // The wide crosses are what serving computed: FeatureState's, with the position unknown.
      const wide: number[] = [];
      state.wide(rows.user[r] ?? 0, rows.item[r] ?? 0, -1, wide);
      expect(Array.from(rows.wideIds.subarray(rows.wideOffsets[r], rows.wideOffsets[r + 1]))).toEqual(wide);
      seen.add(k);
    }
    expect(seen.size).toBe(n);
    // No further row is a served one.
    for (let r = n; r < rows.length; r++) {
      expect(expected.has(key(dataset.userIds[rows.user[r] ?? -1] ?? '', dataset.itemIds[rows.item[r] ?? -1] ?? '', rows.dense.subarray(r * DENSE_SIZE, (r + 1) * DENSE_SIZE)))).toBe(false);
    }
    // Served rows carry --served-weight; the early-stopping slice is the share of the other rows.
    expect(Array.from(options.rowWeights?.subarray(0, n) ?? [])).toEqual(new Array<number>(n).fill(2));
    expect(options.rowWeights?.subarray(n).every((w) => w === 1)).toBe(true);
    expect(options.validationRows).toBe(Math.floor((rows.length - n) * 0.1));

    // The output and the report say what was used and why the rest was not.
    const out = io.out();
    expect(out).toContain(`Served rows: ${n} of ${readExpected} trained the ranker (loss weight 2): 6 clicked, 3 engaged`);
    expect(out).toContain(`skipped: ${skippedExpected.featureNames} served by a model with other dense features, ${skippedExpected.unranked} served without ranker features (anonymous), ` +
      `${skippedExpected.badValues} with non-finite values, ${skippedExpected.unknownItem} of items not in the training data, ${skippedExpected.heldOut} in their user's validation period`);
    expect(out).toMatch(/Promoted: no model is current yet/);
    const current = JSON.parse(readFileSync(join(servedModels, 'current.json'), 'utf8')) as { version: string };
    const dir = join(servedModels, 'versions', current.version);
    const report = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(report).toContain(`served rows used: ${n}`);
    expect(report).toContain('served rows skipped, other dense features: 5');
    expect(existsSync(join(dir, 'ranker.onnx'))).toBe(true);

    // The model loads and serves.
    runtime = await openRuntime({ dataDir, log: () => undefined, serving: { models: servedModels, modelPollMs: 0, refreshMs: 0 } });
    app = createCoreApp({ version: 'test', services: runtime.services, readiness: runtime.readiness, log: () => undefined });
    const served = await call<RecommendResponse>('GET', `/v1/recommendations/${users[0] ?? ''}?n=5`);
    expect(served.status).toBe(200);
    expect(served.body.modelVersion).toBe(current.version);
    expect(served.body.items).toHaveLength(5);
    await runtime.close();
    runtime = undefined;
  }, 180_000);

  it('trains as before without the flag: no served rows reach the ranker', async () => {
    trainerCalls.length = 0;
    const io = captureConsole();
    expect(await main(['train', '--from-bus', '--data', dataDir, '--out', join(root, 'plain-models'), '--epochs', '1'])).toBe(0);
    const rows = trainerCalls[0]?.rows;
    if (!rows) throw new Error('the ranker was not trained');
    const { dataset } = trainerCalls[0] ?? {};
    for (let r = 0; r < rows.length; r++) {
      expect(expected.has(key(dataset?.userIds[rows.user[r] ?? -1] ?? '', dataset?.itemIds[rows.item[r] ?? -1] ?? '', rows.dense.subarray(r * DENSE_SIZE, (r + 1) * DENSE_SIZE)))).toBe(false);
    }
    expect(trainerCalls[0]?.options.rowWeights).toBeUndefined();
    expect(trainerCalls[0]?.options.validationRows).toBeUndefined();
    expect(io.out()).not.toContain('Served rows');
  }, 120_000);

  it('says what to fix when there is no served log to join', async () => {
    const io = captureConsole();
    const bare = join(root, 'bare');
    mkdirSync(bare);
    openSqliteCatalog(join(bare, 'catalog.db')).close();
    expect(await main(['train', '--interactions', generated, '--data', bare, '--out', join(root, 'x'), '--served-join'])).toBe(2);
    expect(io.err()).toContain(`--served-join: no served-features log in ${join(bare, 'served')}: serve recommendations with \`kestrel serve --models DIR\` first`);
    expect(await main(['train', '--interactions', generated, '--data', join(root, 'nowhere'), '--out', join(root, 'x'), '--served-join'])).toBe(2);
    expect(io.err()).toContain(`--served-join: no catalog at ${join(root, 'nowhere', 'catalog.db')}`);
    expect(await main(['train', '--from-bus', '--data', dataDir, '--out', join(root, 'x'), '--served-join', '--served-weight', 'lots'])).toBe(2);
    expect(io.err()).toContain("--served-weight must be a number >= 0, got 'lots'");
    expect(await main(['train', '--from-bus', '--data', dataDir, '--out', join(root, 'x'), '--served-weight', '2'])).toBe(2);
    expect(io.err()).toContain('--served-weight and --served-window go with --served-join');
    expect(await main(['train', '--from-bus', '--data', dataDir, '--out', join(root, 'x'), '--served-join', '--served-window', 'soon'])).toBe(2);
    expect(io.err()).toContain("--served-window must be a duration such as 24h, 30m or 7d, got 'soon'");
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
