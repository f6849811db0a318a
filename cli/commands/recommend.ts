import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openRegistry } from '../../core/models/index.ts';
import { ServedModel } from '../../training/pipeline/serve.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';
import { DATA_HELP, DATA_OPTIONS, describeLoad, positiveInteger, trainingSource } from './training-data.ts';

const help = `Usage: kestrel recommend --model DIR [--users FILE] [--k 10] [--exclude-seen] [--out recs.jsonl]
                         [--interactions FILE|FOLDER [--items FILE] [--users-file FILE]] [data options]

Batch recommendations from a trained model: the user tower and the ranker run from their ONNX
files on onnxruntime-node, over the item embeddings and co-visitation weights of the model
directory. Histories and ranker features come from the data the model was trained on (its
manifest records where), or from --interactions when given (newer data, the same format).
Writes one JSON line per user: {"user": "...", "items": ["...", ...], "scores": [...]}.

Options:
      --model <dir>           A model directory, or a registry folder (its current model).
      --users <file>          User ids, one per line (a header line named user/userId is skipped);
                              default every user in the data.
      --k <n>                 Items per user (default 10).
      --exclude-seen          Leave out items the user already interacted with positively.
      --out <file>            Output file (default: standard output).
      --users-file <file>     Users' attributes file when --interactions is given.
${DATA_HELP.split('\n').filter((l) => !l.includes('--users <file>')).join('\n')}
  -h, --help                  Show this help.`;

async function modelDir(path: string): Promise<string> {
  const dir = resolve(path);
  if (existsSync(join(dir, 'manifest.json'))) return dir;
  if (existsSync(join(dir, 'current.json'))) {
    const registry = await openRegistry(dir);
    const current = await registry.current();
    if (current) return registry.dir(current);
  }
  throw new UsageError(`--model ${path} is neither a model directory (manifest.json) nor a registry with a current model (current.json); train one with \`kestrel train --out ${path}\``);
}

async function readUserIds(file: string): Promise<string[]> {
  const lines = (await readFile(file, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const first = lines[0]?.split(',')[0]?.toLowerCase();
  if (first === 'user' || first === 'userid' || first === 'user_id') lines.shift();
  return lines.map((l) => l.split(',')[0] ?? l);
}

export const recommendCommand: Command = {
  name: 'recommend',
  summary: 'batch recommendations for a list of users from a trained model (ONNX)',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      ...DATA_OPTIONS,
      model: { type: 'string' },
      'users-file': { type: 'string' },
      k: { type: 'string' },
      'exclude-seen': { type: 'boolean' },
      out: { type: 'string' },
    }, false);
    if (values.model === undefined) throw new UsageError('--model is required: a model directory or a registry folder');
    const k = positiveInteger(values.k, '--k', 10);
    const served = await ServedModel.open(await modelDir(values.model));
    try {
      const source = trainingSource({ ...values, users: values['users-file'] }, false);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const { dataset, report } = await served.loadData(source);
      describeLoad(report, log);
      const users = values.users === undefined ? dataset.userIds : await readUserIds(resolve(values.users));
      const t0 = performance.now();
      const recs = await served.recommend(dataset, users, k, values['exclude-seen'] === true);
      const lines = recs.map((r) => JSON.stringify(r)).join('\n');
      if (values.out === undefined) process.stdout.write(`${lines}\n`);
      else await writeFile(resolve(values.out), `${lines}\n`);
      log(`${recs.length.toLocaleString('en-US')} users in ${((performance.now() - t0) / 1000).toFixed(1)}s${values.out === undefined ? '' : ` → ${values.out}`}`);
    } finally {
      await served.close();
    }
    return 0;
  },
};
