// The training join of the served-features log, end to end in process: a small generated dataset
// is imported and trained on, a core with the model serves recommendations (the real FeatureLog
// writes the log), events come back through POST /v1/events with those request ids, a user is
// erased through DELETE /v1/users/{id}, and `kestrel served-join` labels what was served.
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { createCoreApp } from '../../core/api/app.ts';
import type { CoreApp } from '../../core/api/app.ts';
import type { Event } from '../../core/domain/event.ts';
import { openRuntime } from '../../core/runtime.ts';
import type { CoreRuntime } from '../../core/runtime.ts';
import { FeatureLog } from '../../core/serving/feature-log.ts';
import type { ServedFeatures } from '../../core/serving/engine.ts';
import type { RecommendResponse } from '../../core/serving/index.ts';
import { joinServedFeatures } from '../../training/data/served-join.ts';
import type { ServedJoinRow } from '../../training/data/served-join.ts';
import { writeDataset } from '../../training/data/write.ts';
import { captureConsole } from '../support/console.ts';

const root = mkdtempSync(join(tmpdir(), 'kestrel-served-join-'));
const generated = join(root, 'generated');
const dataDir = join(root, 'core');
const models = join(root, 'models');
const HOUR = 3_600_000;
let runtime: CoreRuntime;
let app: CoreApp;
/** The log record of each served request: one per user, most active users first. */
const served: ServedFeatures[] = [];
let users: string[] = [];
/** Generated events that carry a request id of the generator's own slates, which no core served. */
let generatedTagged = 0;

const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
  const res = await app.request(path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
};

function readServedLog(): ServedFeatures[] {
  const dir = join(dataDir, 'served');
  return readdirSync(dir).filter((f) => f.startsWith('served-')).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .filter((l) => l !== '').map((l) => JSON.parse(l) as ServedFeatures);
}

async function join_(options: { windowMs?: number } = {}): Promise<{ rows: ServedJoinRow[]; summary: Awaited<ReturnType<typeof joinServedFeatures>> }> {
  const rows: ServedJoinRow[] = [];
  const summary = await joinServedFeatures({ dataDir, ...options }, (row) => { rows.push(row); });
  return { rows, summary };
}

const rowOf = (rows: ServedJoinRow[], requestId: string, item: string) => rows.find((r) => r.requestId === requestId && r.itemId === item);

beforeAll(async () => {
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  await writeDataset(generated, { users: 60, items: 50, events: 3_000, seed: 5, clusters: 3 }, { format: 'jsonl' });
  const events = readFileSync(join(generated, 'events.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Event);
  const tally = new Map<string, number>();
  for (const e of events) tally.set(e.userId, (tally.get(e.userId) ?? 0) + 1);
  users = [...tally].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([u]) => u);
  // The third user is erased below, their events with them.
  generatedTagged = events.filter((e) => e.requestId !== undefined && e.userId !== users[2]).length;
  captureConsole();
  expect(await main(['import', '--data', dataDir, generated])).toBe(0);
  expect(await main(['train', '--from-bus', '--data', dataDir, '--out', models, '--epochs', '1'])).toBe(0);
  // A day's log from long ago: past the 30 days kept, it goes when serving opens the log.
  mkdirSync(join(dataDir, 'served'), { recursive: true });
  writeFileSync(join(dataDir, 'served', 'served-2020-01-01.jsonl'), '{"requestId":"old"}\n');
  runtime = await openRuntime({ dataDir, log: () => undefined, serving: { models, modelPollMs: 0, refreshMs: 0, featureLogRetentionDays: 30 } });
  app = createCoreApp({ version: 'test', services: runtime.services, readiness: runtime.readiness, log: () => undefined });

  // Three users are served one request each; the log the real FeatureLog wrote says what they saw.
  for (const user of users) {
    const { status, body } = await call<RecommendResponse>('GET', `/v1/recommendations/${user}?n=5`);
    expect(status).toBe(200);
    expect(body.items.length).toBe(5);
  }
  await runtime.services.serving?.featureLog?.flush();
  served.push(...readServedLog());
  expect(served.map((s) => s.userId)).toEqual(users);
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('kestrel served-join', () => {
  it('reads a log whose files past the retention serving was given are gone', () => {
    expect(existsSync(join(dataDir, 'served', 'served-2020-01-01.jsonl'))).toBe(false);
  });

  it('labels each served (request, item) with the events that came back, by the attribution rules', async () => {
    const [a, b, c] = served;
    if (!a || !b || !c) throw new Error('three served requests expected');
    const item = (r: ServedFeatures, p: number) => r.items[p]?.item ?? '';
    const ev = (id: string, type: string, r: ServedFeatures, itemId: string, at: number, extra: Partial<Event> = {}) =>
      ({ id, type, userId: r.userId, itemId, timestamp: at, requestId: r.requestId, ...extra });
    const stranger = 'item-never-shown';
    const posted = [
      ev('a-click-0', 'click', a, item(a, 0), a.at + 1_000, { position: 0 }),
      ev('a-click-0', 'click', a, item(a, 0), a.at + 1_000, { position: 0 }), // re-sent: the same id
      ev('a-buy-0', 'purchase', a, item(a, 0), a.at + 5_000, { position: 0 }),
      ev('a-click-2', 'click', a, item(a, 2), a.at + 2_000, { position: 4 }), // the edge moved it
      ev('a-late-3', 'click', a, item(a, 3), a.at + 2 * HOUR, { position: 3 }), // outside a 1 h window
      ev('a-early-4', 'click', a, item(a, 4), a.at - 10 * 60_000, { position: 4 }), // before it was served
      ev('a-stranger', 'click', a, stranger, a.at + 1_000), // an item the request did not show
      { ...ev('b-on-a', 'click', b, item(a, 1), a.at + 1_000), requestId: a.requestId }, // another user's event
      ev('b-like-1', 'like', b, item(b, 1), b.at + 3_000, { position: 1 }),
      ev('b-impression-2', 'impression', b, item(b, 2), b.at + 10, { position: 2 }),
      { ...ev('lost', 'click', b, item(b, 3), b.at + 1_000), requestId: 'no-such-request' },
      ev('c-click-0', 'click', c, item(c, 0), c.at + 1_000, { position: 0 }),
    ];
    const sent = await call<{ accepted: number; duplicate: number }>('POST', '/v1/events', { events: posted });
    expect(sent.body).toMatchObject({ accepted: posted.length - 1, duplicate: 1 });
    await runtime.projector.drained();
    // The third user is erased: their served records and events are gone from the join.
    expect((await call<{ removed: Record<string, number> }>('DELETE', `/v1/users/${c.userId}`)).body.removed.servedFeatureLog).toBe(1);
    await runtime.projector.drained();
    // A core that ran without the erasure hook (or a copied log) still holds their record, and a
    // crash mid-append left half a line: the join leaves both out and counts them.
    const stale = new FeatureLog({ dir: join(dataDir, 'served'), log: () => undefined });
    stale.record(c);
    await stale.close();
    appendFileSync(stale.fileFor(c.at), '{"requestId":"half');

    const { rows, summary } = await join_();
    expect(rows).toHaveLength(10);
    expect(rows.filter((r) => r.userId === c.userId)).toEqual([]);
    // Features as the log holds them, by name.
    for (const record of [a, b]) {
      for (const slot of record.items) {
        const row = rowOf(rows, record.requestId, slot.item);
        expect(row?.position).toBe(slot.position);
        expect(row?.modelVersion).toBe(record.modelVersion);
        expect(row?.servedAt).toBe(record.at);
        expect(record.features.map((f) => row?.features[f])).toEqual(slot.dense);
      }
    }
    const clicked = rows.filter((r) => r.labels.clicked === 1).map((r) => `${r.requestId}/${r.itemId}`).sort();
    // Default 24 h window: the late click counts, the one before serving does not.
    expect(clicked).toEqual([`${a.requestId}/${item(a, 0)}`, `${a.requestId}/${item(a, 2)}`, `${a.requestId}/${item(a, 3)}`].sort());
    const first = rowOf(rows, a.requestId, item(a, 0));
    expect(first?.events).toEqual({ click: 1, purchase: 1 }); // the re-sent click counted once
    expect(first?.labels).toEqual({ clicked: 1, engaged: 1, negative: 0, weight: 2 + 8 });
    expect(first?.firstEventAt).toBe(a.at + 1_000);
    expect(rowOf(rows, a.requestId, item(a, 1))?.labels.clicked).toBe(0); // b's click on a's request
    expect(rowOf(rows, b.requestId, item(b, 1))?.labels).toEqual({ clicked: 0, engaged: 1, negative: 0, weight: 4 });
    const shown = rowOf(rows, b.requestId, item(b, 2));
    expect(shown?.events).toEqual({ impression: 1 });
    expect(shown?.labels.clicked).toBe(0);
    expect(shown?.firstEventAt).toBeUndefined();
    expect(summary).toMatchObject({
      requests: 2, rows: 10, clicked: 3, engaged: 2, attributedEvents: 6, unattributed: generatedTagged + 1,
      otherUser: 1, itemNotServed: 1, outsideWindow: 1, positionMismatch: 1, duplicate: 0, erased: 1, badLines: 1,
    });

    // A 1 h window leaves the late click out.
    const short = await join_({ windowMs: HOUR });
    expect(short.rows.filter((r) => r.labels.clicked === 1)).toHaveLength(2);
    expect(short.summary.outsideWindow).toBe(2);

    // The command writes the same rows and prints the summary.
    const out = join(root, 'joined.jsonl');
    const console_ = captureConsole();
    expect(await main(['served-join', '--data', dataDir, '--out', out, '--window', '1h'])).toBe(0);
    const written = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as ServedJoinRow);
    expect(written).toEqual(short.rows);
    expect(console_.out()).toContain('2 requests (1 of erased users left out), 1 unreadable lines skipped');
    expect(console_.out()).toContain(`wrote 10 rows to ${out}`);
    expect(console_.out()).toContain('clicked 2 (CTR 20.00%)');
    expect(console_.out()).toContain(`${(generatedTagged + 1).toLocaleString('en-US')} unattributed`);
    const day = new Date(a.at).toISOString().slice(0, 10);
    expect(await main(['served-join', '--data', dataDir, '--out', out, '--since', day, '--until', day])).toBe(0);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(10);
  });

  it('says what to fix on bad input', async () => {
    const console_ = captureConsole();
    expect(await main(['served-join', '--data', dataDir, '--window', 'soon'])).toBe(2);
    expect(console_.err()).toContain("--window must be a duration such as 24h, 30m or 7d, got 'soon'");
    expect(await main(['served-join', '--data', dataDir, '--since', '2026-02-30'])).toBe(2);
    expect(console_.err()).toContain("--since must be a UTC day YYYY-MM-DD, got '2026-02-30'");
    expect(await main(['served-join', '--data', dataDir, '--since', '2026-03-02', '--until', '2026-03-01'])).toBe(2);
    expect(console_.err()).toContain('--since 2026-03-02 is after --until 2026-03-01');
    expect(await main(['served-join', '--data', dataDir, '--since', '1999-01-01', '--until', '1999-01-02'])).toBe(2);
    expect(console_.err()).toMatch(/no served-features log in .* from 1999-01-01 to 1999-01-02 \(days present: \d{4}/);
    expect(await main(['served-join', '--data', join(root, 'nowhere')])).toBe(2);
    expect(console_.err()).toContain(`no catalog at ${join(root, 'nowhere', 'catalog.db')}`);
  });
});
