// Where `kestrel import` puts what the readers produce: each record is validated with the REST
// API's own schemas (core/domain/schemas.ts through validateBatch), so a file is held to exactly
// the rules a POST is; items and users go to their stores in batches, events to the event bus in
// batches (the projector fills the interaction table from there, as it does for the API).
// Duplicates (ids already stored) are counted, and duplicate events are not published again.
// Rejections are tallied by reason with their first line numbers.
import { validateBatch } from '../../../core/api/validate.ts';
import type { ItemStore, UserStore } from '../../../core/catalog/ports.ts';
import type { Event } from '../../../core/domain/event.ts';
import { eventInputSchema, ItemInputSchema, UserInputSchema } from '../../../core/domain/schemas.ts';
import type { EventTypeConfig } from '../../../core/domain/schemas.ts';
import type { EventBus } from '../../../core/events/bus.ts';
import type { ImportRow, RecordKind } from './records.ts';

/** Records per store transaction or bus publish. */
export const IMPORT_BATCH_SIZE = 5_000;
/** Line numbers kept per rejection reason. */
export const REASON_LINES = 5;

export interface ImportSinkPorts {
  items: Pick<ItemStore, 'upsertMany'>;
  users: Pick<UserStore, 'upsertMany'>;
  bus: Pick<EventBus, 'publish'>;
  /** Which of these event ids are already stored (the interaction table, caught up). */
  storedEvents(ids: readonly string[]): ReadonlySet<string>;
  /** Needed with `createUnknown: false`: whether the user / item exists. */
  userExists?(id: string): boolean;
  itemExists?(id: string): boolean;
}

export interface ImportSinkOptions {
  batchSize?: number;
  /** Configured event types; the API's defaults otherwise. */
  eventTypes?: readonly EventTypeConfig[];
  /** The clock for "not more than 24h in the future"; the real one by default. */
  now?: () => number;
  /** When false, events naming a user or item that does not exist are rejected. Default true. */
  createUnknown?: boolean;
}

export interface RejectionReason {
  count: number;
  /** The first rejected line's message, in full. */
  example: string;
  /** The first REASON_LINES line numbers. */
  lines: number[];
}

/** Counts for one file; `read = accepted + duplicates + rejected` once it is done. */
export interface ImportTally {
  read: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  /** Keyed by the message with its values masked, so one rule's failures group together. */
  reasons: Map<string, RejectionReason>;
}

export function emptyTally(): ImportTally {
  return { read: 0, accepted: 0, duplicates: 0, rejected: 0, reasons: new Map() };
}

export interface ImportSink {
  /**
   * Reads `rows` to the end, writing as it goes; `tally` (updated live, for a progress bar) is
   * returned. Events are durable in the bus when it resolves.
   */
  importRows(kind: RecordKind, rows: AsyncIterable<ImportRow>, tally?: ImportTally): Promise<ImportTally>;
  /** Tells the sink these event ids reached the interaction table (from the projector). */
  projected(ids: Iterable<string>): void;
}

const LINE_PREFIX = /^line \d+: /;
const ENTRY_PREFIX = /^entries\[\d+\]/;

/** The message with its values masked: quoted values, ISO times and numbers. */
export function reasonKey(message: string): string {
  return message
    .replace(LINE_PREFIX, '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/(\bis |\bgot [a-z]+ )'[^']*'/g, "$1'…'")
    .replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, '<time>')
    .replace(/\b\d+(\.\d+)?\b/g, 'N');
}

export function createImportSink(ports: ImportSinkPorts, options: ImportSinkOptions = {}): ImportSink {
  const batchSize = options.batchSize ?? IMPORT_BATCH_SIZE;
  const createUnknown = options.createUnknown ?? true;
  if (!createUnknown && (ports.userExists === undefined || ports.itemExists === undefined)) {
    throw new Error('createUnknown: false needs the userExists and itemExists ports');
  }
  const eventSchema = eventInputSchema({
    ...(options.eventTypes ? { eventTypes: options.eventTypes } : {}),
    now: options.now ?? Date.now,
  });
  // Published but not yet reported projected: the interaction table does not show them yet.
  const inFlight = new Set<string>();

  function reject(tally: ImportTally, line: number, message: string): void {
    tally.rejected++;
    const key = reasonKey(message);
    const reason = tally.reasons.get(key);
    if (reason === undefined) tally.reasons.set(key, { count: 1, example: message, lines: [line] });
    else {
      reason.count++;
      if (reason.lines.length < REASON_LINES) reason.lines.push(line);
    }
  }

  /** Validates one batch; returns the valid records with their lines, rejecting the rest. */
  function validate(kind: RecordKind, batch: { line: number; record: unknown }[], tally: ImportTally) {
    const schema = kind === 'event' ? eventSchema : kind === 'item' ? ItemInputSchema : UserInputSchema;
    const result = validateBatch(batch.map((b) => b.record), schema);
    for (const { index, errors } of result.rejected) {
      const line = batch[index]?.line ?? 0;
      // `entries[3].timestamp is ...` → `event.timestamp is ...`; the line number says which.
      const what = errors.map((e) => e.message.replace(ENTRY_PREFIX, kind)).join('; ');
      reject(tally, line, `line ${line}: ${what}`);
    }
    return result.accepted.map((value, i) => ({ value, line: batch[result.acceptedIndices[i] ?? i]?.line ?? 0 }));
  }

  async function writeEvents(valid: { value: unknown; line: number }[], tally: ImportTally): Promise<void> {
    const fresh: Event[] = [];
    const seen = new Set<string>();
    const stored = ports.storedEvents(valid.map((v) => (v.value as Event).id));
    for (const { value, line } of valid) {
      const event = value as Event;
      if (seen.has(event.id) || inFlight.has(event.id) || stored.has(event.id)) {
        tally.duplicates++;
        continue;
      }
      if (!createUnknown) {
        const missing = !ports.userExists?.(event.userId) ? `user "${event.userId}"` : !ports.itemExists?.(event.itemId) ? `item "${event.itemId}"` : undefined;
        if (missing !== undefined) {
          reject(tally, line, `line ${line}: event names ${missing}, which does not exist; import it first, or leave out --no-create-unknown`);
          continue;
        }
      }
      seen.add(event.id);
      fresh.push(event);
    }
    if (fresh.length === 0) return;
    for (const e of fresh) inFlight.add(e.id);
    await ports.bus.publish(fresh);
    tally.accepted += fresh.length;
  }

  async function writeCatalog(kind: 'item' | 'user', valid: { value: unknown }[], tally: ImportTally): Promise<void> {
    if (valid.length === 0) return;
    const values = valid.map((v) => v.value);
    const results = kind === 'item'
      ? await ports.items.upsertMany(values as Parameters<ItemStore['upsertMany']>[0])
      : await ports.users.upsertMany(values as Parameters<UserStore['upsertMany']>[0]);
    for (const r of results) {
      if (r.outcome === 'created') tally.accepted++;
      else tally.duplicates++;
    }
  }

  async function flush(kind: RecordKind, batch: { line: number; record: unknown }[], tally: ImportTally): Promise<void> {
    if (batch.length === 0) return;
    const valid = validate(kind, batch, tally);
    if (kind === 'event') await writeEvents(valid, tally);
    else await writeCatalog(kind, valid, tally);
  }

  return {
    async importRows(kind, rows, tally = emptyTally()) {
      let batch: { line: number; record: unknown }[] = [];
      for await (const row of rows) {
        tally.read++;
        if ('error' in row) {
          reject(tally, row.line, row.error);
          continue;
        }
        batch.push(row);
        if (batch.length >= batchSize) {
          await flush(kind, batch, tally);
          batch = [];
        }
      }
      await flush(kind, batch, tally);
      return tally;
    },
    projected(ids) {
      for (const id of ids) inFlight.delete(id);
    },
  };
}
