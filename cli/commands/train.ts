import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dataPaths } from '../../core/paths.ts';
import { servedLogDays } from '../../training/data/served-join.ts';
import { markdownTable } from '../../training/eval/report.ts';
import { EpochProgress } from '../../training/progress.ts';
import { trainAndRegister, VALIDATION_METRIC } from '../../training/pipeline/run.ts';
import type { ServedRowsReport } from '../../training/ranker/served-rows.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';
import { parseWindow } from './served-join.ts';
import { DATA_HELP, DATA_OPTIONS, describeLoad, positiveInteger, trainingSource } from './training-data.ts';

const help = `Usage: kestrel train (--interactions FILE|FOLDER [--items FILE] [--users FILE] | --from-bus [--data DIR]) --out DIR
                     [--seed N] [--epochs N] [--candidates N] [--no-promote]
                     [--served-join [--served-weight W] [--served-window 24h]] [data options]

Trains the two-stage model: the two-tower retrieval model (user and item towers, in-batch
softmax with logQ correction) and the Wide&Deep ranker over its candidates and item-item
co-visitation (EASE). Each user's latest 10% of interactions are held out: the report compares
the pipeline, the two-tower alone and most-popular on them. The model directory (user_tower.onnx,
item_tower.onnx, ranker.onnx, item embeddings, manifest.json, report.md, learning-curves.svg) is
staged in the registry at --out (versions/<version>/) and becomes current (current.json) only
if it beats the current model on validation ${VALIDATION_METRIC}.

With --served-join the ranker also trains on what the core served: the served-features log of
the --data folder (<data>/served/served-YYYY-MM-DD.jsonl) joined with the events that came back
with a request id, as \`kestrel served-join\` joins them. Each served (request, item) is a row with
the dense features exactly as the ranker saw them when it served (not recomputed); its user,
item, category and user-attribute inputs come from the training data by id; click label 1 when
the item was clicked (or engaged with) from the slate, 0 when it was shown and not. Served rows
are added to the ranker's training rows with loss weight --served-weight; its early-stopping
rows and the validation above stay as without them, and so do the protocol and the promotion
rule. Skipped and counted: rows whose logged feature names are not this ranker's (served by a
model with another feature set), rows served without ranker features (anonymous requests),
items not in the training data, and rows served or acted on in their user's validation period.
With --interactions, --data names the folder whose served log and events to join. A --data
folder without a served-features log is an error (exit 2): serve with \`kestrel serve\` first, or
leave out --served-join.

Options:
      --out <dir>             Model registry folder (created if missing).
      --seed <n>              Seed; the same data and seed give the same model (default 1).
      --epochs <n>            Most two-tower epochs (early stopping picks the best; default 30).
      --candidates <n>        Candidates per retrieval source for the ranker (default 100).
      --no-promote            Stage the model without making it current.
      --served-join           Also train the ranker on the served-features log of --data (see above).
      --served-weight <w>     Loss weight of each served row against a point-in-time row (default 1).
      --served-window <d>     Attribution window after a request: a number with ms, s, m, h or d (default 24h).
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
      'served-join': { type: 'boolean' },
      'served-weight': { type: 'string' },
      'served-window': { type: 'string' },
    }, false);
    if (values.out === undefined) throw new UsageError('--out is required: the model registry folder');
    const servedJoin = values['served-join'] === true;
    if (!servedJoin && (values['served-weight'] !== undefined || values['served-window'] !== undefined)) {
      throw new UsageError('--served-weight and --served-window go with --served-join');
    }
    // With --interactions, --data is where the served log is (the data source ignores it).
    const source = trainingSource(servedJoin && values['from-bus'] !== true ? { ...values, data: undefined } : values);
    if (!source) throw new UsageError('--interactions or --from-bus is required');
    const served = servedJoin ? await servedOptions(values.data, values['served-weight'], values['served-window']) : undefined;
    const out = resolve(values.out);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const result = await trainAndRegister(source, {
      out,
      seed: positiveInteger(values.seed, '--seed', 1),
      ...(values.epochs ? { epochs: positiveInteger(values.epochs, '--epochs', 30) } : {}),
      ...(values.candidates ? { candidates: positiveInteger(values.candidates, '--candidates', 100) } : {}),
      noPromote: values['no-promote'] === true,
      ...(served ? { served } : {}),
      observer: new EpochProgress(process.stderr),
      log,
    });
    describeLoad(result.load, log);
    console.log([
      ...(result.served ? ['', ...describeServedRows(result.served, values['served-weight'] ?? '1')] : []),
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

/** The data folder of --served-join, checked: its catalog (the events) and a served-features log. */
async function servedOptions(data: string | undefined, weight: string | undefined, window: string | undefined) {
  const paths = dataPaths(data);
  if (!existsSync(paths.catalog)) {
    throw new UsageError(`--served-join: no catalog at ${paths.catalog}: point --data at the data folder \`kestrel serve\` uses`);
  }
  if ((await servedLogDays(paths.dir)).length === 0) {
    throw new UsageError(`--served-join: no served-features log in ${join(paths.dir, 'served')}: serve recommendations with \`kestrel serve --models DIR\` first (it logs the features of every request), or leave out --served-join`);
  }
  const w = weight === undefined ? 1 : Number(weight);
  if (weight !== undefined && (weight.trim() === '' || !Number.isFinite(w) || w < 0)) {
    throw new UsageError(`--served-weight must be a number >= 0, got '${weight}'`);
  }
  return { dataDir: paths.dir, weight: w, windowMs: parseWindow(window, '--served-window') };
}

/** What the served-features log gave the ranker, and why the rows it did not use were skipped. */
export function describeServedRows(r: ServedRowsReport, weight: string): string[] {
  const n = (x: number) => x.toLocaleString('en-US');
  const s = r.skipped;
  const versions = Object.entries(r.modelVersions).map(([v, k]) => `${v} (${n(k)})`).join(', ');
  return [
    `Served rows: ${n(r.used)} of ${n(r.read)} trained the ranker (loss weight ${weight}): ${n(r.clicked)} clicked, ${n(r.engaged)} engaged` +
      `${r.unknownUsers > 0 ? `; ${n(r.unknownUsers)} of users not in the training data (as cold-start users)` : ''}`,
    `  skipped: ${n(s.featureNames)} served by a model with other dense features, ${n(s.unranked)} served without ranker features (anonymous), ` +
      `${n(s.badValues)} with non-finite values, ${n(s.unknownItem)} of items not in the training data, ${n(s.heldOut)} in their user's validation period`,
    `  read ${n(r.files)} served log file(s), ${n(r.requests)} requests` +
      `${r.badLines > 0 ? `, ${n(r.badLines)} unreadable lines skipped` : ''}${r.erased > 0 ? `, ${n(r.erased)} of erased users left out` : ''}` +
      `${versions === '' ? '' : `; served by ${versions}`}`,
  ];
}
