// Training data from what the core ingested: the catalog database the projector fills from the
// event bus (embedded log or Kafka), read-only, so it works while `kestrel serve` runs (SQLite WAL
// readers do not block the writer). Erased users are already gone from it.

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Event } from '../../core/domain/event.ts';
import { dataPaths } from '../../core/paths.ts';
import { DatasetBuilder } from './dataset.ts';
import type { Dataset, DatasetOptions } from './dataset.ts';
import type { LoadReport } from './load.ts';

interface ItemRow { id: string; categories: string; tags: string; text: string; attributes: string; published_at: number }
interface UserRow { id: string; attributes: string }
interface EventRow { id: string; type: string; user_id: string; item_id: string; value: number | null; timestamp: number; request_id: string | null; position: number | null }

/**
 * The dataset of a catalog, with `lastSeq`: the sequence number of the last event it read (0 for
 * none), so a reader can ask the store for exactly what came after.
 */
export async function loadCatalogDataset(dataDir: string | undefined, options: DatasetOptions = {}): Promise<{ dataset: Dataset; report: LoadReport; lastSeq: number }> {
  const paths = dataPaths(dataDir);
  if (!existsSync(paths.catalog)) {
    throw new Error(`no catalog at ${paths.catalog}: ingest events first (kestrel serve + POST /v1/events, or kestrel import --data ${paths.dir})`);
  }
  const db = new Database(paths.catalog, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const builder = new DatasetBuilder(options);
    const report: LoadReport = { files: [] };
    const tally = (path: string) => {
      const entry = { path, accepted: 0, rejected: 0, errors: [] as string[] };
      report.files.push(entry);
      return entry;
    };
    let lastSeq = 0;
    // One read transaction: items, users and events from the same snapshot.
    db.transaction(() => {
      lastSeq = db.prepare<[], { seq: number }>('SELECT coalesce(max(seq), 0) AS seq FROM interactions').get()?.seq ?? 0;
      const items = tally(`${paths.catalog}#items`);
      for (const r of db.prepare<[], ItemRow>('SELECT id, categories, tags, text, attributes, published_at FROM items ORDER BY id').iterate()) {
        builder.addItem({
          id: r.id, categories: JSON.parse(r.categories) as string[], tags: JSON.parse(r.tags) as string[], text: r.text,
          attributes: JSON.parse(r.attributes) as Record<string, string | number>, publishedAt: r.published_at,
        });
        items.accepted++;
      }
      const users = tally(`${paths.catalog}#users`);
      for (const r of db.prepare<[], UserRow>('SELECT id, attributes FROM users ORDER BY id').iterate()) {
        builder.addUser({ id: r.id, attributes: JSON.parse(r.attributes) as Record<string, string | number> });
        users.accepted++;
      }
      const events = tally(`${paths.catalog}#interactions`);
      for (const r of db.prepare<[], EventRow>('SELECT id, type, user_id, item_id, value, timestamp, request_id, position FROM interactions ORDER BY timestamp, seq').iterate()) {
        const event: Event = { id: r.id, type: r.type, userId: r.user_id, itemId: r.item_id, timestamp: r.timestamp };
        if (r.value !== null) event.value = r.value;
        if (r.request_id !== null) event.requestId = r.request_id;
        if (r.position !== null) event.position = r.position;
        try {
          builder.addEvent(event);
          events.accepted++;
        } catch (err) {
          events.rejected++;
          if (events.errors.length < 10) events.errors.push((err as Error).message);
        }
      }
    })();
    return { dataset: builder.build(), report, lastSeq };
  } finally {
    db.close();
  }
}
