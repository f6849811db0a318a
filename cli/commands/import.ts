import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { createProjector, logPositions, openSqliteCatalog } from '../../core/catalog/index.ts';
import type { SqliteCatalog } from '../../core/catalog/index.ts';
import { openLogBus } from '../../core/events/log/index.ts';
import { dataPaths } from '../../core/paths.ts';
import {
  ImportError, IMPORT_FORMATS, isImportFormat, openImport, parseMapping, ProgressBar, TIMESTAMP_UNITS,
} from '../../training/data/import/index.ts';
import type { ImportOptions, ImportSource, RecordKind, TextEncoding, TimestampUnit } from '../../training/data/import/index.ts';
import { createImportSink, emptyTally } from '../../training/data/import/sink.ts';
import type { ImportTally } from '../../training/data/import/sink.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';

const help = `Usage: kestrel import [--data DIR] [--format F] [--kind event|item|user] [--map SPEC]
                      [--timestamp-unit s|ms|iso|auto] [--delimiter C] [--encoding utf8|latin1]
                      [--no-create-unknown] FILE|FOLDER...

Loads events, items and users from files into the data folder: items and users into the
catalog, events into the event log, then waits until the interaction table holds them all.
Every record is checked with the REST API's rules; bad rows are reported (reason, line numbers)
and skipped, never fatal. Records whose id is already stored are counted as duplicates: events
are not stored twice, items and users are replaced by the file's version.

Files: CSV and TSV with a header, JSON Lines (.jsonl/.ndjson), and the MovieLens files (ml-100k
u.data/u.item/u.user, ml-1m ratings.dat/movies.dat/users.dat, ml-25m ratings.csv/movies.csv).
A folder stands for the files in it: a MovieLens release (ml-100k, ml-1m, ml-25m) or what
\`kestrel export\` and \`kestrel generate\` write (items.jsonl, users.jsonl, events.jsonl);
items and users first, then events.

The event log takes one writer: stop \`kestrel serve\` on the same data folder first, or send
the data through the API.

Options:
      --data <dir>            Data folder (default $KESTREL_DATA_DIR or .kestrel).
      --format <f>            File format instead of the one the name implies:
                              ${IMPORT_FORMATS.join(', ')}.
      --kind <k>              What a csv/tsv/jsonl file holds: event, item or user (default: from
                              the name, e.g. items.csv; events otherwise).
      --map <spec>            Column mapping, e.g. user=userId,item=movie,type=const:view.
      --timestamp-unit <u>    s, ms, iso or auto (default: s for MovieLens, auto otherwise).
      --delimiter <c>         Field delimiter of csv/tsv (one character).
      --encoding <e>          utf8 or latin1 (default: latin1 for ml-100k/ml-1m, utf8 otherwise).
      --no-create-unknown     Reject events whose user or item is not stored (default: create them).
  -h, --help                  Show this help.

Exit status: 0 when every valid record was imported (rejected rows are reported, not fatal),
1 on an I/O error or when the event log is in use, 2 on a usage error.`;

const RECORD_KINDS: readonly RecordKind[] = ['event', 'item', 'user'];

/** The files of a known folder layout, in import order (catalog before events). */
const FOLDER_LAYOUTS: readonly (readonly string[])[] = [
  ['u.item', 'u.user', 'u.data'],
  ['movies.dat', 'users.dat', 'ratings.dat'],
  ['movies.csv', 'ratings.csv'],
  ['items.jsonl', 'users.jsonl', 'events.jsonl'],
  ['items.jsonl', 'users.jsonl', 'events.csv'],
];

interface Planned {
  path: string;
  /** Came from a folder: --format/--kind do not apply, --map only to its events file. */
  fromFolder: boolean;
}

/** Expands folders into their files; throws a UsageError for a folder of no known layout. */
export function planFiles(args: readonly string[]): Planned[] {
  const out: Planned[] = [];
  for (const arg of args) {
    const path = resolve(arg);
    if (!existsSync(path) || !statSync(path).isDirectory()) {
      out.push({ path, fromFolder: false });
      continue;
    }
    // The layout whose events file is there; its catalog files are optional (ml-25m has no users).
    const layout = FOLDER_LAYOUTS.find((files) => existsSync(join(path, files.at(-1) as string)));
    if (layout === undefined) {
      throw new UsageError(`folder ${arg} holds no u.data, ratings.dat, ratings.csv or events.jsonl/csv; name the files to import instead`);
    }
    for (const f of layout) if (existsSync(join(path, f))) out.push({ path: join(path, f), fromFolder: true });
  }
  return out;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

interface FileResult {
  source: ImportSource;
  tally: ImportTally;
  ms: number;
}

/** The summary: a table of files and total, then the rejection reasons per file. */
export function formatSummary(results: readonly FileResult[], dir: string, totalMs: number): string {
  const total = emptyTally();
  for (const { tally } of results) {
    for (const k of ['read', 'accepted', 'duplicates', 'rejected'] as const) total[k] += tally[k];
  }
  const rate = (n: number, ms: number) => count(Math.round(n / Math.max(ms / 1000, 1e-3)));
  const head = ['file', 'format', 'read', 'accepted', 'rejected', 'duplicates', 'time', 'rows/s'];
  const rows = results.map(({ source, tally, ms }) => [
    basename(source.path), `${source.format} (${source.kind}s)`, count(tally.read), count(tally.accepted),
    count(tally.rejected), count(tally.duplicates), `${(ms / 1000).toFixed(1)}s`, rate(tally.read, ms),
  ]);
  rows.push(['total', '', count(total.read), count(total.accepted), count(total.rejected), count(total.duplicates),
    `${(totalMs / 1000).toFixed(1)}s`, rate(total.read, totalMs)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  const out = [`Imported into ${dir}`, line(head), ...rows.map(line)];
  for (const { source, tally } of results) {
    if (tally.reasons.size === 0) continue;
    out.push('', `Rejected in ${basename(source.path)} (${count(tally.rejected)}), by reason:`);
    for (const r of [...tally.reasons.values()].sort((a, b) => b.count - a.count)) {
      const more = r.count > r.lines.length ? ', ...' : '';
      out.push(`  ${count(r.count).padStart(7)}  ${r.example}`, `           lines ${r.lines.join(', ')}${more}`);
    }
  }
  return out.join('\n');
}

function choice<T extends string>(value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

function usageFrom(error: unknown): never {
  if (error instanceof ImportError) throw new UsageError(error.message);
  throw error;
}

export const importCommand: Command = {
  name: 'import',
  summary: 'load events, items and users from CSV/TSV/JSON Lines/MovieLens files',
  help,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, {
      data: { type: 'string' },
      format: { type: 'string' },
      kind: { type: 'string' },
      map: { type: 'string' },
      'timestamp-unit': { type: 'string' },
      delimiter: { type: 'string' },
      encoding: { type: 'string' },
      'no-create-unknown': { type: 'boolean' },
    });
    if (positionals.length === 0) throw new UsageError('name at least one file or folder to import');
    const format = values.format;
    if (format !== undefined && !isImportFormat(format)) throw new UsageError(`--format must be one of ${IMPORT_FORMATS.join(', ')}, got '${format}'`);
    const kind = choice(values.kind, '--kind', RECORD_KINDS);
    const timestampUnit = choice<TimestampUnit>(values['timestamp-unit'], '--timestamp-unit', TIMESTAMP_UNITS);
    const encoding = choice<TextEncoding>(values.encoding, '--encoding', ['utf8', 'latin1']);
    const delimiter = values.delimiter === '\\t' ? '\t' : values.delimiter;
    if (delimiter !== undefined && delimiter.length !== 1) throw new UsageError(`--delimiter must be one character (\\t for tab), got '${delimiter}'`);
    let mapping;
    try {
      mapping = values.map === undefined ? undefined : parseMapping(values.map);
    } catch (error) {
      usageFrom(error);
    }
    const createUnknown = values['no-create-unknown'] !== true;

    const planned = planFiles(positionals);
    if (planned.some((p) => p.fromFolder) && (format !== undefined || kind !== undefined)) {
      throw new UsageError('--format and --kind apply to files, not to a folder; name the files instead');
    }
    // Open every file before writing anything: a wrong name or format stops the import clean.
    const sources: { source: ImportSource; options: ImportOptions }[] = [];
    for (const { path, fromFolder } of planned) {
      if (!existsSync(path)) throw new Error(`cannot read ${path}: no such file or folder`);
      const options: ImportOptions = {
        ...(format ? { format } : {}), ...(kind ? { kind } : {}), ...(timestampUnit ? { timestampUnit } : {}),
        ...(delimiter ? { delimiter } : {}), ...(encoding ? { encoding } : {}),
      };
      try {
        let source = await openImport(path, options);
        if (mapping !== undefined && (!fromFolder || source.kind === 'event')) {
          options.mapping = mapping;
          source = await openImport(path, options);
        }
        sources.push({ source, options });
      } catch (error) {
        usageFrom(error);
      }
    }

    const paths = dataPaths(values.data);
    await mkdir(paths.dir, { recursive: true });
    const bus = await openLogBus(paths.eventLog);
    let catalog: SqliteCatalog | undefined;
    try {
      catalog = openSqliteCatalog(paths.catalog);
      const db = catalog.db;
      // One lookup per batch (a JSON array of ids), not one statement call per event.
      const stored = db.prepare<[string], string>('SELECT id FROM interactions WHERE id IN (SELECT value FROM json_each(?))').pluck();
      const userExists = db.prepare<[string], number>('SELECT 1 FROM users WHERE id = ?').pluck();
      const itemExists = db.prepare<[string], number>('SELECT 1 FROM items WHERE id = ?').pluck();
      const sink = createImportSink({
        items: catalog.items,
        users: catalog.users,
        bus,
        storedEvents: (ids) => new Set(stored.all(JSON.stringify(ids))),
        userExists: (id) => userExists.get(id) !== undefined,
        itemExists: (id) => itemExists.get(id) !== undefined,
      }, { createUnknown });
      const projector = createProjector({
        bus, store: catalog.interactions, createUnknown, positions: logPositions(bus),
        onBatch: (_report, deliveries) => sink.projected(deliveries.map((d) => d.event.id)),
      });
      await projector.start();
      try {
        // Events already in the log reach the table first, so "already stored" is exact.
        await projector.drained();
        const t0 = performance.now();
        const results: FileResult[] = [];
        for (const { source: planned, options } of sources) {
          const tally = emptyTally();
          const bar = new ProgressBar(process.stderr, { label: basename(planned.path) });
          const started = performance.now();
          // Reopened with the progress callback (opening reads nothing but the file's size).
          const source = await openImport(planned.path, { ...options, progress: (bytes, total) => bar.update(bytes, total, tally.read) });
          try {
            await sink.importRows(source.kind, source.rows, tally);
          } catch (error) {
            usageFrom(error);
          }
          bar.update(source.totalBytes, source.totalBytes, tally.read);
          bar.done();
          results.push({ source, tally, ms: performance.now() - started });
        }
        await projector.drained();
        const totals = projector.totals;
        console.log(formatSummary(results, paths.dir, performance.now() - t0));
        const notStored = [
          totals.unknown > 0 ? `${count(totals.unknown)} events naming an unknown user or item` : '',
          totals.erased > 0 ? `${count(totals.erased)} events of erased users` : '',
        ].filter(Boolean);
        console.log(`Interactions stored: ${count(await catalog.interactions.count())}` +
          ` (${count(totals.inserted)} new; created from events: ${count(totals.createdUsers)} users, ${count(totals.createdItems)} stub items)` +
          (notStored.length > 0 ? `; not stored: ${notStored.join(', ')}` : ''));
      } finally {
        await projector.stop();
      }
    } finally {
      await bus.close();
      catalog?.close();
    }
    return 0;
  },
};
