// The data flags `train`, `evaluate` and `recommend` share: where interactions, items and users
// are, how to read them, and which event types count with which weight.

import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dataPaths } from '../../core/paths.ts';
import { loadEventTypes } from '../../core/runtime.ts';
import { IMPORT_FORMATS, isImportFormat, parseMapping, TIMESTAMP_UNITS } from '../../training/data/import/index.ts';
import type { TimestampUnit } from '../../training/data/import/index.ts';
import type { TrainingSource } from '../../training/pipeline/model-dir.ts';
import { UsageError } from '../command.ts';

export const DATA_OPTIONS = {
  interactions: { type: 'string' },
  items: { type: 'string' },
  users: { type: 'string' },
  format: { type: 'string' },
  map: { type: 'string' },
  'timestamp-unit': { type: 'string' },
  'event-types': { type: 'string' },
  'from-bus': { type: 'boolean' },
  data: { type: 'string' },
} as const;

export const DATA_HELP = `      --from-bus              Read what the core ingested instead of files: the interactions the
                              projector consumed from the event bus into the catalog of --data,
                              with its items and users (erased users are gone). Works while
                              \`kestrel serve\` runs.
      --data <dir>            The core's data folder for --from-bus (default $KESTREL_DATA_DIR or .kestrel).
      --interactions <f>      Interactions: CSV/TSV with a header (user,item,value,timestamp[,type]),
                              JSON Lines of events, or MovieLens ratings; or a folder that
                              \`kestrel generate\`/\`export\` wrote, or a MovieLens release.
      --items <file>          Items (categories, tags, text, attributes): content for cold start.
      --users <file>          Users (attributes).
      --format <f>            Format of the interactions file: ${IMPORT_FORMATS.join(', ')}.
      --map <spec>            Column mapping, e.g. user=userId,item=movie,value=stars.
      --timestamp-unit <u>    ${TIMESTAMP_UNITS.join(', ')} (default: from the format).
      --event-types <file>    Event types and weights (see \`kestrel serve --help\`); default the built-in set.`;

/** Folder layouts: interactions, items, users. */
const LAYOUTS: readonly [string, string | undefined, string | undefined][] = [
  ['u.data', 'u.item', 'u.user'],
  ['ratings.dat', 'movies.dat', 'users.dat'],
  ['ratings.csv', 'movies.csv', undefined],
  ['events.jsonl', 'items.jsonl', 'users.jsonl'],
  ['events.csv', 'items.jsonl', 'users.jsonl'],
];

interface DataValues {
  interactions?: string | undefined;
  items?: string | undefined;
  users?: string | undefined;
  format?: string | undefined;
  map?: string | undefined;
  'timestamp-unit'?: string | undefined;
  'event-types'?: string | undefined;
  'from-bus'?: boolean | undefined;
  data?: string | undefined;
}

export function trainingSource(values: DataValues, required = true): TrainingSource | undefined {
  if (values['from-bus'] === true) {
    if (values.interactions !== undefined) throw new UsageError('give --from-bus or --interactions, not both');
    const eventTypes = loadEventTypes(values['event-types'], undefined);
    return { catalog: dataPaths(values.data).dir, ...(eventTypes ? { eventTypes } : {}) };
  }
  if (values.data !== undefined) throw new UsageError('--data goes with --from-bus');
  if (values.interactions === undefined) {
    if (required) throw new UsageError('--interactions or --from-bus is required: a file of interactions, a folder such as `kestrel generate` writes, or the core\'s ingested data');
    return undefined;
  }
  let interactions = resolve(values.interactions);
  let items = values.items === undefined ? undefined : resolve(values.items);
  let users = values.users === undefined ? undefined : resolve(values.users);
  if (!existsSync(interactions)) throw new UsageError(`--interactions ${values.interactions}: no such file or folder`);
  if (statSync(interactions).isDirectory()) {
    const dir = interactions;
    const layout = LAYOUTS.find(([file]) => existsSync(join(dir, file)));
    if (!layout) throw new UsageError(`--interactions ${values.interactions} is a folder without ${LAYOUTS.map(([f]) => f).join(', ')}`);
    interactions = join(dir, layout[0]);
    if (items === undefined && layout[1] !== undefined && existsSync(join(dir, layout[1]))) items = join(dir, layout[1]);
    if (users === undefined && layout[2] !== undefined && existsSync(join(dir, layout[2]))) users = join(dir, layout[2]);
  }
  for (const [flag, file] of [['--items', items], ['--users', users]] as const) {
    if (file !== undefined && !existsSync(file)) throw new UsageError(`${flag} ${file}: no such file`);
  }
  if (values.format !== undefined && !isImportFormat(values.format)) {
    throw new UsageError(`--format must be one of ${IMPORT_FORMATS.join(', ')}, got '${values.format}'`);
  }
  const unit = values['timestamp-unit'];
  if (unit !== undefined && !(TIMESTAMP_UNITS as readonly string[]).includes(unit)) {
    throw new UsageError(`--timestamp-unit must be one of ${TIMESTAMP_UNITS.join(', ')}, got '${unit}'`);
  }
  if (values.map !== undefined) parseMapping(values.map);
  const importOptions: NonNullable<Extract<TrainingSource, { interactions: string }>['importOptions']> = {};
  if (values.format !== undefined && isImportFormat(values.format)) importOptions.format = values.format;
  if (values.map !== undefined) importOptions.mapping = values.map;
  if (unit !== undefined) importOptions.timestampUnit = unit as TimestampUnit;
  const eventTypes = loadEventTypes(values['event-types'], undefined);
  return {
    interactions,
    ...(items ? { items } : {}),
    ...(users ? { users } : {}),
    ...(Object.keys(importOptions).length > 0 ? { importOptions } : {}),
    ...(eventTypes ? { eventTypes } : {}),
  };
}

/** Prints what loading skipped, so a bad file never fails silently. */
export function describeLoad(report: { files: { path: string; accepted: number; rejected: number; errors: string[] }[] }, log: (line: string) => void): void {
  for (const f of report.files) {
    log(`read ${f.path}: ${f.accepted.toLocaleString('en-US')} records${f.rejected > 0 ? `, ${f.rejected.toLocaleString('en-US')} rejected` : ''}`);
    for (const e of f.errors.slice(0, 5)) log(`  ${e}`);
  }
}

export function positiveInteger(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${value}'`);
  return n;
}
