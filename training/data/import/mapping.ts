// Column mapping: which source column (or constant) fills each field of an event, item or user,
// e.g. `user=userId,item=movie,value=rating,timestamp=ts,type=const:rating`; and the conversions
// of a source value into a field (numbers, timestamps, lists), with errors that say what to fix.

import type { Event } from '../../../core/domain/event.ts';
import { ImportError, LineError } from './records.ts';
import type { ItemRecord, RecordKind, UserRecord } from './records.ts';

export type Source = { column: string } | { constant: string };
/** Target field → where its value comes from. */
export type Mapping = Record<string, Source>;

export const TARGETS: Record<RecordKind, readonly string[]> = {
  event: ['id', 'type', 'user', 'item', 'value', 'timestamp', 'requestId', 'position', 'context'],
  item: ['id', 'categories', 'tags', 'text', 'publishedAt'],
  user: ['id'],
};
const ALIASES: Record<string, string> = { userId: 'user', itemId: 'item' };
const ALL_TARGETS = [...new Set(Object.values(TARGETS).flat())];

/** Source columns tried, in order, for a field the mapping leaves out. */
export const DEFAULT_COLUMNS: Record<RecordKind, Record<string, string[]>> = {
  event: {
    id: ['id', 'eventId', 'event_id'],
    type: ['type', 'eventType', 'event_type'],
    user: ['user', 'userId', 'user_id'],
    item: ['item', 'itemId', 'item_id'],
    value: ['value', 'rating'],
    timestamp: ['timestamp', 'ts', 'time'],
    requestId: ['requestId', 'request_id'],
    position: ['position'],
    context: ['context'],
  },
  item: {
    id: ['id', 'itemId', 'item_id'],
    categories: ['categories', 'category'],
    tags: ['tags'],
    text: ['text', 'title', 'description'],
    publishedAt: ['publishedAt', 'published_at'],
  },
  user: { id: ['id', 'userId', 'user_id'] },
};

/** Parses `target=column|const:value,...`. Throws an `ImportError` that names the bad part. */
export function parseMapping(spec: string): Mapping {
  const mapping: Mapping = {};
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (part === '') {
      throw new ImportError(`mapping '${spec}' has an empty entry; write target=column pairs separated by single commas`);
    }
    const eq = part.indexOf('=');
    if (eq < 0) throw new ImportError(`mapping entry '${part}' has no '='; write target=column, e.g. user=userId`);
    const name = part.slice(0, eq).trim();
    const target = ALIASES[name] ?? name;
    const from = part.slice(eq + 1).trim();
    if (!ALL_TARGETS.includes(target)) {
      throw new ImportError(`mapping entry '${part}': unknown field '${name}'; the fields are ${ALL_TARGETS.join(', ')}`);
    }
    if (mapping[target]) throw new ImportError(`mapping sets '${target}' twice; keep one entry for it`);
    if (from === '') throw new ImportError(`mapping entry '${part}' names no source; write ${name}=<column> or ${name}=const:<value>`);
    if (from.startsWith('const:')) {
      const constant = from.slice('const:'.length);
      if (constant === '') throw new ImportError(`mapping entry '${part}': const: needs a value, e.g. ${name}=const:view`);
      if ((target === 'value' || target === 'position') && !Number.isFinite(Number(constant))) {
        throw new ImportError(`mapping entry '${part}': '${constant}' is not a number`);
      }
      mapping[target] = { constant };
    } else {
      mapping[target] = { column: from };
    }
  }
  return mapping;
}

/** Throws when the mapping names a field the record kind does not have. */
export function checkMappingKind(mapping: Mapping, kind: RecordKind): void {
  for (const target of Object.keys(mapping)) {
    if (!TARGETS[kind].includes(target)) {
      throw new ImportError(`mapping sets '${target}', which ${kind}s do not have; ${kind} fields are ${TARGETS[kind].join(', ')}`);
    }
  }
}

export type TimestampUnit = 's' | 'ms' | 'iso' | 'auto';
export const TIMESTAMP_UNITS: readonly TimestampUnit[] = ['s', 'ms', 'iso', 'auto'];

/** Reads one field of a row: the raw value (string from CSV, any JSON value from JSONL). */
export type Row = (column: string) => unknown;

/**
 * Field → candidate sources. An explicit mapping entry is the only candidate for its field;
 * otherwise the default columns, filtered to those present when the columns are known (a header).
 */
export type Resolved = Record<string, Source[]>;

export function resolveMapping(
  kind: RecordKind,
  mapping: Mapping,
  defaults: Mapping = {},
  columns?: readonly string[],
): Resolved {
  checkMappingKind(mapping, kind);
  const resolved: Resolved = {};
  for (const target of TARGETS[kind]) {
    const explicit = mapping[target] ?? defaults[target];
    if (explicit) {
      if ('column' in explicit && columns && !columns.includes(explicit.column)) {
        throw new ImportError(`column '${explicit.column}' (for ${target}) is not in the header; the columns are ${columns.join(', ')}`);
      }
      resolved[target] = [explicit];
      continue;
    }
    const candidates = DEFAULT_COLUMNS[kind][target] ?? [];
    resolved[target] = candidates.filter((c) => !columns || columns.includes(c)).map((column) => ({ column }));
  }
  return resolved;
}

/** The columns a resolved mapping reads (the rest become item/user attributes). */
export function mappedColumns(resolved: Resolved): Set<string> {
  const out = new Set<string>();
  for (const sources of Object.values(resolved)) for (const s of sources) if ('column' in s) out.add(s.column);
  return out;
}

interface Field {
  value: unknown;
  /** How to name the source in an error: "column 'rating'" or "constant 'x'". */
  where: string;
}

function field(row: Row, resolved: Resolved, target: string): Field | undefined {
  for (const source of resolved[target] ?? []) {
    if ('constant' in source) return { value: source.constant, where: `constant '${source.constant}'` };
    const value = row(source.column);
    if (value !== undefined && value !== null && value !== '') return { value, where: `column '${source.column}'` };
  }
  return undefined;
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function requireField(row: Row, resolved: Resolved, target: string, kind: RecordKind): Field {
  const f = field(row, resolved, target);
  if (f) return f;
  const sources = resolved[target] ?? [];
  const tried = sources.map((s) => ('column' in s ? `'${s.column}'` : '')).filter(Boolean);
  const hint = tried.length > 0 ? `column ${tried.join(' or ')} is empty or missing` : `no column is mapped to it`;
  throw new LineError(`${kind} has no '${target}': ${hint}; map one with ${target}=<column> or ${target}=const:<value>`);
}

function asString(f: Field): string {
  if (typeof f.value === 'string') return f.value.trim();
  if (typeof f.value === 'number' || typeof f.value === 'bigint') return String(f.value);
  throw new LineError(`${f.where} is ${show(f.value)}, not a string`);
}

function asNumber(f: Field): number {
  const n = typeof f.value === 'number' ? f.value : typeof f.value === 'string' && f.value.trim() !== '' ? Number(f.value) : NaN;
  if (!Number.isFinite(n)) throw new LineError(`${f.where} is '${show(f.value)}', not a number`);
  return n;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;

/** Epoch milliseconds from a raw timestamp in the given unit. */
export function toMillis(f: Field, unit: TimestampUnit): number {
  const numeric = typeof f.value === 'number' || (typeof f.value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(f.value));
  if (unit === 's' || unit === 'ms' || (unit === 'auto' && numeric)) {
    if (!numeric) throw new LineError(`${f.where} is '${show(f.value)}', not a number of ${unit === 's' ? 'seconds' : 'milliseconds'}; set the timestamp unit to iso for dates`);
    const n = asNumber(f);
    return Math.round(unit === 's' ? n * 1000 : n);
  }
  const text = typeof f.value === 'string' ? f.value.trim() : '';
  const ms = ISO_DATE.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms)) throw new LineError(`${f.where} is '${show(f.value)}', not an ISO 8601 date (e.g. 2025-01-31T12:00:00Z)`);
  return ms;
}

/** A list from a JSON array or a string split on `separator`. */
function asList(f: Field | undefined, separator: string): string[] {
  if (!f) return [];
  if (Array.isArray(f.value)) return f.value.map((v) => show(v).trim()).filter((v) => v !== '');
  return asString(f).split(separator).map((v) => v.trim()).filter((v) => v !== '');
}

/** A number when the whole string is one, else the string. */
export function attributeValue(raw: string): string | number {
  const t = raw.trim();
  return t !== '' && /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

export interface ConvertOptions {
  timestampUnit: TimestampUnit;
  /** Prefix of derived event ids (`<prefix>:<type>:<user>:<item>:<ms>`), for files without ids. */
  idPrefix: string;
  /** Whether the derived id includes the type (off for MovieLens: one rating per user and item). */
  idWithType: boolean;
  /** Separator of categories and tags inside one CSV field. */
  listSeparator: string;
}

export function toEvent(row: Row, resolved: Resolved, options: ConvertOptions): Event {
  const type = asString(requireField(row, resolved, 'type', 'event'));
  const userId = asString(requireField(row, resolved, 'user', 'event'));
  const itemId = asString(requireField(row, resolved, 'item', 'event'));
  const timestamp = toMillis(requireField(row, resolved, 'timestamp', 'event'), options.timestampUnit);
  const idField = field(row, resolved, 'id');
  const id = idField
    ? asString(idField)
    : options.idWithType
      ? `${options.idPrefix}:${type}:${userId}:${itemId}:${timestamp}`
      : `${options.idPrefix}:${userId}:${itemId}:${timestamp}`;
  const event: Event = { id, type, userId, itemId, timestamp };
  const value = field(row, resolved, 'value');
  if (value) event.value = asNumber(value);
  const requestId = field(row, resolved, 'requestId');
  if (requestId) event.requestId = asString(requestId);
  const position = field(row, resolved, 'position');
  if (position) {
    const p = asNumber(position);
    if (!Number.isInteger(p) || p < 0) throw new LineError(`${position.where} is '${show(position.value)}', not a slot number (0, 1, 2...)`);
    event.position = p;
  }
  const context = field(row, resolved, 'context');
  if (context) event.context = asContext(context);
  return event;
}

function asContext(f: Field): Record<string, string | number> {
  let value = f.value;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw new LineError(`${f.where} is '${value}', not a JSON object`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LineError(`${f.where} is ${show(f.value)}, not an object`);
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number') throw new LineError(`context '${k}' is ${show(v)}; context values are strings or numbers`);
    out[k] = v;
  }
  return out;
}

/** Attributes: a JSON `attributes` object, or the unmapped columns of a CSV row. */
function asAttributes(value: unknown): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = v;
    else if (typeof v === 'boolean') out[k] = String(v);
  }
  return out;
}

export function toItem(row: Row, resolved: Resolved, options: ConvertOptions, extra: Record<string, string | number> = {}): ItemRecord {
  const item: ItemRecord = {
    id: asString(requireField(row, resolved, 'id', 'item')),
    categories: asList(field(row, resolved, 'categories'), options.listSeparator),
    tags: asList(field(row, resolved, 'tags'), options.listSeparator),
    text: (() => {
      const f = field(row, resolved, 'text');
      return f ? asString(f) : '';
    })(),
    attributes: { ...asAttributes(row('attributes')), ...extra },
  };
  const published = field(row, resolved, 'publishedAt');
  if (published) item.publishedAt = toMillis(published, options.timestampUnit);
  return item;
}

export function toUser(row: Row, resolved: Resolved, extra: Record<string, string | number> = {}): UserRecord {
  return { id: asString(requireField(row, resolved, 'id', 'user')), attributes: { ...asAttributes(row('attributes')), ...extra } };
}
