// Helpers the HTTP benches share (bench/core-process.ts).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clearServedLog } from '../../bench/core-process.ts';

describe('clearServedLog', () => {
  it("empties a reused data folder's served-features log and keeps its model and catalog", () => {
    const dir = mkdtempSync(join(tmpdir(), 'kestrel-served-'));
    try {
      for (const sub of ['served', 'models']) mkdirSync(join(dir, sub));
      writeFileSync(join(dir, 'served', '2026-11-28.jsonl'), '{"requestId":"r1"}\n');
      writeFileSync(join(dir, 'models', 'current.json'), '{}');
      writeFileSync(join(dir, 'catalog.db'), '');
      clearServedLog(dir);
      expect(existsSync(join(dir, 'served'))).toBe(false);
      expect(existsSync(join(dir, 'models', 'current.json'))).toBe(true);
      expect(existsSync(join(dir, 'catalog.db'))).toBe(true);
      // A folder that never served anything is fine too.
      expect(() => clearServedLog(dir)).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
