import { resolve } from 'node:path';
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { describeSource, loadSource } from '../../training/data/training-source.ts';
import { ease, EASE_LAMBDA, itemKnn, mostPopular } from '../../training/eval/baselines/index.ts';
import { fitAndEvaluate } from '../../training/eval/evaluate.ts';
import { randomSplit, temporalSplit } from '../../training/eval/protocols.ts';
import { markdownTable, meanRows, reportFromEvaluation } from '../../training/eval/report.ts';
import type { EvaluationReport, LearningCurve, ReportRow } from '../../training/eval/report.ts';
import { writeReportFiles } from '../../training/eval/report-files.ts';
import { twoStageFactories } from '../../training/pipeline/factories.ts';
import { EpochProgress, SILENT } from '../../training/progress.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';
import { DATA_HELP, DATA_OPTIONS, describeLoad, positiveInteger, trainingSource } from './training-data.ts';

const PROTOCOLS = {
  random: { label: 'random 75/25 per user (Microsoft Recommenders)', testFraction: 0.25 },
  temporal: { label: 'temporal: each user\'s last 20% by time', testFraction: 0.2 },
} as const;
type Protocol = keyof typeof PROTOCOLS;

const help = `Usage: kestrel evaluate --interactions FILE|FOLDER [--protocol random|temporal] [--k 10]
                        [--seeds 1,2,3] [--out DIR] [--no-models] [--progress] [data options]

Offline evaluation: splits each user's positive interactions into train and test, trains the
two-stage model on train, and measures it beside its two-tower alone and the baselines
(most-popular, item-kNN cosine, EASE λ=${EASE_LAMBDA}) on test: Precision, Recall, NDCG, MAP,
HitRate and catalog coverage @K over all items, train items excluded.

Protocols:
  random     per user, a seeded random 75% train / 25% test, as the Microsoft Recommenders
             MovieLens benchmark; several seeds are averaged.
  temporal   per user, the latest 20% by time as test (harder; closer to production).

Writes report.json, report.md and learning-curves.svg into --out (default: print only).

Options:
      --protocol <p>          random (default) or temporal.
      --k <n>                 Cutoff K (default 10).
      --seeds <list>          Seeds of the random protocol, comma-separated (default 1).
      --out <dir>             Folder for the report files.
      --no-models             Baselines only (fast).
      --progress              Show training progress on stderr.
${DATA_HELP}
  -h, --help                  Show this help.`;

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'offline evaluation of the model and the baselines (Precision/Recall/NDCG/MAP/HitRate/coverage @K)',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      ...DATA_OPTIONS,
      protocol: { type: 'string' },
      k: { type: 'string' },
      seeds: { type: 'string' },
      out: { type: 'string' },
      'no-models': { type: 'boolean' },
      progress: { type: 'boolean' },
    }, false);
    const protocol = (values.protocol ?? 'random') as Protocol;
    if (!(protocol in PROTOCOLS)) throw new UsageError(`--protocol must be random or temporal, got '${values.protocol}'`);
    const k = positiveInteger(values.k, '--k', 10);
    const seeds = (values.seeds ?? '1').split(',').map((s) => positiveInteger(s.trim(), '--seeds', 1));
    const source = trainingSource(values);
    if (!source) throw new UsageError('--interactions or --from-bus is required');
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const { dataset, report: load } = await loadSource(source);
    describeLoad(load, log);
    const curves: LearningCurve[] = [];
    const models = values['no-models'] === true ? [] : twoStageFactories({
      backend: await createWasmMatmul(),
      holdout: protocol === 'temporal' ? 'temporal' : 'random',
      observer: values.progress === true ? new EpochProgress(process.stderr) : SILENT,
    }, (model) => {
      if (curves.length > 0) return;
      const curve = model.report.twoTower.curve;
      curves.push(
        { name: 'two-tower training loss', points: curve.map((e) => ({ epoch: e.epoch, value: e.loss })), axis: 'left' },
        { name: `two-tower label-fold NDCG@${k}`, points: curve.map((e) => ({ epoch: e.epoch, value: e.validation ?? 0 })), axis: 'right' },
      );
    });
    const factories = [...models, mostPopular(), itemKnn(), ease({ lambda: EASE_LAMBDA })];
    const runs: ReportRow[][] = [];
    let last: EvaluationReport | undefined;
    for (const seed of protocol === 'random' ? seeds : [seeds[0] ?? 1]) {
      const split = protocol === 'random'
        ? randomSplit(dataset, { seed, testFraction: PROTOCOLS.random.testFraction })
        : temporalSplit(dataset, { testFraction: PROTOCOLS.temporal.testFraction });
      const result = await fitAndEvaluate(dataset, split, factories, { k, seed });
      last = reportFromEvaluation(result, { protocol: PROTOCOLS[protocol].label });
      runs.push(last.rows);
      log(`seed ${seed}: done`);
    }
    const report: EvaluationReport = {
      protocol: PROTOCOLS[protocol].label,
      dataset: describeSource(source),
      k,
      users: last?.users ?? 0,
      items: last?.items ?? 0,
      rows: meanRows(runs),
      curves,
      notes: { seeds: protocol === 'random' ? seeds.join(', ') : 'n/a' },
    };
    console.log(`${report.protocol}, ${report.users} users, ${report.items} items${protocol === 'random' ? `, mean of seeds ${seeds.join(', ')}` : ''}\n\n${markdownTable(report.rows, k)}`);
    if (values.out !== undefined) {
      await writeReportFiles(resolve(values.out), report);
      log(`wrote ${resolve(values.out)}/report.{json,md}${curves.length > 0 ? ' and learning-curves.svg' : ''}`);
    }
    return 0;
  },
};
