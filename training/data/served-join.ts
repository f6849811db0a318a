// The training join of the served-features log (core/serving/feature-log.ts) with the events that
// came back with a request id: one labelled row per served (request, item), with the dense
// features exactly as the ranker saw them when it served (Cheng 2016 trains Wide&Deep on such
// impression logs; recomputing features at training time would leak what happened after).
//
// Attribution rules. An event labels the row of served record R and item I only if
//   1. its requestId is R's requestId (events without one are never attributed),
//   2. its userId is R's userId (else: counted as `otherUser`),
//   3. its itemId is one of R's items (else: `itemNotServed`); where the item was served at
//      several positions, the one equal to the event's `position` is taken, else the first;
//      a `position` that differs from the served one is still attributed (the edge re-ranks a
//      slate before showing it) and counted as `positionMismatch`,
//   4. its timestamp is in [R.at - CLOCK_SKEW_MS, R.at + window] (else: `outsideWindow`); the
//      window defaults to 24 h; the skew allows for client clocks slightly behind the core's,
//   5. it is counted once per event id (ingestion is idempotent on ids; a repeat is `duplicate`).
// An event whose requestId matches no served record that was read is `unattributed`. Records of
// a user erased after they were served are skipped (erasure rewrites the log; this covers logs
// written by a core that ran without the erasure hook).
//
// Features: the logged dense values by the logged names. An item served without ranker features
// (an anonymous request, or one the ranker did not score: the record's `dense` is empty) gets
// `features: {}`, never zeros that would read as features; such rows are counted as `unranked`.
//
// Labels: `clicked` = an attributed click or view (opening the item from the slate); `engaged`
// = an attributed event of a type with a positive weight other than impression, view and click
// (add-to-cart, purchase, like, a rating of RATING_ENGAGED or more); `negative` = one with a
// negative weight (dislike, skip); `weight` = the sum of the attributed events' training weights
// (the type's weight, times the value for ratings, as training/data/dataset.ts weighs them).
//
// Memory: the served logs are streamed line by line; only the events that carry a requestId
// (within the day range, if one is given) are held, indexed by requestId.

import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { DEFAULT_EVENT_TYPES } from '../../core/domain/event-types.ts';
import type { EventTypeConfig } from '../../core/domain/event-types.ts';
import { dataPaths } from '../../core/paths.ts';
import type { ServedFeatures } from '../../core/serving/engine.ts';

export const DEFAULT_ATTRIBUTION_WINDOW_MS = 24 * 3_600_000;
/** How far before the served time an event may be stamped and still count (client clocks). */
export const CLOCK_SKEW_MS = 60_000;
/** The lowest rating that counts as engagement (on the usual 1–5 scale). */
export const RATING_ENGAGED = 4;
const CLICK_TYPES = new Set(['click', 'view']);
const NOT_ENGAGEMENT = new Set(['impression', 'view', 'click']);
const TYPE_WITH_VALUE = new Set(['rating']);
const DAY_MS = 86_400_000;
const SERVED_FILE = /^served-(\d{4}-\d{2}-\d{2})\.jsonl$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

export interface ServedJoinOptions {
  /** The core's data folder: `<data>/served/served-*.jsonl` and `<data>/catalog.db`. */
  dataDir: string;
  /** First UTC day of served logs to read, YYYY-MM-DD (inclusive). */
  since?: string | undefined;
  /** Last UTC day of served logs to read, YYYY-MM-DD (inclusive). */
  until?: string | undefined;
  /** Attribution window after the served time, ms. Default 24 h. */
  windowMs?: number | undefined;
  /** Event types and weights; default the built-in set. */
  eventTypes?: readonly EventTypeConfig[] | undefined;
}

export interface ServedJoinLabels {
  clicked: 0 | 1;
  engaged: 0 | 1;
  negative: 0 | 1;
  weight: number;
}

export interface ServedJoinRow {
  requestId: string;
  userId: string;
  itemId: string;
  position: number;
  score: number;
  modelVersion: string;
  servedAt: number;
  sources: string[];
  /** Dense feature name → value, as served. */
  features: Record<string, number>;
  labels: ServedJoinLabels;
  /** Attributed events per type. */
  events: Record<string, number>;
  /** Time of the first attributed event other than an impression. */
  firstEventAt?: number;
  /** Time of the last attributed event other than an impression. */
  lastEventAt?: number;
}

export interface ServedJoinSummary {
  /** The served-log files read, in day order. */
  files: string[];
  /** Every served-log day present in the folder (to say what a range missed). */
  days: string[];
  requests: number;
  rows: number;
  clicked: number;
  engaged: number;
  /** Rows served without ranker features (`features: {}`): anonymous or unscored requests. */
  unranked: number;
  attributedEvents: number;
  /** Events whose requestId matches no served record read. */
  unattributed: number;
  otherUser: number;
  itemNotServed: number;
  outsideWindow: number;
  positionMismatch: number;
  duplicate: number;
  /** Served records skipped because their user was erased afterwards. */
  erased: number;
  /** Lines of the served logs that are not JSON records (a crash mid-append). */
  badLines: number;
}

interface TaggedEvent { id: string; type: string; userId: string; itemId: string; value: number | null; timestamp: number; position: number | null }
interface EventRow { id: string; type: string; user_id: string; item_id: string; value: number | null; timestamp: number; request_id: string; position: number | null }
interface RequestEvents { events: TaggedEvent[]; matched: boolean }

/** Joins the served logs with the events; calls `onRow` per row in log order, returns the tally. */
export async function joinServedFeatures(options: ServedJoinOptions, onRow: (row: ServedJoinRow) => void | Promise<void>): Promise<ServedJoinSummary> {
  const windowMs = options.windowMs ?? DEFAULT_ATTRIBUTION_WINDOW_MS;
  if (!(windowMs >= 0) || !Number.isFinite(windowMs)) throw new Error(`the attribution window must be a finite number of ms >= 0, got ${windowMs}`);
  for (const [name, day] of [['since', options.since], ['until', options.until]] as const) {
    if (day !== undefined && (!DAY.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)))) throw new Error(`${name} must be a day YYYY-MM-DD, got '${day}'`);
  }
  if (options.since !== undefined && options.until !== undefined && options.since > options.until) {
    throw new Error(`since ${options.since} is after until ${options.until}`);
  }
  const paths = dataPaths(options.dataDir);
  if (!existsSync(paths.catalog)) throw new Error(`no catalog at ${paths.catalog}: is ${paths.dir} the core's data folder?`);
  const servedDir = join(paths.dir, 'served');
  const days = await servedLogDays(paths.dir);
  const inRange = days.filter((d) => (options.since === undefined || d >= options.since) && (options.until === undefined || d <= options.until));
  const summary: ServedJoinSummary = {
    files: inRange.map((d) => join(servedDir, `served-${d}.jsonl`)), days, requests: 0, rows: 0, clicked: 0, engaged: 0, unranked: 0,
    attributedEvents: 0, unattributed: 0, otherUser: 0, itemNotServed: 0, outsideWindow: 0, positionMismatch: 0, duplicate: 0, erased: 0, badLines: 0,
  };
  if (inRange.length === 0) return summary;

  const from = options.since === undefined ? Number.NEGATIVE_INFINITY : Date.parse(`${options.since}T00:00:00Z`) - CLOCK_SKEW_MS;
  const to = options.until === undefined ? Number.POSITIVE_INFINITY : Date.parse(`${options.until}T00:00:00Z`) + DAY_MS + windowMs;
  const { byRequest, erasedAt } = readTaggedEvents(paths.catalog, from, to, summary);
  const weights = new Map((options.eventTypes ?? DEFAULT_EVENT_TYPES).map((t) => [t.name, t.weight]));

  for (const file of summary.files) {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const record = parseServed(line);
      if (record === undefined) {
        summary.badLines++;
        continue;
      }
      const erased = erasedAt.get(record.userId);
      if (erased !== undefined && record.at <= erased) {
        summary.erased++;
        continue;
      }
      summary.requests++;
      const attributed = attribute(record, byRequest.get(record.requestId), windowMs, summary);
      for (let slot = 0; slot < record.items.length; slot++) {
        const row = labelRow(record, slot, attributed[slot] ?? [], weights);
        summary.rows++;
        summary.clicked += row.labels.clicked;
        summary.engaged += row.labels.engaged;
        if (Object.keys(row.features).length === 0) summary.unranked++;
        await onRow(row);
      }
    }
  }
  for (const entry of byRequest.values()) if (!entry.matched) summary.unattributed += entry.events.length;
  return summary;
}

/** The UTC days (YYYY-MM-DD) the data folder has a served-features log of, in order. */
export async function servedLogDays(dataDir: string): Promise<string[]> {
  const dir = join(dataPaths(dataDir).dir, 'served');
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).map((f) => SERVED_FILE.exec(f)?.[1]).filter((d): d is string => d !== undefined).sort();
}

/** Writes the joined rows to `out` as JSON Lines (through a temp file, renamed when complete). */
export async function writeServedJoin(options: ServedJoinOptions, out: string): Promise<ServedJoinSummary> {
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const stream = createWriteStream(tmp);
  let chunk = '';
  try {
    const summary = await joinServedFeatures(options, async (row) => {
      chunk += `${JSON.stringify(row)}\n`;
      if (chunk.length >= 1 << 16) {
        const flushed = stream.write(chunk);
        chunk = '';
        if (!flushed) await once(stream, 'drain');
      }
    });
    stream.end(chunk);
    await once(stream, 'finish');
    await rename(tmp, out);
    return summary;
  } catch (error) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw error;
  }
}

/** The events that carry a requestId, indexed by it, and when each erased user was erased. */
function readTaggedEvents(catalog: string, from: number, to: number, summary: ServedJoinSummary) {
  const db = new Database(catalog, { readonly: true, fileMustExist: true });
  const byRequest = new Map<string, RequestEvents>();
  const erasedAt = new Map<string, number>();
  try {
    db.pragma('busy_timeout = 5000');
    db.transaction(() => {
      const bounded = Number.isFinite(from) || Number.isFinite(to);
      const sql = 'SELECT id, type, user_id, item_id, value, timestamp, request_id, position FROM interactions WHERE request_id IS NOT NULL' +
        (bounded ? ' AND timestamp >= ? AND timestamp < ?' : '');
      const rows = db.prepare<unknown[], EventRow>(sql).iterate(...(bounded ? [Math.max(from, Number.MIN_SAFE_INTEGER), Math.min(to, Number.MAX_SAFE_INTEGER)] : []));
      for (const r of rows) {
        let entry = byRequest.get(r.request_id);
        if (!entry) byRequest.set(r.request_id, (entry = { events: [], matched: false }));
        // The table's ids are unique; a copy of a catalog merged by hand may not be.
        if (entry.events.some((e) => e.id === r.id)) {
          summary.duplicate++;
          continue;
        }
        entry.events.push({ id: r.id, type: r.type, userId: r.user_id, itemId: r.item_id, value: r.value, timestamp: r.timestamp, position: r.position });
      }
      for (const r of db.prepare<[], { user_id: string; erased_at: number }>('SELECT user_id, erased_at FROM erased_users').iterate()) erasedAt.set(r.user_id, r.erased_at);
    })();
  } finally {
    db.close();
  }
  return { byRequest, erasedAt };
}

function parseServed(line: string): ServedFeatures | undefined {
  try {
    const r = JSON.parse(line) as Partial<ServedFeatures>;
    if (typeof r.requestId !== 'string' || typeof r.userId !== 'string' || typeof r.at !== 'number' || !Array.isArray(r.items) || !Array.isArray(r.features)) return undefined;
    return r as ServedFeatures;
  } catch {
    return undefined;
  }
}

/** The events attributed to each slot of the record, by the rules at the top of this file. */
function attribute(record: ServedFeatures, entry: RequestEvents | undefined, windowMs: number, summary: ServedJoinSummary): TaggedEvent[][] {
  const bySlot: TaggedEvent[][] = record.items.map(() => []);
  if (entry === undefined) return bySlot;
  entry.matched = true;
  for (const e of entry.events) {
    if (e.userId !== record.userId) {
      summary.otherUser++;
      continue;
    }
    let slot = -1;
    for (let s = 0; s < record.items.length; s++) {
      if (record.items[s]?.item !== e.itemId) continue;
      if (slot < 0) slot = s;
      if (record.items[s]?.position === e.position) {
        slot = s;
        break;
      }
    }
    if (slot < 0) {
      summary.itemNotServed++;
      continue;
    }
    if (e.timestamp < record.at - CLOCK_SKEW_MS || e.timestamp > record.at + windowMs) {
      summary.outsideWindow++;
      continue;
    }
    if (e.position !== null && e.position !== record.items[slot]?.position) summary.positionMismatch++;
    summary.attributedEvents++;
    bySlot[slot]?.push(e);
  }
  return bySlot;
}

function labelRow(record: ServedFeatures, slot: number, events: readonly TaggedEvent[], weights: ReadonlyMap<string, number>): ServedJoinRow {
  const served = record.items[slot] ?? { item: '', position: slot, score: 0, dense: [], sources: [] };
  const features: Record<string, number> = {};
  // A value the log holds as anything but a number (NaN and ±∞ are written as null) reads as NaN, never as 0.
  if (Array.isArray(served.dense) && served.dense.length === record.features.length) {
    record.features.forEach((name, f) => {
      const value: unknown = served.dense[f];
      features[name] = typeof value === 'number' ? value : Number.NaN;
    });
  }
  const labels: ServedJoinLabels = { clicked: 0, engaged: 0, negative: 0, weight: 0 };
  const counts: Record<string, number> = {};
  let firstEventAt: number | undefined;
  let lastEventAt: number | undefined;
  for (const e of events) {
    counts[e.type] = (counts[e.type] ?? 0) + 1;
    const value = e.value ?? Number.NaN;
    const weight = (weights.get(e.type) ?? 0) * (TYPE_WITH_VALUE.has(e.type) && Number.isFinite(value) ? value : 1);
    labels.weight += weight;
    if (CLICK_TYPES.has(e.type)) labels.clicked = 1;
    if (weight > 0 && !NOT_ENGAGEMENT.has(e.type) && (e.type !== 'rating' || value >= RATING_ENGAGED)) labels.engaged = 1;
    if (weight < 0) labels.negative = 1;
    if (e.type !== 'impression' && (firstEventAt === undefined || e.timestamp < firstEventAt)) firstEventAt = e.timestamp;
    if (e.type !== 'impression' && (lastEventAt === undefined || e.timestamp > lastEventAt)) lastEventAt = e.timestamp;
  }
  return {
    requestId: record.requestId, userId: record.userId, itemId: served.item, position: served.position, score: served.score,
    modelVersion: record.modelVersion, servedAt: record.at, sources: served.sources, features, labels, events: counts,
    ...(firstEventAt === undefined ? {} : { firstEventAt }),
    ...(lastEventAt === undefined ? {} : { lastEventAt }),
  };
}
