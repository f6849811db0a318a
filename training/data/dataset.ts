// The in-memory training dataset: users, items and interactions mapped to dense indexes, with the
// content features the towers and the ranker read. Every model, baseline and protocol in
// `training/` works on this one shape. Pure: `load.ts` fills it from files.

import type { Event } from '../../core/domain/event.ts';
import { DEFAULT_EVENT_TYPES } from '../../core/domain/event-types.ts';
import type { EventTypeConfig } from '../../core/domain/event-types.ts';
import type { ItemRecord, UserRecord } from './import/records.ts';

/** Compressed sparse rows: row r holds `indices[offsets[r] .. offsets[r + 1])`. */
export interface Csr {
  offsets: Int32Array;
  indices: Int32Array;
}

/** Interaction rows in timestamp order (ties keep input order). Parallel arrays, one entry per event. */
export interface Interactions {
  length: number;
  user: Int32Array;
  item: Int32Array;
  /** Index into `Dataset.eventTypes`. */
  type: Uint8Array;
  /** The event's `value`, NaN when it had none. */
  value: Float32Array;
  /** Training weight: the type's weight, times `value` where the type has one (rating): > 0 positive, < 0 negative, 0 exposure. */
  weight: Float32Array;
  /** Epoch ms. */
  timestamp: Float64Array;
  /** Slot in the slate that showed the item, −1 when unknown. */
  position: Int16Array;
}

export interface Dataset {
  userIds: string[];
  itemIds: string[];
  userIndex: ReadonlyMap<string, number>;
  itemIndex: ReadonlyMap<string, number>;
  eventTypes: readonly EventTypeConfig[];
  interactions: Interactions;
  /** Per item: content feature ids (categories, tags, title/description words, attribute buckets). */
  itemFeatures: Csr;
  itemFeatureNames: string[];
  /** Per item: category ids (a subset of the content, kept apart for crosses and diversity). */
  itemCategories: Csr;
  categoryNames: string[];
  /** Per item: publish time in epoch ms, NaN when unknown. */
  itemPublishedAt: Float64Array;
  /** Per user: attribute feature ids. */
  userFeatures: Csr;
  userFeatureNames: string[];
}

export interface DatasetOptions {
  eventTypes?: readonly EventTypeConfig[];
  /** Content tokens (other than categories) carried by fewer items or users are dropped: they cannot generalise. Default 2. */
  minTokenRows?: number;
  /** Buckets (quantiles over the catalog) a numeric attribute is cut into. */
  numericBuckets?: number;
  /**
   * Indexes to keep: a trained model's vocabularies. Listed ids and feature names get these
   * indexes (whether or not the data has them); anything new is numbered after them.
   */
  vocabularies?: DatasetVocabularies;
}

/** The index spaces of a dataset: position = index. A model directory stores them. */
export interface DatasetVocabularies {
  userIds: readonly string[];
  itemIds: readonly string[];
  itemFeatureNames: readonly string[];
  userFeatureNames: readonly string[];
  categoryNames: readonly string[];
}

export function vocabulariesOf(dataset: Dataset): DatasetVocabularies {
  const { userIds, itemIds, itemFeatureNames, userFeatureNames, categoryNames } = dataset;
  return { userIds, itemIds, itemFeatureNames, userFeatureNames, categoryNames };
}

const TYPE_WITH_VALUE = new Set(['rating']);
const MIN_WORD_LENGTH = 2;

/** Collects records in any order and builds a `Dataset`. Items and users seen only in events get no content. */
export class DatasetBuilder {
  private readonly users = new Map<string, number>();
  private readonly items = new Map<string, number>();
  private readonly itemRecords: (ItemRecord | undefined)[] = [];
  private readonly userRecords: (UserRecord | undefined)[] = [];
  private readonly events: Event[] = [];
  private readonly typeIndex = new Map<string, number>();
  private readonly types: readonly EventTypeConfig[];

  constructor(private readonly options: DatasetOptions = {}) {
    this.types = options.eventTypes ?? DEFAULT_EVENT_TYPES;
    if (this.types.length > 255) throw new RangeError(`${this.types.length} event types, at most 255 fit`);
    this.types.forEach((t, i) => this.typeIndex.set(t.name, i));
    for (const id of options.vocabularies?.userIds ?? []) this.userOf(id);
    for (const id of options.vocabularies?.itemIds ?? []) this.itemOf(id);
  }

  addItem(record: ItemRecord): void {
    this.itemRecords[this.itemOf(record.id)] = record;
  }

  addUser(record: UserRecord): void {
    this.userRecords[this.userOf(record.id)] = record;
  }

  /** Adds an event; one of a type the config does not know is refused with a message. */
  addEvent(event: Event): void {
    if (!this.typeIndex.has(event.type)) {
      throw new Error(`event '${event.id}' has type '${event.type}', which is not configured; configure it with a weight`);
    }
    this.userOf(event.userId);
    this.itemOf(event.itemId);
    this.events.push(event);
  }

  build(): Dataset {
    const order = this.events.map((_, i) => i).sort((a, b) => this.eventAt(a).timestamp - this.eventAt(b).timestamp || a - b);
    const n = order.length;
    const interactions: Interactions = {
      length: n,
      user: new Int32Array(n), item: new Int32Array(n), type: new Uint8Array(n), value: new Float32Array(n),
      weight: new Float32Array(n), timestamp: new Float64Array(n), position: new Int16Array(n),
    };
    order.forEach((e, r) => {
      const event = this.eventAt(e);
      const type = this.typeIndex.get(event.type) ?? 0;
      const config = this.types[type];
      const value = event.value ?? Number.NaN;
      interactions.user[r] = this.users.get(event.userId) ?? 0;
      interactions.item[r] = this.items.get(event.itemId) ?? 0;
      interactions.type[r] = type;
      interactions.value[r] = value;
      const scale = config && TYPE_WITH_VALUE.has(config.name) && Number.isFinite(value) ? value : 1;
      interactions.weight[r] = (config?.weight ?? 0) * scale;
      interactions.timestamp[r] = event.timestamp;
      interactions.position[r] = event.position ?? -1;
    });

    const itemCount = this.items.size;
    const known = this.options.vocabularies;
    const content = new Vocabulary(known?.itemFeatureNames);
    const categories = new Vocabulary(known?.categoryNames);
    const itemTokens: string[][] = [];
    const itemCats: string[][] = [];
    const itemPublishedAt = new Float64Array(itemCount).fill(Number.NaN);
    const cutNumeric = numericBucketer(this.itemRecords, this.options.numericBuckets ?? 8);
    for (let i = 0; i < itemCount; i++) {
      const record = this.itemRecords[i];
      const tokens: string[] = [];
      const cats: string[] = [];
      if (record) {
        for (const c of record.categories) {
          cats.push(c);
          tokens.push(`category:${c}`);
        }
        for (const t of record.tags) tokens.push(`tag:${t}`);
        for (const w of words(record.text)) tokens.push(`word:${w}`);
        for (const [key, value] of Object.entries(record.attributes)) {
          const token = typeof value === 'number' ? cutNumeric(key, value) : `${key}=${value}`;
          if (token !== undefined) tokens.push(`attr:${token}`);
        }
        if (record.publishedAt !== undefined) itemPublishedAt[i] = record.publishedAt;
      }
      itemTokens.push([...new Set(tokens)]);
      itemCats.push(cats);
    }
    const userTokens: string[][] = [];
    for (let u = 0; u < this.users.size; u++) {
      const attributes = this.userRecords[u]?.attributes ?? {};
      // User attributes are few and categorical (age group, country, occupation); numbers become decades.
      userTokens.push(Object.entries(attributes).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.floor(v / 10) * 10 : v}`));
    }
    // A token carried by a single item or user (an id, a URL, a zip code) cannot generalise: drop it.
    const minShared = this.options.minTokenRows ?? 2;
    pruneRare(itemTokens, minShared, (t) => t.startsWith('category:'));
    pruneRare(userTokens, minShared, () => false);
    const userVocabulary = new Vocabulary(known?.userFeatureNames);
    return {
      userIds: [...this.users.keys()],
      itemIds: [...this.items.keys()],
      userIndex: this.users,
      itemIndex: this.items,
      eventTypes: this.types,
      interactions,
      itemFeatures: content.csr(itemTokens),
      itemFeatureNames: content.names,
      itemCategories: categories.csr(itemCats),
      categoryNames: categories.names,
      itemPublishedAt,
      userFeatures: userVocabulary.csr(userTokens),
      userFeatureNames: userVocabulary.names,
    };
  }

  private eventAt(i: number): Event {
    const e = this.events[i];
    if (!e) throw new RangeError(`no event ${i}`);
    return e;
  }

  private userOf(id: string): number {
    let u = this.users.get(id);
    if (u === undefined) this.users.set(id, (u = this.users.size));
    return u;
  }

  private itemOf(id: string): number {
    let i = this.items.get(id);
    if (i === undefined) this.items.set(id, (i = this.items.size));
    return i;
  }
}

/** Builds a dataset from records in memory. */
export function buildDataset(
  records: { events: Iterable<Event>; items?: Iterable<ItemRecord>; users?: Iterable<UserRecord> },
  options: DatasetOptions = {},
): Dataset {
  const builder = new DatasetBuilder(options);
  for (const item of records.items ?? []) builder.addItem(item);
  for (const user of records.users ?? []) builder.addUser(user);
  for (const event of records.events) builder.addEvent(event);
  return builder.build();
}

function pruneRare(rows: string[][], min: number, keep: (token: string) => boolean): void {
  const counts = new Map<string, number>();
  for (const tokens of rows) for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  rows.forEach((tokens, r) => {
    rows[r] = tokens.filter((t) => keep(t) || (counts.get(t) ?? 0) >= min);
  });
}

class Vocabulary {
  readonly names: string[] = [];
  private readonly index = new Map<string, number>();

  constructor(known: readonly string[] = []) {
    for (const name of known) this.id(name);
  }

  csr(rows: string[][]): Csr {
    const offsets = new Int32Array(rows.length + 1);
    const indices: number[] = [];
    rows.forEach((tokens, r) => {
      for (const t of new Set(tokens)) indices.push(this.id(t));
      offsets[r + 1] = indices.length;
    });
    return { offsets, indices: Int32Array.from(indices) };
  }

  private id(token: string): number {
    let i = this.index.get(token);
    if (i === undefined) {
      i = this.names.length;
      this.index.set(token, i);
      this.names.push(token);
    }
    return i;
  }
}

/** Lower-cased word tokens of free text; numbers-only tokens (years, sizes) are left to attributes. */
export function words(text: string): string[] {
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length >= MIN_WORD_LENGTH && !/^\d+$/.test(w));
}

/** Numeric attributes cut at catalog quantiles, so `price` or `year` become a handful of tokens. */
function numericBucketer(
  items: readonly (ItemRecord | undefined)[],
  buckets: number,
): (key: string, value: number) => string | undefined {
  const values = new Map<string, number[]>();
  for (const item of items) {
    for (const [k, v] of Object.entries(item?.attributes ?? {})) {
      if (typeof v === 'number' && Number.isFinite(v)) {
        let list = values.get(k);
        if (!list) values.set(k, (list = []));
        list.push(v);
      }
    }
  }
  const cuts = new Map<string, number[]>();
  for (const [k, list] of values) {
    list.sort((a, b) => a - b);
    const c: number[] = [];
    for (let b = 1; b < buckets; b++) {
      const q = list[Math.min(list.length - 1, Math.floor((b * list.length) / buckets))];
      if (q !== undefined && c[c.length - 1] !== q) c.push(q);
    }
    cuts.set(k, c);
  }
  return (key, value) => {
    if (!Number.isFinite(value)) return undefined;
    const c = cuts.get(key) ?? [];
    let b = 0;
    while (b < c.length && value >= (c[b] ?? Infinity)) b++;
    return `${key}#${b}`;
  };
}

/** Per user, the items of the given rows in row (time) order. `rows` defaults to every positive row. */
export function userItems(dataset: Dataset, rows?: Int32Array): Csr {
  const { interactions } = dataset;
  const selected = rows ?? positiveRows(dataset);
  const counts = new Int32Array(dataset.userIds.length + 1);
  for (const r of selected) {
    const at = (interactions.user[r] ?? 0) + 1;
    counts[at] = (counts[at] ?? 0) + 1;
  }
  for (let u = 0; u < dataset.userIds.length; u++) counts[u + 1] = (counts[u + 1] ?? 0) + (counts[u] ?? 0);
  const fill = counts.slice(0, -1);
  const indices = new Int32Array(selected.length);
  const sorted = Int32Array.from(selected).sort();
  for (const r of sorted) {
    const u = interactions.user[r] ?? 0;
    const at = fill[u] ?? 0;
    indices[at] = interactions.item[r] ?? 0;
    fill[u] = at + 1;
  }
  return { offsets: counts, indices };
}

/** Row numbers of the positive interactions (weight > 0). */
export function positiveRows(dataset: Dataset): Int32Array {
  const { weight } = dataset.interactions;
  const out: number[] = [];
  for (let r = 0; r < weight.length; r++) if ((weight[r] ?? 0) > 0) out.push(r);
  return Int32Array.from(out);
}

/** A CSR with ids ≥ `limit` dropped (features a trained model has no rows for). */
export function belowCsr(csr: Csr, limit: number): Csr {
  const offsets = new Int32Array(csr.offsets.length);
  const indices: number[] = [];
  for (let r = 0; r + 1 < csr.offsets.length; r++) {
    for (let k = csr.offsets[r] ?? 0; k < (csr.offsets[r + 1] ?? 0); k++) {
      const id = csr.indices[k] ?? 0;
      if (id < limit) indices.push(id);
    }
    offsets[r + 1] = indices.length;
  }
  return { offsets, indices: Int32Array.from(indices) };
}

/** The ids in row `r` of a CSR matrix. */
export function row(csr: Csr, r: number): Int32Array {
  return csr.indices.subarray(csr.offsets[r] ?? 0, csr.offsets[r + 1] ?? 0);
}

/** The same dataset (same indexes and content) with only the given interaction rows, in time order. */
export function withRows(dataset: Dataset, rows: Int32Array): Dataset {
  const sorted = Int32Array.from(rows).sort();
  const src = dataset.interactions;
  const n = sorted.length;
  const interactions: Interactions = {
    length: n,
    user: new Int32Array(n), item: new Int32Array(n), type: new Uint8Array(n), value: new Float32Array(n),
    weight: new Float32Array(n), timestamp: new Float64Array(n), position: new Int16Array(n),
  };
  sorted.forEach((r, k) => {
    interactions.user[k] = src.user[r] ?? 0;
    interactions.item[k] = src.item[r] ?? 0;
    interactions.type[k] = src.type[r] ?? 0;
    interactions.value[k] = src.value[r] ?? Number.NaN;
    interactions.weight[k] = src.weight[r] ?? 0;
    interactions.timestamp[k] = src.timestamp[r] ?? 0;
    interactions.position[k] = src.position[r] ?? -1;
  });
  return { ...dataset, interactions };
}
