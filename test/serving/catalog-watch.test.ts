// CatalogWatch (core/serving/snapshot.ts): the serving host's cheap test for "did the catalog
// change", SQLite's data_version on a connection kept open, before it fingerprints the catalog
// (a count of every interaction). It must see every commit of another connection: events in,
// items changed, a user's events erased.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteCatalog } from '../../core/catalog/sqlite/index.ts';
import { dataPaths } from '../../core/paths.ts';
import { CatalogWatch, catalogFingerprint } from '../../core/serving/snapshot.ts';

const T0 = Date.UTC(2026, 0, 1);
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('CatalogWatch', () => {
  it('reports a change after every commit of another connection, and none in between', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kestrel-watch-'));
    dirs.push(dir);
    const watch = new CatalogWatch(dir);
    // No catalog yet: a change (the caller fingerprints and finds it empty).
    expect(watch.changed()).toBe(true);
    const cat = openSqliteCatalog(dataPaths(dir).catalog);
    try {
      await cat.items.upsert({ id: 'i1' });
      expect(watch.changed()).toBe(true);
      expect(watch.changed()).toBe(false);
      expect(watch.changed()).toBe(false);
      const before = catalogFingerprint(dir);
      await cat.interactions.append([{ id: 'e1', type: 'click', userId: 'u1', itemId: 'i1', timestamp: T0 }]);
      expect(watch.changed()).toBe(true);
      expect(catalogFingerprint(dir)).not.toBe(before);
      expect(watch.changed()).toBe(false);
      await cat.items.upsert({ id: 'i1', hidden: true });
      expect(watch.changed()).toBe(true);
      expect(watch.changed()).toBe(false);
      await cat.interactions.deleteUserEvents('u1');
      expect(watch.changed()).toBe(true);
      expect(watch.changed()).toBe(false);
      // Reads change nothing.
      await cat.interactions.userEvents('u1');
      catalogFingerprint(dir);
      expect(watch.changed()).toBe(false);
      // Closed, it opens again and reports a change first.
      watch.close();
      expect(watch.changed()).toBe(true);
      expect(watch.changed()).toBe(false);
    } finally {
      watch.close();
      cat.close();
    }
  });
});
