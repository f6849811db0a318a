// /metrics of a core without a model: the data plane's own series (events ingested, the
// projector's progress and lag, HTTP requests), as Prometheus reads them.
import { afterEach, describe, expect, it } from 'vitest';
import { event, openTestCore } from './harness.ts';
import type { TestCore } from './harness.ts';

let core: TestCore | undefined;
afterEach(async () => {
  await core?.close();
  core = undefined;
});

/** The value of the series `name{labels}` (or `name` alone) in the exposition text. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics on the data plane', () => {
  it('counts events by outcome, what the projector stored, and how far behind it is', async () => {
    core = await openTestCore();
    const c = core;
    expect((await c.call('POST', '/v1/events', { events: [event(1), event(2, 'u2'), { id: 'bad', type: 'click' }] })).status).toBe(207);
    // Stored, e-1 is a duplicate when it comes again.
    await c.runtime.projector.drained();
    expect((await c.call('POST', '/v1/events', { events: [event(1), event(3)] })).status).toBe(200);
    expect((await c.call('POST', '/v1/events', event(4))).status).toBe(200);
    await c.runtime.projector.drained();

    const res = await c.call('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await res.text();
    expect(sample(text, 'kestrel_events_ingested_total{outcome="accepted"}')).toBe(4);
    expect(sample(text, 'kestrel_events_ingested_total{outcome="duplicate"}')).toBe(1);
    expect(sample(text, 'kestrel_events_ingested_total{outcome="rejected"}')).toBe(1);
    expect(sample(text, 'kestrel_projector_events_total{result="inserted"}')).toBe(4);
    expect(sample(text, 'kestrel_projector_batches_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'kestrel_projector_lag_bytes')).toBe(0);
    expect(sample(text, 'kestrel_http_requests_total{route="POST /v1/events",status="207"}')).toBe(1);
    expect(sample(text, 'kestrel_http_requests_total{route="POST /v1/events",status="200"}')).toBe(2);
    // No Kafka, no spool; no model, no serving series.
    expect(text).not.toContain('kestrel_event_spool_bytes');
    expect(text).not.toContain('kestrel_model_info');

    // With the projector stopped, what is accepted waits in the log: the lag says how much.
    await c.runtime.projector.stop();
    expect((await c.call('POST', '/v1/events', { events: [event(5), event(6)] })).status).toBe(200);
    const behind = sample(await (await c.call('GET', '/metrics')).text(), 'kestrel_projector_lag_bytes') ?? 0;
    expect(behind).toBeGreaterThan(2 * 60);
    await c.runtime.projector.start();
    await c.runtime.projector.drained();
    expect(sample(await (await c.call('GET', '/metrics')).text(), 'kestrel_projector_lag_bytes')).toBe(0);
  });

  it('counts a batch an ingest thread prepared as the route counts its own', async () => {
    core = await openTestCore({ ingestThreads: 1 });
    const c = core;
    expect((await c.call('POST', '/v1/events', { events: [event(1), event(1), { id: 'bad', type: 'click' }, event(2)] })).status).toBe(207);
    expect(c.runtime.services.ingest?.prepared).toBe(1);
    const text = await (await c.call('GET', '/metrics')).text();
    expect(sample(text, 'kestrel_events_ingested_total{outcome="accepted"}')).toBe(2);
    expect(sample(text, 'kestrel_events_ingested_total{outcome="duplicate"}')).toBe(1);
    expect(sample(text, 'kestrel_events_ingested_total{outcome="rejected"}')).toBe(1);
  });
});
