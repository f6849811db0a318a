import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { readImport } from '../../training/data/import/index.ts';
import type { ImportOptions, ImportRecord, ImportRow } from '../../training/data/import/index.ts';

/** A temp folder removed after the file's tests; `file` writes one file into it. */
export function tempFolder(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), `kestrel-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    file(name: string, content: string | Buffer): string {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
  };
}

export async function readAll(path: string, options?: ImportOptions): Promise<ImportRow[]> {
  const rows: ImportRow[] = [];
  for await (const row of readImport(path, options)) rows.push(row);
  return rows;
}

export function records<R extends ImportRecord>(rows: ImportRow[]): R[] {
  return rows.flatMap((r) => ('record' in r ? [r.record as R] : []));
}

export function errors(rows: ImportRow[]): string[] {
  return rows.flatMap((r) => ('error' in r ? [r.error] : []));
}

/** The text in chunks of `size` characters, to exercise records that span chunk boundaries. */
export async function* chunked(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}
