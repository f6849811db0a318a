// Writes a rendered evaluation report into a directory: report.json, report.md and, when the
// report carries learning curves, learning-curves.svg. The rendering is pure (report.ts).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { learningCurveSvg, reportJson, reportMarkdown } from './report.ts';
import type { EvaluationReport } from './report.ts';

export interface ReportFiles {
  json: string;
  markdown: string;
  svg?: string;
}

export async function writeReportFiles(dir: string, report: EvaluationReport): Promise<ReportFiles> {
  await mkdir(dir, { recursive: true });
  const files: ReportFiles = { json: join(dir, 'report.json'), markdown: join(dir, 'report.md') };
  await writeFile(files.json, reportJson(report));
  await writeFile(files.markdown, reportMarkdown(report));
  if (report.curves && report.curves.length > 0) {
    files.svg = join(dir, 'learning-curves.svg');
    await writeFile(files.svg, learningCurveSvg(report.curves, { title: `Learning curves (${report.protocol})` }));
  }
  return files;
}
