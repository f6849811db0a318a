// POST /v1/events and DELETE /v1/users/{id} through the real app on the embedded log: a 2xx means
// the events are in the log, re-sends are duplicates stored once, erasure leaves no trace.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeEvent } from '../../core/events/bus.ts';
import { openLogBus } from '../../core/events/log/index.ts';
import type { Event } from '../../core/domain/event.ts';
import { event, openTestCore, range } from './harness.ts';
import type { TestCore } from './harness.ts';

let core: TestCore;
beforeEach(async () => { core = await openTestCore(); });
afterEach(async () => { await core.close(); });

/** Every event in the log at `dir`, read straight from its segments after reopening it. */
async function readLog(dir: string): Promise<Event[]> {
  const bus = await openLogBus(dir);
  const seen: Event[] = [];
  try {
    for (let position = bus.log.start; ;) {
      const records = await bus.log.read(position, 1 << 20);
      const last = records.at(-1);
      if (last === undefined) return seen;
      seen.push(...records.map((r) => decodeEvent(r.payload, `byte ${r.offset}`)));
      position = last.next;
    }
  } finally {
    await bus.close();
  }
}

describe('POST /v1/events', () => {
  it('takes one event, and a 2xx means it is in the log', async () => {
    const res = await core.call('POST', '/v1/events', event(1));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 1, duplicate: 0, rejected: 0, results: [{ index: 0, id: 'e-1', status: 'accepted' }] });
    // Close the runtime first (as a crash after the ack would), then read the log from disk.
    await core.runtime.close();
    const logged = await readLog(core.runtime.paths.eventLog);
    expect(logged.map((e) => e.id)).toEqual(['e-1']);
  });

  it('answers a bad single event with our error format, naming the field', async () => {
    const res = await core.call('POST', '/v1/events', { ...event(1), timestamp: 'yesterday' });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: { code: 'invalid_value', details: [{ path: 'timestamp' }] } });
  });

  it('takes a batch: valid events published, invalid ones reported per entry (207)', async () => {
    const events: unknown[] = range(1_000, (i) => event(i, `u${i % 50}`, `i${i % 80}`));
    events[3] = { ...event(3), type: 'teleport' };
    events[500] = { ...event(500), userId: '' };
    const res = await core.call('POST', '/v1/events', { events });
    expect(res.status).toBe(207);
    const body = await res.json() as { accepted: number; rejected: number; results: { index: number; status: string; errors?: { path: string; message: string }[] }[] };
    expect(body).toMatchObject({ accepted: 998, duplicate: 0, rejected: 2 });
    expect(body.results[3]).toMatchObject({ status: 'rejected', errors: [{ path: 'events[3].type', message: expect.stringContaining('not a configured event type') }] });
    expect(body.results[500]).toMatchObject({ status: 'rejected', errors: [{ path: 'events[500].userId' }] });
    await core.runtime.projector.drained();
    expect(await core.runtime.catalog.interactions.count()).toBe(998);
    // Unknown users and items were created on the fly by the projector.
    expect(await (await core.call('GET', '/v1/users/u7')).json()).toMatchObject({ id: 'u7' });
    expect(await (await core.call('GET', '/v1/items/i7')).json()).toMatchObject({ id: 'i7', stub: true });
    await core.runtime.close();
    expect((await readLog(core.runtime.paths.eventLog)).length).toBe(998);
  });

  it('never takes a reserved $ event type from a client', async () => {
    const erase = { id: 'x', type: '$erase-user', userId: 'victim', itemId: '', timestamp: Date.now() };
    const res = await core.call('POST', '/v1/events', erase);
    expect(res.status).toBe(422);
    const batch = await core.call('POST', '/v1/events', { events: [erase, { ...erase, itemId: 'i1' }] });
    expect(batch.status).toBe(422);
    expect(await batch.json()).toMatchObject({ accepted: 0, rejected: 2 });
    await core.runtime.close();
    expect(await readLog(core.runtime.paths.eventLog)).toEqual([]);
  });

  it('reports re-sent events as duplicates and stores them once', async () => {
    const first = await core.call('POST', '/v1/events', { events: [event(1), event(2), event(1)] });
    expect(await first.json()).toMatchObject({ accepted: 2, duplicate: 1, results: [{ status: 'accepted' }, { status: 'accepted' }, { index: 2, id: 'e-1', status: 'duplicate' }] });
    await core.runtime.projector.drained();
    const again = await core.call('POST', '/v1/events', { events: [event(1), event(2), event(3)] });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ accepted: 1, duplicate: 2, results: [{ status: 'duplicate' }, { status: 'duplicate' }, { id: 'e-3', status: 'accepted' }] });
    // Sent again before the projector stored it: published twice, stored once.
    await core.call('POST', '/v1/events', event(4));
    await core.call('POST', '/v1/events', event(4));
    await core.runtime.projector.drained();
    expect(await core.runtime.catalog.interactions.count()).toBe(4);
    expect(core.runtime.projector.totals.inserted).toBe(4);
  });
});

describe('DELETE /v1/users/{id}', () => {
  it('erases the profile and the events, says what it removed, and a replay does not bring them back', async () => {
    await core.call('PUT', '/v1/users/gone', { attributes: { email: 'a@b.c' } });
    await core.call('POST', '/v1/events', { events: range(5, (i) => event(`g${i}`, 'gone', `i${i}`)) });
    await core.call('POST', '/v1/events', event('k', 'kept', 'i1'));
    await core.runtime.projector.drained();

    const res = await core.call('DELETE', '/v1/users/gone');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ userId: 'gone', erasedAt: expect.any(Number), removed: { profile: 1, events: 5 } });
    expect((await core.call('GET', '/v1/users/gone')).status).toBe(404);
    expect(await core.runtime.catalog.interactions.userEvents('gone')).toEqual([]);
    expect(await core.runtime.catalog.interactions.count()).toBe(1);
    expect(await core.runtime.catalog.interactions.itemCounts('i2')).toEqual({});

    // A re-sent old event of the erased user is not stored again.
    await core.call('POST', '/v1/events', event('g-late', 'gone', 'i1'));
    await core.runtime.projector.drained();
    expect(await core.runtime.catalog.interactions.userEvents('gone')).toEqual([]);

    // Erasing again is safe and says nothing was left.
    expect(await (await core.call('DELETE', '/v1/users/gone')).json()).toMatchObject({ removed: { profile: 0, events: 0 } });
  });
});
