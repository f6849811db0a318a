// Runs the CLI in-process with its console output captured, and reads the stores back.
import { join } from 'node:path';
import { vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { openSqliteCatalog } from '../../core/catalog/index.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `kestrel <argv>`: exit code, and what it printed (progress bars on process.stderr are silenced). */
export async function kestrel(...argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  const warn = vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(argv);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    warn.mockRestore();
    write.mockRestore();
  }
}

export interface StoreCounts {
  items: number;
  stubs: number;
  users: number;
  interactions: number;
}

export function storeCounts(dataDir: string): StoreCounts {
  const cat = openSqliteCatalog(join(dataDir, 'catalog.db'));
  try {
    const n = (sql: string) => (cat.db.prepare(sql).pluck().get() as number);
    return {
      items: n('SELECT count(*) FROM items'),
      stubs: n('SELECT count(*) FROM items WHERE stub = 1'),
      users: n('SELECT count(*) FROM users'),
      interactions: n('SELECT count(*) FROM interactions'),
    };
  } finally {
    cat.close();
  }
}
