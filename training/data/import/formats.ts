// The file formats the importer reads, and which one a file is, judged by its name.

import { basename } from 'node:path';
import { ImportError } from './records.ts';
import type { RecordKind } from './records.ts';

export const IMPORT_FORMATS = [
  'csv', 'tsv', 'jsonl',
  'ml-100k-ratings', 'ml-100k-items', 'ml-100k-users',
  'ml-1m-ratings', 'ml-1m-movies', 'ml-1m-users',
  'ml-25m-ratings', 'ml-25m-movies',
] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** What each MovieLens format holds; csv/tsv/jsonl hold whatever `kind` says. */
export const FORMAT_KIND: Partial<Record<ImportFormat, RecordKind>> = {
  'ml-100k-ratings': 'event', 'ml-100k-items': 'item', 'ml-100k-users': 'user',
  'ml-1m-ratings': 'event', 'ml-1m-movies': 'item', 'ml-1m-users': 'user',
  'ml-25m-ratings': 'event', 'ml-25m-movies': 'item',
};

const BY_NAME: Record<string, ImportFormat> = {
  'u.data': 'ml-100k-ratings', 'u.item': 'ml-100k-items', 'u.user': 'ml-100k-users',
  'ratings.dat': 'ml-1m-ratings', 'movies.dat': 'ml-1m-movies', 'users.dat': 'ml-1m-users',
  'ratings.csv': 'ml-25m-ratings', 'movies.csv': 'ml-25m-movies',
};

/** The format a file name implies; throws when the name does not say. */
export function detectFormat(path: string): ImportFormat {
  const name = basename(path).toLowerCase();
  const known = BY_NAME[name];
  if (known) return known;
  // ml-100k's train/test splits (u1.base ... ub.test) have u.data's format.
  if (/^u[1-5ab]\.(base|test)$/.test(name)) return 'ml-100k-ratings';
  if (/\.(jsonl|ndjson)$/.test(name)) return 'jsonl';
  if (name.endsWith('.csv')) return 'csv';
  if (/\.(tsv|tab)$/.test(name)) return 'tsv';
  throw new ImportError(`cannot tell the format of '${basename(path)}' from its name; pass one of: ${IMPORT_FORMATS.join(', ')}`);
}

/** Events unless the name says items or users (`items.jsonl`, `users.csv`, `catalog.tsv`...). */
export function detectKind(path: string): RecordKind {
  const name = basename(path).toLowerCase();
  if (/item|movie|product|catalog/.test(name)) return 'item';
  if (/user|customer|member|profile/.test(name)) return 'user';
  return 'event';
}

export function isImportFormat(name: string): name is ImportFormat {
  return (IMPORT_FORMATS as readonly string[]).includes(name);
}
