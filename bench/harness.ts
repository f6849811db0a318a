// The benchmark harness: timing, the report format, and writing bench/results/<suite>.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

export interface BenchRow {
  name: string;
  metric: string;
  value: number;
  unit: string;
}

export interface BenchReport {
  suite: string;
  commit: string;
  date: string;
  machine: { cpu: string; cores: number; node: string };
  rows: BenchRow[];
  /** Free-form facts about the run: dataset, sizes, protocol, devices. */
  notes: Record<string, string | number>;
}

export interface BenchSuite {
  description: string;
  run(notes: Record<string, string | number>): Promise<BenchRow[]>;
  /** The results file's name (without `.json`) when a setting makes a variant of the suite; default the suite's. */
  resultName?: string;
}

export interface Timing {
  median: number;
  p99: number;
  runs: number;
}

/** Deterministic uniform floats in [-0.5, 0.5) (xorshift32), so runs compare like with like. */
export function randomMatrix(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 4294967296 - 0.5;
  }
  return out;
}

/** Times `fn` (ms, via performance.now) after `warmup` unrecorded calls. */
export async function time(fn: () => unknown, { warmup = 5, runs = 30 } = {}): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  return { median: quantile(samples, 0.5), p99: quantile(samples, 0.99), runs };
}

/** Linear-interpolated quantile of an ascending array. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

function currentCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

export function makeReport(suite: string, rows: BenchRow[], notes: Record<string, string | number>): BenchReport {
  const cpu = cpus();
  return {
    suite,
    commit: currentCommit(),
    date: new Date().toISOString(),
    machine: { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, node: process.version },
    rows,
    notes,
  };
}

export function writeReport(report: BenchReport, dir: URL, name = report.suite): string {
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}.json`, dir);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file.pathname;
}

export function formatTable(rows: BenchRow[]): string {
  const cells = rows.map((r) => [r.name, r.metric, formatValue(r.value), r.unit]);
  const head = ['name', 'metric', 'value', 'unit'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => c.map((v, i) => (i === 2 ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  return abs >= 100 ? v.toFixed(1) : abs >= 1 ? v.toFixed(3) : v.toPrecision(3);
}
