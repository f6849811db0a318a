import { resolve } from 'node:path';
import { DEFAULT_PARAMS } from '../../training/data/synthetic.ts';
import { writeDataset } from '../../training/data/write.ts';
import type { EventFormat } from '../../training/data/write.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';

const help = `Usage: kestrel generate --users N --items M --events E --out DIR [--seed S] [--clusters K]
                        [--format jsonl|csv] [--zipf X] [--drift-share P] [--new-items P] [--progress]

Writes a synthetic dataset with planted structure, for tests, benchmarks and the quickstart:
latent taste clusters (items' categories, tags and text carry their cluster; users prefer 1-2
clusters), Zipf popularity, users whose taste drifts, cluster trends, new items published after a
cutoff with no events before it, and sessions of impressions, clicks, add-to-cart, purchases,
ratings, likes, skips and dislikes. The same flags and seed give the same files, byte for byte.

Files in DIR:
  items.jsonl    { id, categories, tags, text, attributes: { price, brand }, publishedAt }
  users.jsonl    { id, attributes: { country, ageGroup, device } }
  events.jsonl   one Event per line, in timestamp order (--format csv: events.csv instead, header
                 user,item,value,timestamp,type,id,requestId,position)
  truth.json     the planted truth: item clusters, user mixtures, drifted users, new items,
                 cutoff, parameters and counts

Options:
      --users <n>        Number of users (required).
      --items <n>        Number of items, at least 2 x clusters (required).
      --events <n>       Exact number of events (required).
      --out <dir>        Folder to write to; created if missing, files in it overwritten (required).
      --seed <n>         Seed (default ${DEFAULT_PARAMS.seed}).
      --clusters <k>     Latent taste clusters (default ${DEFAULT_PARAMS.clusters}).
      --format <f>       Events as jsonl or csv (default jsonl).
      --zipf <x>         Zipf exponent of popularity (default ${DEFAULT_PARAMS.zipf}).
      --drift-share <p>  Share of users whose taste drifts, 0-1 (default ${DEFAULT_PARAMS.driftShare}).
      --new-items <p>    Share of items published after the cutoff, 0-0.5 (default ${DEFAULT_PARAMS.newItemShare}).
      --progress         Report progress on stderr even when it is not a terminal.
  -h, --help             Show this help.`;

const MAX_COUNT = 2 ** 31 - 1;

function integer(value: string | undefined, flag: string, min: number, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > MAX_COUNT) throw new UsageError(`${flag} must be ${what}, got '${value}'`);
  return n;
}

function required<T>(value: T | undefined, flag: string): T {
  if (value === undefined) throw new UsageError(`${flag} is required`);
  return value;
}

function fraction(value: string | undefined, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > max) throw new UsageError(`${flag} must be a number from 0 to ${max}, got '${value}'`);
  return n;
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function progressReporter(enabled: boolean): ((written: number, total: number) => void) | undefined {
  if (!enabled) return undefined;
  const tty = process.stderr.isTTY === true;
  const t0 = performance.now();
  let shown = 0;
  let finished = false;
  return (written, total) => {
    const now = performance.now();
    const done = written >= total;
    if (finished || (!done && now - shown < (tty ? 200 : 2000))) return;
    finished = done;
    shown = now;
    const rate = written / Math.max((now - t0) / 1000, 1e-3);
    const eta = done ? 'done' : `ETA ${Math.ceil((total - written) / Math.max(rate, 1))}s`;
    const pct = total === 0 ? 100 : Math.floor((100 * written) / total);
    const line = `events ${formatCount(written)}/${formatCount(total)} (${pct}%) ${formatCount(Math.round(rate))}/s ${eta}`;
    process.stderr.write(tty ? `\r${line}${done ? '\n' : ''}` : `${line}\n`);
  };
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'write a synthetic dataset with planted structure (clusters, drift, new items, sessions)',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      users: { type: 'string' },
      items: { type: 'string' },
      events: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      clusters: { type: 'string' },
      format: { type: 'string' },
      zipf: { type: 'string' },
      'drift-share': { type: 'string' },
      'new-items': { type: 'string' },
      progress: { type: 'boolean' },
    }, false);
    const users = required(integer(values.users, '--users', 1, 'a positive integer'), '--users');
    const items = required(integer(values.items, '--items', 1, 'a positive integer'), '--items');
    const events = required(integer(values.events, '--events', 0, 'a non-negative integer'), '--events');
    const out = required(values.out, '--out');
    const seed = integer(values.seed, '--seed', 0, 'a non-negative integer') ?? DEFAULT_PARAMS.seed;
    const clusters = integer(values.clusters, '--clusters', 2, 'an integer of at least 2') ?? DEFAULT_PARAMS.clusters;
    if (items < 2 * clusters) throw new UsageError(`--items must be at least 2 x --clusters (${2 * clusters}), got '${items}'`);
    const format = values.format ?? 'jsonl';
    if (format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format must be jsonl or csv, got '${format}'`);
    let zipf = DEFAULT_PARAMS.zipf;
    if (values.zipf !== undefined) {
      zipf = Number(values.zipf);
      if (values.zipf.trim() === '' || !(zipf > 0 && zipf <= 5)) throw new UsageError(`--zipf must be a number in (0, 5], got '${values.zipf}'`);
    }
    const driftShare = fraction(values['drift-share'], '--drift-share', 1) ?? DEFAULT_PARAMS.driftShare;
    const newItemShare = fraction(values['new-items'], '--new-items', 0.5) ?? DEFAULT_PARAMS.newItemShare;

    const dir = resolve(out);
    const onProgress = progressReporter(values.progress === true || process.stderr.isTTY === true);
    const summary = await writeDataset(dir, { users, items, events, seed, clusters, zipf, driftShare, newItemShare }, {
      format: format satisfies EventFormat,
      ...(onProgress ? { onProgress } : {}),
    });
    const width = Math.max(...Object.keys(summary.files).map((f) => f.length));
    const types = Object.entries(summary.eventTypes).sort((a, b) => b[1] - a[1]);
    const seconds = summary.ms / 1000;
    console.log([
      `Wrote ${dir} in ${seconds.toFixed(1)}s (${formatCount(Math.round(events / Math.max(seconds, 1e-3)))} events/s)`,
      ...Object.entries(summary.files).map(([f, n]) => `  ${f.padEnd(width)}  ${f === 'truth.json' ? '' : formatCount(n)}`.trimEnd()),
      'Events by type:',
      ...types.map(([t, n]) => `  ${t.padEnd(12)} ${formatCount(n).padStart(12)}`),
      `Planted: ${clusters} clusters, ${formatCount(summary.newItems)} new items, ${formatCount(summary.driftedUsers)} drifted users, seed ${seed}`,
    ].join('\n'));
    return 0;
  },
};
