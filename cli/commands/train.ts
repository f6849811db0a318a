import { resolve } from 'node:path';
import { markdownTable } from '../../training/eval/report.ts';
import { EpochProgress } from '../../training/progress.ts';
import { trainAndRegister, VALIDATION_METRIC } from '../../training/pipeline/run.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';
import { DATA_HELP, DATA_OPTIONS, describeLoad, positiveInteger, trainingSource } from './training-data.ts';

const help = `Usage: kestrel train (--interactions FILE|FOLDER [--items FILE] [--users FILE] | --from-bus [--data DIR]) --out DIR
                     [--seed N] [--epochs N] [--candidates N] [--no-promote] [data options]

Trains the two-stage model: the two-tower retrieval model (user and item towers, in-batch
softmax with logQ correction) and the Wide&Deep ranker over its candidates and item-item
co-visitation (EASE). Each user's latest 10% of interactions are held out: the report compares
the pipeline, the two-tower alone and most-popular on them. The model directory (user_tower.onnx,
item_tower.onnx, ranker.onnx, item embeddings, manifest.json, report.md, learning-curves.svg) is
staged in the registry at --out (versions/<version>/) and becomes current (current.json) only
if it beats the current model on validation ${VALIDATION_METRIC}.

Options:
      --out <dir>             Model registry folder (created if missing).
      --seed <n>              Seed; the same data and seed give the same model (default 1).
      --epochs <n>            Most two-tower epochs (early stopping picks the best; default 30).
      --candidates <n>        Candidates per retrieval source for the ranker (default 100).
      --no-promote            Stage the model without making it current.
${DATA_HELP}
  -h, --help                  Show this help.`;

export const trainCommand: Command = {
  name: 'train',
  summary: 'train the two-tower retrieval model and the Wide&Deep ranker; stage and promote in a model registry',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      ...DATA_OPTIONS,
      out: { type: 'string' },
      seed: { type: 'string' },
      epochs: { type: 'string' },
      candidates: { type: 'string' },
      'no-promote': { type: 'boolean' },
    }, false);
    if (values.out === undefined) throw new UsageError('--out is required: the model registry folder');
    const source = trainingSource(values);
    if (!source) throw new UsageError('--interactions or --from-bus is required');
    const out = resolve(values.out);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const result = await trainAndRegister(source, {
      out,
      seed: positiveInteger(values.seed, '--seed', 1),
      ...(values.epochs ? { epochs: positiveInteger(values.epochs, '--epochs', 30) } : {}),
      ...(values.candidates ? { candidates: positiveInteger(values.candidates, '--candidates', 100) } : {}),
      noPromote: values['no-promote'] === true,
      observer: new EpochProgress(process.stderr),
      log,
    });
    describeLoad(result.load, log);
    console.log([
      '',
      `Validation (${result.report.protocol}):`,
      '',
      markdownTable(result.report.rows, result.report.k),
      '',
      `Model ${result.version} in ${out}/versions/${result.version} (load ${result.seconds.load.toFixed(1)}s, train ${result.seconds.train.toFixed(1)}s, total ${result.seconds.total.toFixed(1)}s)`,
      result.decision === undefined ? 'Not promoted (--no-promote).' : `${result.decision.promoted ? 'Promoted' : 'Not promoted'}: ${result.decision.reason}`,
    ].join('\n'));
    return 0;
  },
};
