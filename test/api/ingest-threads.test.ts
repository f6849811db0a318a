// POST /v1/events through the ingest threads (core/api/ingest-pool.ts) answers exactly as the
// route does on the event loop, and writes the same records to the log; without a thread the
// route does the work itself.
import { afterEach, describe, expect, it } from 'vitest';
import { frameTexts } from '../../core/events/log/segment-log.ts';
import type { SegmentLog } from '../../core/events/log/segment-log.ts';
import { event, openTestCore, range } from './harness.ts';
import type { TestCore } from './harness.ts';

const cores: TestCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function open(ingestThreads: number): Promise<TestCore> {
  const core = await openTestCore({ ingestThreads });
  cores.push(core);
  return core;
}

/** The records in the core's log as text, in order, read through the log it has open. */
async function logTexts(core: TestCore): Promise<string[]> {
  const { log } = core.runtime.bus as unknown as { log: SegmentLog };
  const texts: string[] = [];
  for (let position = log.start; ;) {
    const records = await log.read(position, 1 << 20);
    const last = records.at(-1);
    if (last === undefined) return texts;
    texts.push(...records.map((r) => r.payload.toString('utf8')));
    position = last.next;
  }
}

async function post(core: TestCore, body: string, contentType = 'application/json'): Promise<{ status: number; body: unknown }> {
  const res = await core.app.request('/v1/events', { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, body: await res.json() };
}

describe('POST /v1/events on ingest threads', () => {
  it('answers every kind of body as the event loop does, and logs the same records', async () => {
    const [plain, threaded] = await Promise.all([open(0), open(1)]);
    const future = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const mixed = [
      event(1), { ...event(2), type: 'purchse' }, event(3, 'u2', 'i9', 'purchase'), 'not an event',
      { ...event(4), timestamp: future }, event(1), { ...event(5), timestamp: new Date(Date.now() - 1_000).toISOString() },
      { ...event(6), value: 4.5, position: 2, requestId: 'r-1', context: { page: 'home', slot: 3, 'a b': 'é ✓' } },
    ];
    const bodies: [string, string?][] = [
      [JSON.stringify({ events: mixed })],
      [JSON.stringify({ events: mixed })],
      [JSON.stringify({ events: range(300, (i) => event(`n${i}`, `u${i % 7}`, `i${i % 11}`)) })],
      [JSON.stringify({ events: [{ ...event(9), type: 'nope' }, 42] })],
      [JSON.stringify(event(10))],
      [JSON.stringify({ events: 'x' })],
      [JSON.stringify({ events: [] })],
      [JSON.stringify({ events: [event(11)], event: {} })],
      ['{"events": [' ],
      [JSON.stringify({ events: [event(12)] }), 'text/plain'],
      [JSON.stringify({ events: [event(13)] }), 'application/vnd.kestrel+json; charset=utf-8'],
    ];
    for (const [body, type] of bodies) {
      // What counts as stored (a duplicate) is what the projector stored: let both catch up.
      await Promise.all([plain.runtime.projector.drained(), threaded.runtime.projector.drained()]);
      const [a, b] = [await post(plain, body, type), await post(threaded, body, type)];
      expect(b, body.slice(0, 80)).toEqual(a);
    }
    // The batches went to the thread: the three that prepare, plus the all-invalid and the +json ones.
    expect(threaded.runtime.services.ingest?.prepared).toBe(5);
    await Promise.all([plain.runtime.projector.drained(), threaded.runtime.projector.drained()]);
    const logged = await logTexts(plain);
    expect(logged.length).toBe(4 + 300 + 1 + 1);
    expect(await logTexts(threaded)).toEqual(logged);
  });

  it('shares batches sent one at a time among its threads', async () => {
    // Each thread takes its share even under one client, so none meets a burst cold.
    const core = await open(2);
    await core.runtime.services.ingest?.whenReady();
    for (let b = 0; b < 6; b++) {
      const res = await post(core, JSON.stringify({ events: range(10, (i) => event(`b${b}-${i}`)) }));
      expect(res.status).toBe(200);
    }
    expect(core.runtime.services.ingest?.preparedByThread).toEqual([3, 3]);
  });

  it('leaves batches to the route once its threads are gone', async () => {
    const core = await open(2);
    await core.runtime.services.ingest?.close();
    const res = await post(core, JSON.stringify({ events: [event(1), event(2)] }));
    expect(res).toEqual({ status: 200, body: { accepted: 2, duplicate: 0, rejected: 0, results: [{ index: 0, status: 'accepted', id: 'e-1' }, { index: 1, status: 'accepted', id: 'e-2' }] } });
    expect(core.runtime.services.ingest?.prepared).toBe(0);
    expect((await logTexts(core)).map((t) => JSON.parse(t).id)).toEqual(['e-1', 'e-2']);
  });
});

describe('log bus publishFramed', () => {
  it('appends framed records as publish would, and refuses a block whose records do not hold what their headers say', async () => {
    const core = await open(0);
    const bus = core.runtime.bus;
    const texts = [JSON.stringify(event(1)), JSON.stringify(event(2))];
    const frames = frameTexts(texts);
    const block = Buffer.concat(frames);
    const ends = [frames[0]?.length ?? 0, block.length];
    const users = ['u1', 'u1'];
    await expect(bus.publishFramed?.(block, [ends[0] as number - 1, block.length], users)).rejects.toThrow(/record 0 .* is not one framed record/);
    await bus.publishFramed?.(block, ends, users);
    expect(await logTexts(core)).toEqual(texts);
  });
});
