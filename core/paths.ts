import { join, resolve } from 'node:path';

/** Where the embedded defaults keep their state; `KESTREL_DATA_DIR` or `--data` moves it. */
export const DEFAULT_DATA_DIR = '.kestrel';

export interface DataPaths {
  dir: string;
  /** SQLite database of the catalog, users and interactions. */
  catalog: string;
  /** Folder of the embedded event log (segments + consumer offsets). */
  eventLog: string;
}

export function dataPaths(dir = process.env.KESTREL_DATA_DIR ?? DEFAULT_DATA_DIR): DataPaths {
  const root = resolve(dir);
  return { dir: root, catalog: join(root, 'catalog.db'), eventLog: join(root, 'events') };
}
