import Database from 'better-sqlite3';
import hnswlib from 'hnswlib-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshSeed, mulberry32, randomUnitVectors, referenceScores } from '../support/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'kestrel-embedded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('better-sqlite3 (embedded catalog store)', () => {
  it('persists rows in WAL mode across connections', () => {
    const file = join(dir, 'catalog.db');
    const db = new Database(file);
    expect(db.pragma('journal_mode = WAL', { simple: true })).toBe('wal');
    db.exec('CREATE TABLE items (id TEXT PRIMARY KEY, title TEXT NOT NULL, categories TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO items (id, title, categories) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 1000; i++) insert.run(`item-${i}`, `Title ${i}`, JSON.stringify([`c${i % 7}`]));
    })();
    db.close();

    const again = new Database(file, { readonly: true });
    const row = again.prepare('SELECT COUNT(*) AS n FROM items WHERE categories LIKE ?').get('%"c3"%');
    expect(row).toEqual({ n: 143 });
    again.close();
  });
});

describe('hnswlib-node (embedded vector index)', () => {
  const dim = 32;
  const n = 5000;
  const k = 10;

  it('finds the exact inner-product neighbours for most queries and survives a save/load', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const items = randomUnitVectors(n, dim, rng);
    const index = new hnswlib.HierarchicalNSW('ip', dim);
    index.initIndex(n, 16, 200, seed);
    for (let i = 0; i < n; i++) index.addPoint(Array.from(items.subarray(i * dim, (i + 1) * dim)), i);
    index.setEf(100);
    const file = join(dir, 'items.hnsw');
    index.writeIndexSync(file);

    const loaded = new hnswlib.HierarchicalNSW('ip', dim);
    loaded.readIndexSync(file);
    loaded.setEf(100);
    expect(loaded.getCurrentCount()).toBe(n);

    let hits = 0;
    const queries = 50;
    for (let q = 0; q < queries; q++) {
      const query = randomUnitVectors(1, dim, rng);
      const ref = referenceScores(query, items, dim);
      const exact = Array.from(ref.keys()).sort((a, b) => (ref[b] ?? 0) - (ref[a] ?? 0)).slice(0, k);
      const found = new Set(loaded.searchKnn(Array.from(query), k).neighbors);
      hits += exact.filter((id) => found.has(id)).length;
    }
    expect(hits / (queries * k), `seed ${seed}`).toBeGreaterThanOrEqual(0.95);
  });
});
