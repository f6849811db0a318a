import { describe, expect, it } from 'vitest';
import { DEFAULT_LATENCY_BUCKETS, Histogram, METRICS_CONTENT_TYPE, MetricsRegistry } from '../../core/serving/metrics.ts';

describe('MetricsRegistry', () => {
  it('renders a small registry in the text exposition format 0.0.4, exactly', () => {
    const registry = new MetricsRegistry();
    const requests = registry.counter('kestrel_requests_total', 'Requests served', ['route', 'status']);
    const items = registry.gauge('kestrel_snapshot_items', 'Items in the serving snapshot');
    const latency = registry.histogram('kestrel_stage_duration_seconds', 'Time per stage', ['stage'], [0.01, 0.1, 1]);
    const idle = registry.counter('kestrel_idle_total', 'Never incremented, no labels');
    registry.gauge('kestrel_model_info', 'Labelled, never set', ['version']);

    requests.inc({ route: '/v1/recommendations', status: '200' });
    requests.inc({ route: '/v1/recommendations', status: '200' }, 2);
    requests.inc({ status: '500', route: '/v1/events' });
    items.set({}, 1682);
    items.dec({}, 2);
    for (const v of [0.005, 0.01, 0.05, 2]) latency.observe({ stage: 'ranking' }, v);
    latency.observe({ stage: 'fusion' }, 0.5);

    expect(registry.render()).toBe(
      [
        '# HELP kestrel_requests_total Requests served',
        '# TYPE kestrel_requests_total counter',
        'kestrel_requests_total{route="/v1/recommendations",status="200"} 3',
        'kestrel_requests_total{route="/v1/events",status="500"} 1',
        '# HELP kestrel_snapshot_items Items in the serving snapshot',
        '# TYPE kestrel_snapshot_items gauge',
        'kestrel_snapshot_items 1680',
        '# HELP kestrel_stage_duration_seconds Time per stage',
        '# TYPE kestrel_stage_duration_seconds histogram',
        'kestrel_stage_duration_seconds_bucket{stage="ranking",le="0.01"} 2',
        'kestrel_stage_duration_seconds_bucket{stage="ranking",le="0.1"} 3',
        'kestrel_stage_duration_seconds_bucket{stage="ranking",le="1"} 3',
        'kestrel_stage_duration_seconds_bucket{stage="ranking",le="+Inf"} 4',
        'kestrel_stage_duration_seconds_sum{stage="ranking"} 2.065',
        'kestrel_stage_duration_seconds_count{stage="ranking"} 4',
        'kestrel_stage_duration_seconds_bucket{stage="fusion",le="0.01"} 0',
        'kestrel_stage_duration_seconds_bucket{stage="fusion",le="0.1"} 0',
        'kestrel_stage_duration_seconds_bucket{stage="fusion",le="1"} 1',
        'kestrel_stage_duration_seconds_bucket{stage="fusion",le="+Inf"} 1',
        'kestrel_stage_duration_seconds_sum{stage="fusion"} 0.5',
        'kestrel_stage_duration_seconds_count{stage="fusion"} 1',
        '# HELP kestrel_idle_total Never incremented, no labels',
        '# TYPE kestrel_idle_total counter',
        'kestrel_idle_total 0',
        '# HELP kestrel_model_info Labelled, never set',
        '# TYPE kestrel_model_info gauge',
        '',
      ].join('\n'),
    );
    expect(idle.value()).toBe(0);
    expect(requests.value({ route: '/v1/events', status: '500' })).toBe(1);
  });

  it('escapes label values (\\, " and newline) and help text (\\ and newline)', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('x_total', 'a \\ help\nwith "quotes"', ['v']);
    c.inc({ v: 'C:\\dir "q"\nnext' });
    expect(registry.render()).toBe(
      '# HELP x_total a \\\\ help\\nwith "quotes"\n# TYPE x_total counter\nx_total{v="C:\\\\dir \\"q\\"\\nnext"} 1\n',
    );
  });

  it('renders an unlabelled histogram with the default latency buckets, 0.0005 s to 1 s', () => {
    expect(DEFAULT_LATENCY_BUCKETS[0]).toBe(0.0005);
    expect(DEFAULT_LATENCY_BUCKETS[DEFAULT_LATENCY_BUCKETS.length - 1]).toBe(1);
    const registry = new MetricsRegistry();
    const h = registry.histogram('lat_seconds', 'Latency');
    h.observe({}, 0.0005); // on a bound: counts in that bucket (le is inclusive)
    h.observe({}, 0.003);
    const text = registry.render();
    const buckets = text.split('\n').filter((l) => l.startsWith('lat_seconds_bucket'));
    expect(buckets).toEqual([
      'lat_seconds_bucket{le="0.0005"} 1',
      'lat_seconds_bucket{le="0.001"} 1',
      'lat_seconds_bucket{le="0.0025"} 1',
      'lat_seconds_bucket{le="0.005"} 2',
      'lat_seconds_bucket{le="0.01"} 2',
      'lat_seconds_bucket{le="0.025"} 2',
      'lat_seconds_bucket{le="0.05"} 2',
      'lat_seconds_bucket{le="0.1"} 2',
      'lat_seconds_bucket{le="0.25"} 2',
      'lat_seconds_bucket{le="0.5"} 2',
      'lat_seconds_bucket{le="1"} 2',
      'lat_seconds_bucket{le="+Inf"} 2',
    ]);
    expect(text).toContain('lat_seconds_sum 0.0035\nlat_seconds_count 2\n');
  });

  it('formats special values and keeps series apart whatever their label values hold', () => {
    const registry = new MetricsRegistry();
    const g = registry.gauge('g', 'G', ['a', 'b']);
    g.set({ a: '1:x', b: 'y' }, Infinity);
    g.set({ a: '1', b: ':xy' }, -Infinity);
    g.set({ a: 'n', b: 'n' }, Number.NaN);
    expect(registry.render().split('\n').slice(2, 5)).toEqual(['g{a="1:x",b="y"} +Inf', 'g{a="1",b=":xy"} -Inf', 'g{a="n",b="n"} NaN']);
  });

  it('is empty with no metrics and exports the content type', () => {
    expect(new MetricsRegistry().render()).toBe('');
    expect(METRICS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('rejects misuse with messages that say what to fix', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('c_total', 'C', ['route']);
    expect(() => registry.gauge('c_total', 'again')).toThrow(/already registered/);
    expect(() => registry.counter('bad-name', 'x')).toThrow(/metric name 'bad-name' must match/);
    expect(() => registry.counter('d', 'x', ['__x'])).toThrow(/label name '__x'/);
    expect(() => registry.histogram('h', 'x', ['le'])).toThrow(/'le' is reserved/);
    expect(() => registry.histogram('h2', 'x', [], [1, 0.5])).toThrow(/strictly increasing/);
    expect(() => c.inc({})).toThrow(/label 'route' is missing/);
    expect(() => c.inc({ route: 'a', extra: 'b' })).toThrow(/takes the labels \[route\], got \[route, extra\]/);
    expect(() => c.inc({ route: 'a' }, -1)).toThrow(/can only go up/);
  });

  it('accepts an explicit trailing +Inf bound', () => {
    const h = new Histogram('h', 'H', [], [1, Infinity]);
    expect([...h.bounds]).toEqual([1]);
  });
});
