// What the import readers produce: plain records in the shapes the data plane stores, one per
// source line, or a per-line error that says what to fix. Bad lines never stop an import.

import type { Event } from '../../../core/domain/event.ts';

/** An item as the importer reads it (the synthetic generator's item shape, `publishedAt` optional). */
export interface ItemRecord {
  id: string;
  categories: string[];
  tags: string[];
  text: string;
  attributes: Record<string, string | number>;
  /** Epoch milliseconds. */
  publishedAt?: number;
}

export interface UserRecord {
  id: string;
  attributes: Record<string, string | number>;
}

export type RecordKind = 'event' | 'item' | 'user';
export type ImportRecord = Event | ItemRecord | UserRecord;

/** One source record (or a failure to read one). `line` is the 1-based line where it starts. */
export type ImportRow<R extends ImportRecord = ImportRecord> =
  | { line: number; record: R }
  | { line: number; error: string };

/** A mistake in how the import was asked for (not in one line of the file): the CLI prints it and stops. */
export class ImportError extends Error {
  override name = 'ImportError';
}

/** Thrown by converters for a bad line; the reader turns it into `{ line, error }`. */
export class LineError extends Error {
  override name = 'LineError';
}
