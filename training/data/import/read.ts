// Streams a file into import records: `{ line, record }` per good line, `{ line, error }` per bad
// one. Memory stays bounded (one chunk plus one record); bytes read go to `progress`.

import { stat } from 'node:fs/promises';
import { parseDelimited } from './csv.ts';
import { detectFormat, detectKind, FORMAT_KIND } from './formats.ts';
import type { ImportFormat } from './formats.ts';
import { mappedColumns, parseMapping, resolveMapping, toEvent, toItem, toUser, attributeValue } from './mapping.ts';
import type { ConvertOptions, Mapping, Resolved, Row, TimestampUnit } from './mapping.ts';
import { ml100kItem, ml100kUser, ml1mUser, mlMovie, readGenres } from './movielens.ts';
import { ImportError, LineError } from './records.ts';
import type { ImportRecord, ImportRow, RecordKind } from './records.ts';
import { MAX_LINE_CHARS, readChunks, splitLines } from './source.ts';
import type { ProgressCallback, TextEncoding } from './source.ts';

export interface ImportOptions {
  /** Overrides the format detected from the file name. */
  format?: ImportFormat;
  /** What a csv/tsv/jsonl file holds; detected from its name by default (events otherwise). */
  kind?: RecordKind;
  /** Field → column/constant, as an object or a spec like `user=userId,type=const:view`. */
  mapping?: Mapping | string;
  /** Unit of timestamp columns: MovieLens defaults to `s`; csv/tsv/jsonl to `auto` (number = ms, else ISO). */
  timestampUnit?: TimestampUnit;
  /** Field delimiter of csv/tsv (one character; `,` and tab by default). */
  delimiter?: string;
  /** Text encoding; ml-100k and ml-1m default to latin1, everything else to utf8. */
  encoding?: TextEncoding;
  /** Separator of several categories or tags in one csv field (default `|`). */
  listSeparator?: string;
  /** Called after each chunk read with the bytes read so far and the file size. */
  progress?: ProgressCallback;
}

export interface ImportSource {
  path: string;
  format: ImportFormat;
  kind: RecordKind;
  totalBytes: number;
  /** The records; iterating may throw an `ImportError` when the header lacks a mapped column. */
  rows: AsyncIterable<ImportRow>;
}

const RATING_COLUMNS = ['user', 'item', 'rating', 'timestamp'];
const ML_RATING_DEFAULTS: Mapping = {
  user: { column: 'user' }, item: { column: 'item' }, value: { column: 'rating' },
  timestamp: { column: 'timestamp' }, type: { constant: 'rating' },
};
const ML25M_RATING_DEFAULTS: Mapping = {
  user: { column: 'userId' }, item: { column: 'movieId' }, value: { column: 'rating' },
  timestamp: { column: 'timestamp' }, type: { constant: 'rating' },
};
/** Plain (unquoted) field separators of the MovieLens files that are not CSV. */
const SEPARATOR: Partial<Record<ImportFormat, string>> = {
  'ml-100k-ratings': '\t', 'ml-100k-items': '|', 'ml-100k-users': '|',
  'ml-1m-ratings': '::', 'ml-1m-movies': '::', 'ml-1m-users': '::',
};

/** Opens a file for import: works out format and kind, and returns the stream of rows. */
export async function openImport(path: string, options: ImportOptions = {}): Promise<ImportSource> {
  const format = options.format ?? detectFormat(path);
  const kind = FORMAT_KIND[format] ?? options.kind ?? detectKind(path);
  const mapping = typeof options.mapping === 'string' ? parseMapping(options.mapping) : (options.mapping ?? {});
  const movielens = format.startsWith('ml-');
  if (movielens && kind !== 'event' && Object.keys(mapping).length > 0) {
    throw new ImportError(`a column mapping applies to csv, tsv, jsonl and MovieLens ratings, not to ${format}`);
  }
  if (options.kind && FORMAT_KIND[format] && options.kind !== FORMAT_KIND[format]) {
    throw new ImportError(`${format} holds ${FORMAT_KIND[format]}s, not ${options.kind}s`);
  }
  const { size } = await stat(path);
  const encoding = options.encoding ?? (format.startsWith('ml-100k') || format.startsWith('ml-1m') ? 'latin1' : 'utf8');
  const convert: ConvertOptions = {
    timestampUnit: options.timestampUnit ?? (movielens ? 's' : 'auto'),
    idPrefix: movielens ? 'ml' : 'import',
    idWithType: !movielens,
    listSeparator: options.listSeparator ?? '|',
  };
  const chunks = () => readChunks(path, encoding, size, options.progress);
  let rows: AsyncIterable<ImportRow>;
  const separator = SEPARATOR[format];
  if (format === 'jsonl') rows = readJsonLines(chunks(), kind, mapping, convert);
  else if (format === 'csv' || format === 'tsv') {
    rows = readTable(chunks(), options.delimiter ?? (format === 'tsv' ? '\t' : ','), kind, mapping, convert);
  } else if (format === 'ml-25m-ratings') rows = readTable(chunks(), ',', 'event', { ...ML25M_RATING_DEFAULTS, ...mapping }, convert);
  else if (format === 'ml-25m-movies') rows = readMovieCsv(chunks());
  else if (separator === undefined) throw new ImportError(`no reader for format ${format}`);
  else if (kind === 'event') {
    const resolved = resolveMapping('event', mapping, ML_RATING_DEFAULTS, RATING_COLUMNS);
    // One row reader for all lines (no closure per line): it reads the current line's fields.
    let current: string[] = [];
    const row: Row = (column) => current[RATING_COLUMNS.indexOf(column)];
    rows = readSplit(chunks(), separator, (fields) => {
      current = fields;
      return toEvent(row, resolved, convert);
    });
  } else if (format === 'ml-100k-items') {
    const genres = await readGenres(path);
    rows = readSplit(chunks(), separator, (fields) => ml100kItem(fields, genres));
  } else if (format === 'ml-1m-movies') rows = readSplit(chunks(), separator, mlMovie);
  else if (format === 'ml-100k-users') rows = readSplit(chunks(), separator, ml100kUser);
  else rows = readSplit(chunks(), separator, ml1mUser);
  return { path, format, kind, totalBytes: size, rows };
}

/** Reads every row of a file; shorthand for `(await openImport(path, options)).rows`. */
export async function* readImport(path: string, options: ImportOptions = {}): AsyncGenerator<ImportRow> {
  yield* (await openImport(path, options)).rows;
}

function failure(line: number, err: unknown): ImportRow {
  if (err instanceof LineError) return { line, error: `line ${line}: ${err.message}` };
  throw err;
}

function longLine(line: number): ImportRow {
  return { line, error: `line ${line}: longer than ${MAX_LINE_CHARS} characters; is a line break missing?` };
}

/** Lines split on a plain separator (no quoting), each converted by `convert`. */
async function* readSplit(
  chunks: AsyncIterable<string>,
  separator: string,
  convert: (fields: string[]) => ImportRecord,
): AsyncGenerator<ImportRow> {
  for await (const batch of splitLines(chunks)) {
    for (const { line, text, tooLong } of batch) {
      if (tooLong) yield longLine(line);
      if (text.trim() === '') continue;
      let row: ImportRow;
      try {
        row = { line, record: convert(text.split(separator)) };
      } catch (err) {
        row = failure(line, err);
      }
      yield row;
    }
  }
}

function converter(kind: RecordKind, resolved: Resolved, convert: ConvertOptions) {
  return (row: Row, extra?: Record<string, string | number>): ImportRecord =>
    kind === 'event' ? toEvent(row, resolved, convert) : kind === 'item' ? toItem(row, resolved, convert, extra) : toUser(row, resolved, extra);
}

const REQUIRED: Record<RecordKind, string[]> = { event: ['type', 'user', 'item', 'timestamp'], item: ['id'], user: ['id'] };

/** CSV/TSV with a header row: columns by name through the mapping; unmapped ones become attributes. */
async function* readTable(
  chunks: AsyncIterable<string>,
  delimiter: string,
  kind: RecordKind,
  mapping: Mapping,
  convert: ConvertOptions,
): AsyncGenerator<ImportRow> {
  let header: string[] | undefined;
  let toRecord: ReturnType<typeof converter> | undefined;
  let attributeColumns: string[] = [];
  let current: string[] = [];
  let index = new Map<string, number>();
  const row: Row = (column) => {
    const i = index.get(column);
    return i === undefined ? undefined : current[i];
  };
  for await (const parsed of parseDelimited(chunks, delimiter)) {
    if ('error' in parsed) {
      yield parsed;
      continue;
    }
    const { line, fields } = parsed;
    if (!header) {
      header = fields.map((f) => f.trim());
      index = new Map(header.map((c, i) => [c, i]));
      const resolved = resolveMapping(kind, mapping, {}, header);
      const missing = REQUIRED[kind].filter((target) => (resolved[target] ?? []).length === 0);
      if (missing.length > 0) {
        throw new ImportError(
          `the header (${header.join(', ')}) has no column for ${missing.map((m) => `'${m}'`).join(', ')}; map one with ${missing[0]}=<column> or ${missing[0]}=const:<value>`,
        );
      }
      const used = mappedColumns(resolved);
      attributeColumns = kind === 'event' ? [] : header.filter((c) => !used.has(c));
      toRecord = converter(kind, resolved, convert);
      continue;
    }
    if (fields.length !== header.length) {
      const detail = fields.length < header.length
        ? `missing ${header.slice(fields.length).map((c) => `'${c}'`).join(', ')}`
        : 'quote fields that contain the delimiter';
      yield { line, error: `line ${line}: has ${fields.length} columns, the header has ${header.length}; ${detail}` };
      continue;
    }
    current = fields;
    const extra: Record<string, string | number> = {};
    for (const c of attributeColumns) {
      const v = fields[index.get(c) ?? -1] ?? '';
      if (v.trim() !== '') extra[c] = attributeValue(v);
    }
    try {
      if (toRecord) yield { line, record: toRecord(row, extra) };
    } catch (err) {
      yield failure(line, err);
    }
  }
}

/** JSON Lines: one object per line, fields by key through the mapping. */
async function* readJsonLines(
  chunks: AsyncIterable<string>,
  kind: RecordKind,
  mapping: Mapping,
  convert: ConvertOptions,
): AsyncGenerator<ImportRow> {
  const toRecord = converter(kind, resolveMapping(kind, mapping), convert);
  for await (const batch of splitLines(chunks)) {
    for (const { line, text, tooLong } of batch) {
      if (tooLong) yield longLine(line);
      else if (text.trim() !== '') yield jsonRow(line, text, toRecord);
    }
  }
}

function jsonRow(line: number, text: string, toRecord: ReturnType<typeof converter>): ImportRow {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { line, error: `line ${line}: not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { line, error: `line ${line}: is ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}, not a JSON object` };
  }
  const object = value as Record<string, unknown>;
  try {
    return { line, record: toRecord((column) => object[column]) };
  } catch (err) {
    return failure(line, err);
  }
}

/** ml-25m movies.csv: `movieId,title,genres` with RFC 4180 quoting of titles. */
async function* readMovieCsv(chunks: AsyncIterable<string>): AsyncGenerator<ImportRow> {
  let first = true;
  for await (const parsed of parseDelimited(chunks, ',')) {
    if ('error' in parsed) {
      yield parsed;
      continue;
    }
    if (first) {
      first = false;
      if (parsed.fields[0]?.trim() === 'movieId') continue;
    }
    try {
      yield { line: parsed.line, record: mlMovie(parsed.fields) };
    } catch (err) {
      yield failure(parsed.line, err);
    }
  }
}
