import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MetricSummary } from '../../../core/domain/metrics.ts';
import { learningCurveSvg, markdownTable, meanRows, reportJson, reportMarkdown } from '../../../training/eval/report.ts';
import type { EvaluationReport, LearningCurve, ReportRow } from '../../../training/eval/report.ts';
import { writeReportFiles } from '../../../training/eval/report-files.ts';

const root = mkdtempSync(join(tmpdir(), 'kestrel-eval-report-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function metrics(ndcg: number): MetricSummary {
  return { k: 10, users: 3, precision: 0.3, recall: 0.2, ndcg, map: 0.1, hitRate: 0.9, coverage: 0.05 };
}

const rows: ReportRow[] = [
  { name: 'two-tower', metrics: metrics(0.45), fitSeconds: 12.5 },
  { name: 'ease(λ=500)', metrics: metrics(0.48), fitSeconds: 3 },
  { name: 'most-popular', metrics: metrics(0.25) },
];
const curves: LearningCurve[] = [
  { name: 'train loss', points: [{ epoch: 1, value: 0.9 }, { epoch: 2, value: 0.6 }, { epoch: 3, value: 0.5 }] },
  { name: 'val NDCG@10 <best>', axis: 'right', points: [{ epoch: 1, value: 0.3 }, { epoch: 2, value: 0.4 }, { epoch: 3, value: 0.42 }] },
];
const report: EvaluationReport = { protocol: 'random 75/25 per user', dataset: 'synthetic', k: 10, users: 3, items: 40, rows, curves };

/** Minimal XML well-formedness check: balanced tags, quoted attributes, nothing outside the root. */
function parseXml(text: string): { tags: string[] } {
  const stack: string[] = [];
  const tags: string[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([<>])/g;
  let m: RegExpExecArray | null;
  let roots = 0;
  while ((m = re.exec(text)) !== null) {
    if (m[5]) throw new Error(`stray '${m[5]}' at ${m.index}`);
    const [, closing, name = '', , selfClosing] = m;
    if (closing) {
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}> at ${m.index}`);
    } else {
      if (stack.length === 0) roots++;
      tags.push(name);
      if (!selfClosing) stack.push(name);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return { tags };
}

describe('markdownTable', () => {
  it('has a row per model and every metric column @K, plus fit seconds', () => {
    const md = markdownTable(rows, 10);
    const lines = md.trimEnd().split('\n');
    expect(lines[0]).toBe('| Model | Precision@10 | Recall@10 | NDCG@10 | MAP@10 | HitRate@10 | Coverage@10 | Fit (s) |');
    expect(lines).toHaveLength(2 + rows.length);
    expect(lines[3]).toBe('| ease(λ=500) | 0.3000 | 0.2000 | 0.4800 | 0.1000 | 0.9000 | 0.0500 | 3.00 |');
    expect(lines[4]?.endsWith('| 0.0500 |  |')).toBe(true);
    for (const line of lines) expect(line.split('|')).toHaveLength(10);
  });

  it('leaves the fit column out when no row has one', () => {
    expect(markdownTable([{ name: 'a', metrics: metrics(0.1) }], 5).split('\n')[0]).not.toContain('Fit');
  });
});

describe('learningCurveSvg', () => {
  it('is well-formed XML with one polyline per series and escaped labels', () => {
    const svg = learningCurveSvg(curves, { title: 'loss & NDCG' });
    const { tags } = parseXml(svg);
    expect(tags[0]).toBe('svg');
    expect(tags.filter((t) => t === 'polyline')).toHaveLength(curves.length);
    expect(svg).toContain('loss &amp; NDCG');
    expect(svg).toContain('val NDCG@10 &lt;best&gt; (right axis)');
    const points = [...svg.matchAll(/<polyline[^>]*points="([^"]*)"/g)].map((m) => (m[1] ?? '').split(' '));
    expect(points.map((p) => p.length)).toEqual([3, 3]);
  });

  it('survives empty and flat series', () => {
    const svg = learningCurveSvg([{ name: 'empty', points: [] }, { name: 'flat', points: [{ epoch: 1, value: 2 }] }]);
    expect(parseXml(svg).tags.filter((t) => t === 'polyline')).toHaveLength(2);
    expect(svg).not.toContain('NaN');
  });
});

describe('reports', () => {
  it('averages rows over runs by name', () => {
    const mean = meanRows([[rows[0] as ReportRow], [{ ...(rows[0] as ReportRow), metrics: metrics(0.55), fitSeconds: 7.5 }]]);
    expect(mean).toHaveLength(1);
    expect(mean[0]?.metrics.ndcg).toBeCloseTo(0.5, 12);
    expect(mean[0]?.fitSeconds).toBeCloseTo(10, 12);
  });

  it('writes JSON, Markdown and the SVG chart into a directory', async () => {
    const dir = join(root, 'out');
    const files = await writeReportFiles(dir, report);
    expect(JSON.parse(readFileSync(files.json, 'utf8'))).toEqual(JSON.parse(reportJson(report)));
    const md = readFileSync(files.markdown, 'utf8');
    expect(md).toBe(reportMarkdown(report));
    expect(md).toContain('| Model | Precision@10');
    expect(md).toContain('learning-curves.svg');
    expect(files.svg).toBeDefined();
    parseXml(readFileSync(files.svg ?? '', 'utf8'));
  });
});
