// Fills a `Dataset` from files in any format `kestrel import` reads (CSV, TSV, JSON Lines,
// MovieLens). Bad lines are counted and reported, never fatal: a model trains on what was valid.

import { open } from 'node:fs/promises';
import { openImport } from './import/read.ts';
import { detectFormat } from './import/formats.ts';
import { DEFAULT_COLUMNS, parseMapping } from './import/mapping.ts';
import type { ImportOptions } from './import/read.ts';
import type { Event } from '../../core/domain/event.ts';
import type { ItemRecord, UserRecord } from './import/records.ts';
import { DatasetBuilder } from './dataset.ts';
import type { Dataset, DatasetOptions } from './dataset.ts';

export interface DatasetFiles {
  interactions: string;
  items?: string;
  users?: string;
  /** Import options for the interactions file (format, column mapping, timestamp unit). */
  importOptions?: ImportOptions;
}

export interface LoadReport {
  /** Per file: lines read into the dataset, and the first errors (with their line numbers). */
  files: { path: string; accepted: number; rejected: number; errors: string[] }[];
}

const KEPT_ERRORS = 10;

export async function loadDataset(files: DatasetFiles, options: DatasetOptions = {}): Promise<{ dataset: Dataset; report: LoadReport }> {
  const builder = new DatasetBuilder(options);
  const report: LoadReport = { files: [] };
  const read = async (path: string, kind: 'event' | 'item' | 'user', importOptions: ImportOptions = {}): Promise<void> => {
    const source = await openImport(path, { kind, ...importOptions });
    const entry = { path, accepted: 0, rejected: 0, errors: [] as string[] };
    report.files.push(entry);
    for await (const row of source.rows) {
      if ('error' in row) {
        entry.rejected++;
        if (entry.errors.length < KEPT_ERRORS) entry.errors.push(row.error);
        continue;
      }
      try {
        if (source.kind === 'item') builder.addItem(row.record as ItemRecord);
        else if (source.kind === 'user') builder.addUser(row.record as UserRecord);
        else builder.addEvent(row.record as Event);
        entry.accepted++;
      } catch (err) {
        entry.rejected++;
        if (entry.errors.length < KEPT_ERRORS) entry.errors.push(`line ${row.line}: ${(err as Error).message}`);
      }
    }
  };
  // Items and users first, so their indexes follow the catalog's order rather than the events'.
  if (files.items) await read(files.items, 'item');
  if (files.users) await read(files.users, 'user');
  await read(files.interactions, 'event', await withDefaultType(files.interactions, files.importOptions ?? {}));
  return { dataset: builder.build(), report };
}

/**
 * A plain interactions table (`user,item,value,timestamp`) says nothing about the kind of
 * interaction: read every row as a `rating` whose value is its strength (weight 1 × value), unless
 * the file has a type column or the mapping says where the type is.
 */
async function withDefaultType(path: string, options: ImportOptions): Promise<ImportOptions> {
  const format = options.format ?? detectFormat(path);
  if (format !== 'csv' && format !== 'tsv') return options;
  const mapping = typeof options.mapping === 'string' ? parseMapping(options.mapping) : (options.mapping ?? {});
  if (mapping.type !== undefined) return options;
  const header = await firstLine(path);
  const delimiter = options.delimiter ?? (format === 'tsv' ? '\t' : ',');
  const columns = header.split(delimiter).map((c) => c.trim().replace(/^"|"$/g, ''));
  if ((DEFAULT_COLUMNS.event.type ?? []).some((c) => columns.includes(c))) return options;
  return { ...options, mapping: { ...mapping, type: { constant: 'rating' } } };
}

async function firstLine(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString('utf8').split(/\r?\n/)[0] ?? '';
  } finally {
    await handle.close();
  }
}
