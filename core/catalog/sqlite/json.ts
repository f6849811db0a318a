// Row <-> value helpers shared by the SQLite stores.
import type { ListOptions } from '../ports.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../ports.ts';

/** The cursor is the last id of the page, base64url so clients treat it as opaque. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  if (!/^[A-Za-z0-9_-]*$/.test(cursor)) throw new Error(`cursor '${cursor}' is not one this API returned: pass the 'next' of the previous page`);
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

export function pageSize(options: ListOptions | undefined): number {
  const limit = options?.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new Error(`limit ${limit} is out of range: use a whole number from 1 to ${MAX_PAGE_SIZE}`);
  }
  return limit;
}

export function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}
