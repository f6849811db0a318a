// Writes a synthetic dataset to a folder: items.jsonl, users.jsonl, events.jsonl (or events.csv)
// and truth.json. Streams the events in chunks with backpressure, so memory stays bounded
// whatever the event count.

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Event } from '../../core/domain/event.ts';
import { syntheticEvents } from './sessions.ts';
import { buildWorld, truthOf } from './synthetic.ts';
import type { DatasetCounts, SyntheticParams } from './synthetic.ts';

export type EventFormat = 'jsonl' | 'csv';

export interface WriteOptions {
  format?: EventFormat;
  /** Called every `progressEvery` events and once at the end with events written so far. */
  onProgress?: (written: number, total: number) => void;
  progressEvery?: number;
}

export interface DatasetSummary {
  dir: string;
  /** File name → records (lines, without a CSV header). */
  files: Record<string, number>;
  eventTypes: Record<string, number>;
  newItems: number;
  driftedUsers: number;
  ms: number;
}

/** Header of events.csv: the import format's four columns first, then the rest of the Event. */
export const CSV_COLUMNS = ['user', 'item', 'value', 'timestamp', 'type', 'id', 'requestId', 'position'] as const;
const CHUNK_CHARS = 1 << 16;

function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(e: Event): string {
  return [e.userId, e.itemId, e.value, e.timestamp, e.type, e.id, e.requestId, e.position].map(csvField).join(',');
}

/** Writes lines to a file in chunks, waiting for the stream to drain when it asks to. */
async function writeLines(path: string, lines: Iterable<string>, header?: string): Promise<number> {
  const out = createWriteStream(path);
  const closed = new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.once('close', resolve);
  });
  let buffer = header === undefined ? '' : `${header}\n`;
  let count = 0;
  for (const line of lines) {
    buffer += `${line}\n`;
    count++;
    if (buffer.length >= CHUNK_CHARS) {
      if (!out.write(buffer)) await Promise.race([once(out, 'drain'), closed]);
      buffer = '';
    }
  }
  out.end(buffer);
  await closed;
  return count;
}

function* mapped<T>(values: Iterable<T>, f: (v: T) => string): Generator<string> {
  for (const v of values) yield f(v);
}

export async function writeDataset(
  dir: string,
  params: Partial<SyntheticParams> & Pick<SyntheticParams, 'users' | 'items' | 'events'>,
  options: WriteOptions = {},
): Promise<DatasetSummary> {
  const t0 = performance.now();
  const format = options.format ?? 'jsonl';
  const world = buildWorld(params);
  await mkdir(dir, { recursive: true });
  const files: Record<string, number> = {};
  files['items.jsonl'] = await writeLines(join(dir, 'items.jsonl'), mapped(world.items, (i) => JSON.stringify(i)));
  files['users.jsonl'] = await writeLines(join(dir, 'users.jsonl'), mapped(world.users, (u) => JSON.stringify(u)));

  const eventTypes: Record<string, number> = {};
  const total = world.params.events;
  const every = options.progressEvery ?? 50_000;
  let written = 0;
  let first = Infinity;
  let last = -Infinity;
  const counted = mapped(syntheticEvents(world), (e) => {
    eventTypes[e.type] = (eventTypes[e.type] ?? 0) + 1;
    if (e.timestamp < first) first = e.timestamp;
    if (e.timestamp > last) last = e.timestamp;
    if (++written % every === 0) options.onProgress?.(written, total);
    return format === 'csv' ? csvLine(e) : JSON.stringify(e);
  });
  const eventsFile = format === 'csv' ? 'events.csv' : 'events.jsonl';
  files[eventsFile] = await writeLines(join(dir, eventsFile), counted, format === 'csv' ? CSV_COLUMNS.join(',') : undefined);
  options.onProgress?.(written, total);

  const counts: DatasetCounts = {
    items: world.params.items,
    users: world.params.users,
    events: written,
    eventTypes,
    eventsFile,
    firstEvent: Number.isFinite(first) ? first : null,
    lastEvent: Number.isFinite(last) ? last : null,
  };
  const truth = truthOf(world, counts);
  await writeFile(join(dir, 'truth.json'), `${JSON.stringify(truth)}\n`);
  files['truth.json'] = 1;
  return {
    dir,
    files,
    eventTypes,
    newItems: truth.newItems.length,
    driftedUsers: truth.driftedUsers.length,
    ms: performance.now() - t0,
  };
}
