// A small Prometheus metrics registry, no dependency: counters, gauges and fixed-bucket
// histograms with labels, rendered in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). The serving path reports every
// stage to it, so recording is cheap: a series is found by a key built from the label values
// (the only allocation per call) and updated in place; a histogram's bounds are fixed at
// registration and its per-bucket counts are cumulated only when rendered.

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Latency buckets in seconds, 0.5 ms to 1 s: the core's stages take single-digit milliseconds,
 * and anything past a second is a failure whatever its exact duration.
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Label values by label name; every label the metric declares must be given, and no other. */
export type Labels = Readonly<Record<string, string | number>>;

const NO_LABELS: Labels = {};
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A float as the exposition format writes it (Go's ParseFloat reads JS's shortest form). */
function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

type MetricType = 'counter' | 'gauge' | 'histogram';

interface Series<S> {
  /** `a="x",b="y"`, escaped, without braces; '' for a metric without labels. */
  readonly labelText: string;
  readonly data: S;
}

abstract class Metric<S> {
  protected readonly series = new Map<string, Series<S>>();

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[], readonly type: MetricType) {
    if (!METRIC_NAME.test(name)) throw new Error(`metric name '${name}' must match ${METRIC_NAME.source}`);
    const seen = new Set<string>();
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`metric ${name}: label name '${l}' must match ${LABEL_NAME.source} and not start with __`);
      if (seen.has(l)) throw new Error(`metric ${name}: label '${l}' is declared twice`);
      seen.add(l);
    }
  }

  protected abstract create(): S;

  /** The series key of these label values; throws when a declared label is missing. */
  protected key(labels: Labels): string {
    const names = this.labelNames;
    let key = '';
    for (let i = 0; i < names.length; i++) {
      const v = labels[names[i] as string];
      if (v === undefined) throw new Error(`metric ${this.name}: label '${names[i] as string}' is missing; it takes ${names.join(', ')}`);
      // Length-prefixed, so no label value can forge another series' key.
      key = names.length === 1 ? String(v) : `${key}${String(v).length}:${String(v)}`;
    }
    return key;
  }

  /** The series for these label values, created on first use. */
  protected get(labels: Labels): S {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      let given = 0;
      for (const l in labels) if (Object.prototype.hasOwnProperty.call(labels, l)) given++;
      if (given !== this.labelNames.length) {
        throw new Error(`metric ${this.name} takes the labels [${this.labelNames.join(', ')}], got [${Object.keys(labels).join(', ')}]`);
      }
      const labelText = this.labelNames.map((n) => `${n}="${escapeLabelValue(String(labels[n]))}"`).join(',');
      s = { labelText, data: this.create() };
      this.series.set(key, s);
    }
    return s.data;
  }

  protected abstract renderSeries(lines: string[], s: Series<S>): void;

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    // A metric without labels has its one series from the start, so it renders as 0 before any
    // update (what scrapers and rate() expect); a labelled one has none until first used.
    if (this.labelNames.length === 0 && this.series.size === 0) this.get(NO_LABELS);
    for (const s of this.series.values()) this.renderSeries(lines, s);
  }
}

interface Value {
  value: number;
}

/** A metric with one number per series: counters and gauges. */
abstract class ValueMetric extends Metric<Value> {
  protected create(): Value {
    return { value: 0 };
  }

  protected renderSeries(lines: string[], s: Series<Value>): void {
    lines.push(`${this.name}${s.labelText === '' ? '' : `{${s.labelText}}`} ${formatValue(s.data.value)}`);
  }

  /** The current value; 0 for a series never updated (without creating it). */
  value(labels: Labels = NO_LABELS): number {
    return this.series.get(this.key(labels))?.data.value ?? 0;
  }
}

/** A monotonically increasing count. */
export class Counter extends ValueMetric {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, 'counter');
  }

  inc(labels: Labels = NO_LABELS, value = 1): void {
    if (!(value >= 0)) throw new RangeError(`counter ${this.name} can only go up; inc by ${value}`);
    this.get(labels).value += value;
  }
}

/** A value that goes up and down. */
export class Gauge extends ValueMetric {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, 'gauge');
  }

  set(labels: Labels, value: number): void {
    this.get(labels).value = value;
  }

  inc(labels: Labels = NO_LABELS, value = 1): void {
    this.get(labels).value += value;
  }

  dec(labels: Labels = NO_LABELS, value = 1): void {
    this.get(labels).value -= value;
  }
}

interface HistogramData {
  /** counts[i] = observations in (bounds[i-1], bounds[i]]; the last entry is (bounds[last], +Inf). */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets, with their sum and count. */
export class Histogram extends Metric<HistogramData> {
  readonly bounds: Float64Array;
  private readonly leText: string[];

  constructor(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_LATENCY_BUCKETS) {
    super(name, help, labelNames, 'histogram');
    if (labelNames.includes('le')) throw new Error(`histogram ${name}: 'le' is reserved for the bucket bound`);
    // A trailing +Inf is implied; accept it when given.
    const finite = buckets.length > 0 && buckets[buckets.length - 1] === Infinity ? buckets.slice(0, -1) : buckets;
    if (finite.length === 0) throw new Error(`histogram ${name} needs at least one finite bucket bound`);
    for (let i = 0; i < finite.length; i++) {
      const b = finite[i] as number;
      if (!Number.isFinite(b) || (i > 0 && b <= (finite[i - 1] as number))) {
        throw new Error(`histogram ${name}: bucket bounds must be finite and strictly increasing, got [${buckets.join(', ')}]`);
      }
    }
    this.bounds = Float64Array.from(finite);
    this.leText = [...finite.map(formatValue), '+Inf'];
  }

  protected create(): HistogramData {
    return { counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  observe(labels: Labels, value: number): void {
    if (Number.isNaN(value)) throw new RangeError(`histogram ${this.name} cannot observe NaN`);
    const h = this.get(labels);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    h.counts[i] = (h.counts[i] as number) + 1;
    h.sum += value;
    h.count++;
  }

  protected override renderSeries(lines: string[], s: Series<HistogramData>): void {
    const sep = s.labelText === '' ? '' : ',';
    let cumulative = 0;
    for (let i = 0; i < this.leText.length; i++) {
      cumulative += s.data.counts[i] as number;
      lines.push(`${this.name}_bucket{${s.labelText}${sep}le="${this.leText[i] as string}"} ${cumulative}`);
    }
    const braces = s.labelText === '' ? '' : `{${s.labelText}}`;
    lines.push(`${this.name}_sum${braces} ${formatValue(s.data.sum)}`, `${this.name}_count${braces} ${s.data.count}`);
  }
}

/** The metrics a process exposes, rendered in registration order. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Counter | Gauge | Histogram>();

  private add<M extends Counter | Gauge | Histogram>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** The text exposition format 0.0.4, serve with METRICS_CONTENT_TYPE. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.metrics.values()) m.render(lines);
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }
}
