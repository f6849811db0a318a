// Rendering an evaluation: a JSON object, a Markdown table (one row per model or baseline) and an
// SVG line chart of learning curves, hand-written so the report needs no dependency. Pure: the
// files are written by `report-files.ts`.

import type { MetricSummary } from '../../core/domain/metrics.ts';
import type { EvaluationResult, RecommenderResult } from './evaluate.ts';

export interface ReportRow {
  name: string;
  metrics: MetricSummary;
  fitSeconds?: number;
  scoreSeconds?: number;
}

export interface CurvePoint {
  epoch: number;
  value: number;
}

/** One learning curve: training loss, validation NDCG... `axis: 'right'` gives it its own scale. */
export interface LearningCurve {
  name: string;
  points: CurvePoint[];
  axis?: 'left' | 'right';
}

export interface EvaluationReport {
  protocol: string;
  dataset?: string;
  k: number;
  users: number;
  items: number;
  rows: ReportRow[];
  curves?: LearningCurve[];
  notes?: Record<string, string | number>;
}

export function reportFromEvaluation(
  result: EvaluationResult,
  info: { protocol: string; dataset?: string; curves?: LearningCurve[]; notes?: Record<string, string | number> },
): EvaluationReport {
  return { ...info, k: result.k, users: result.users, items: result.items, rows: result.results.map(toRow) };
}

function toRow(r: RecommenderResult): ReportRow {
  return { name: r.name, metrics: r.metrics, fitSeconds: r.fitSeconds, scoreSeconds: r.scoreSeconds };
}

/** Means per recommender (matched by name, in first-run order) over several runs, e.g. seeds. */
export function meanRows(runs: readonly (readonly ReportRow[])[]): ReportRow[] {
  const groups = new Map<string, ReportRow[]>();
  for (const run of runs) {
    for (const row of run) {
      let list = groups.get(row.name);
      if (!list) groups.set(row.name, (list = []));
      list.push(row);
    }
  }
  return [...groups].map(([name, rows]) => {
    const mean = (f: (r: ReportRow) => number | undefined): number | undefined => {
      const values = rows.map(f).filter((v): v is number => v !== undefined);
      return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
    };
    const first = rows[0];
    const metrics: MetricSummary = {
      k: first?.metrics.k ?? 0,
      users: mean((r) => r.metrics.users) ?? 0,
      precision: mean((r) => r.metrics.precision) ?? 0,
      recall: mean((r) => r.metrics.recall) ?? 0,
      ndcg: mean((r) => r.metrics.ndcg) ?? 0,
      map: mean((r) => r.metrics.map) ?? 0,
      hitRate: mean((r) => r.metrics.hitRate) ?? 0,
      coverage: mean((r) => r.metrics.coverage) ?? 0,
    };
    return { name, metrics, fitSeconds: mean((r) => r.fitSeconds), scoreSeconds: mean((r) => r.scoreSeconds) };
  });
}

export function reportJson(report: EvaluationReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Metric columns of the table, in order. */
export const METRIC_COLUMNS = [
  ['Precision', 'precision'],
  ['Recall', 'recall'],
  ['NDCG', 'ndcg'],
  ['MAP', 'map'],
  ['HitRate', 'hitRate'],
  ['Coverage', 'coverage'],
] as const;

/** Rows = models and baselines; columns = each metric @K, then fit seconds when any row has them. */
export function markdownTable(rows: readonly ReportRow[], k: number): string {
  const withFit = rows.some((r) => r.fitSeconds !== undefined);
  const head = ['Model', ...METRIC_COLUMNS.map(([label]) => `${label}@${k}`), ...(withFit ? ['Fit (s)'] : [])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const r of rows) {
    const cells = [escapeMarkdown(r.name), ...METRIC_COLUMNS.map(([, key]) => r.metrics[key].toFixed(4))];
    if (withFit) cells.push(r.fitSeconds === undefined ? '' : r.fitSeconds.toFixed(2));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

export function reportMarkdown(report: EvaluationReport): string {
  const parts = [`# Offline evaluation: ${escapeMarkdown(report.protocol)}`, ''];
  const facts = [report.dataset ? `dataset ${report.dataset}` : '', `${report.users} test users`, `${report.items} items`, `K = ${report.k}`];
  parts.push(facts.filter((f) => f !== '').join(', '), '', markdownTable(report.rows, report.k));
  for (const [key, value] of Object.entries(report.notes ?? {})) parts.push(`* ${escapeMarkdown(key)}: ${escapeMarkdown(String(value))}`);
  if (report.curves && report.curves.length > 0) parts.push('', '![learning curves](learning-curves.svg)');
  return `${parts.join('\n').trimEnd()}\n`;
}

function escapeMarkdown(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

// ---- SVG learning curves -----------------------------------------------------------------------

export interface ChartOptions {
  title?: string;
  width?: number;
  height?: number;
  xLabel?: string;
}

/** Colour-blind-safe palette (Okabe & Ito 2008). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];
const MARGIN = { top: 36, right: 64, bottom: 44, left: 64 };
const TICKS = 5;
const LEGEND_ROW = 16;

interface Scale {
  min: number;
  max: number;
}

function extent(values: number[]): Scale {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { min: 0, max: 1 };
  let min = Math.min(...finite);
  let max = Math.max(...finite);
  if (min === max) {
    const pad = Math.abs(min) * 0.05 || 0.5;
    min -= pad;
    max += pad;
  }
  return { min, max };
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  return a === 0 ? '0' : a >= 1000 || a < 0.01 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

/** A line chart with one `<polyline>` per series; left and right series get separate y scales. */
export function learningCurveSvg(series: readonly LearningCurve[], options: ChartOptions = {}): string {
  const width = options.width ?? 640;
  const height = options.height ?? 360;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = extent(series.flatMap((s) => s.points.map((p) => p.epoch)));
  const left = extent(series.filter((s) => s.axis !== 'right').flatMap((s) => s.points.map((p) => p.value)));
  const hasRight = series.some((s) => s.axis === 'right');
  const right = extent(series.filter((s) => s.axis === 'right').flatMap((s) => s.points.map((p) => p.value)));
  const px = (v: number): number => MARGIN.left + ((v - x.min) / (x.max - x.min)) * plotW;
  const py = (v: number, s: Scale): number => MARGIN.top + plotH - ((v - s.min) / (s.max - s.min)) * plotH;
  const f = (v: number): string => v.toFixed(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(options.title ?? 'Learning curves')}</text>`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888888"/>`,
  ];
  for (let t = 0; t <= TICKS; t++) {
    const xv = x.min + ((x.max - x.min) * t) / TICKS;
    const lv = left.min + ((left.max - left.min) * t) / TICKS;
    const y = py(lv, left);
    out.push(`<line x1="${MARGIN.left}" y1="${f(y)}" x2="${MARGIN.left + plotW}" y2="${f(y)}" stroke="#eeeeee"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${f(y + 4)}" text-anchor="end">${tickLabel(lv)}</text>`);
    if (hasRight) {
      const rv = right.min + ((right.max - right.min) * t) / TICKS;
      out.push(`<text x="${MARGIN.left + plotW + 6}" y="${f(py(rv, right) + 4)}">${tickLabel(rv)}</text>`);
    }
    out.push(`<text x="${f(px(xv))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${tickLabel(xv)}</text>`);
  }
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 8}" text-anchor="middle">${escapeXml(options.xLabel ?? 'epoch')}</text>`);
  series.forEach((s, n) => {
    const colour = PALETTE[n % PALETTE.length] ?? '#000000';
    const scale = s.axis === 'right' ? right : left;
    const points = s.points.filter((p) => Number.isFinite(p.epoch) && Number.isFinite(p.value))
      .map((p) => `${f(px(p.epoch))},${f(py(p.value, scale))}`).join(' ');
    out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points}"/>`);
    const ly = MARGIN.top + 8 + n * LEGEND_ROW;
    const lx = MARGIN.left + 8;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`);
    const label = s.axis === 'right' ? `${s.name} (right axis)` : s.name;
    out.push(`<text x="${lx + 24}" y="${ly + 4}">${escapeXml(label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
