// Ranker rows from the served-features log (issue 5): each served (request, item) the training join
// labelled (training/data/served-join.ts) becomes a row whose dense features are the ones the
// ranker saw when it served, not a recomputation (no leakage, no training/serving skew; Cheng 2016
// trains Wide&Deep on such impression logs). The id, category and user-feature inputs come from
// the training dataset by id; the wide crosses from FeatureState, the one implementation of them
// (they depend on no history, so they are what serving computed for the same position).
//
// Labels: click = the join's `clicked`, or `engaged` (an add-to-cart or purchase from the slate
// without a logged click still says the item was wanted; the point-in-time rows of
// training/features/ranker-rows.ts give any positive event click 1 too); engagement = the join's
// `engaged`. An item shown and neither clicked nor engaged with is a negative for both heads.
//
// Rows skipped, counted by reason:
//  * featureNames: the record's dense feature names are not this ranker's DENSE_FEATURES (a model
//    with another feature set served it): its values would feed the wrong inputs. The same names in
//    another order are mapped by name.
//  * unranked: served without ranker features (an anonymous request): nothing was logged.
//  * badValues: a logged value that is not a finite number.
//  * unknownItem: the item is not in the training data (it has no id row or categories there).
//  * heldOut: served, or acted on, at or after the start of its user's held-out (validation)
//    period: training on it would show the ranker the evaluation's positives.
// A user who is not in the training data trains the out-of-vocabulary row, as a cold-start user is
// scored in serving; counted as `unknownUsers`.

import type { EventTypeConfig } from '../../core/domain/event-types.ts';
import type { Dataset } from '../data/dataset.ts';
import { joinServedFeatures } from '../data/served-join.ts';
import type { ServedJoinRow, ServedJoinSummary } from '../data/served-join.ts';
import { DENSE_FEATURES, DENSE_INDEX, DENSE_SIZE, FeatureState } from '../features/feature-state.ts';
import { WideBuilder } from '../features/point-in-time.ts';
import type { ScoringRows } from './inputs.ts';

export type ServedSkipReason = 'featureNames' | 'unranked' | 'badValues' | 'unknownItem' | 'heldOut';

export interface ServedRowsReport {
  /** Served-log files read, requests and rows in them (from the join). */
  files: number;
  requests: number;
  read: number;
  /** Unreadable log lines (a crash mid-append) and records of erased users, left out by the join. */
  badLines: number;
  erased: number;
  /** Rows that train the ranker, and how many of them are positives of each head. */
  used: number;
  clicked: number;
  engaged: number;
  skipped: Record<ServedSkipReason, number>;
  /** Used rows of users not in the training data (they train the out-of-vocabulary row). */
  unknownUsers: number;
  /** Used rows per model version that served them. */
  modelVersions: Record<string, number>;
}

/** Served rows ready for the ranker: the scoring inputs and both heads' labels. */
export interface ServedRows {
  rows: ScoringRows;
  click: Uint8Array;
  engagement: Uint8Array;
  report: ServedRowsReport;
}

export interface ServedRowsOptions {
  /** Hash buckets of the wide crosses: the ranker's. */
  wideBuckets: number;
  /** Per user index: start of their held-out period (Infinity: none). Rows from then on are skipped. */
  heldOutFrom?: ArrayLike<number>;
}

/** Collects joined rows into ranker rows (see the header for what is kept and why). */
export class ServedRowsBuilder {
  private readonly state: FeatureState;
  private readonly wide = new WideBuilder();
  private readonly user: number[] = [];
  private readonly item: number[] = [];
  private readonly click: number[] = [];
  private readonly engagement: number[] = [];
  private dense = new Float32Array(1024 * DENSE_SIZE);
  private readonly row = new Float32Array(DENSE_SIZE);
  /** Logged name lists already checked against DENSE_FEATURES. */
  private readonly namesMatch = new Map<string, boolean>();
  private readonly report: ServedRowsReport = {
    files: 0, requests: 0, read: 0, badLines: 0, erased: 0, used: 0, clicked: 0, engaged: 0, unknownUsers: 0,
    skipped: { featureNames: 0, unranked: 0, badValues: 0, unknownItem: 0, heldOut: 0 }, modelVersions: {},
  };

  constructor(private readonly dataset: Dataset, private readonly options: ServedRowsOptions) {
    this.state = new FeatureState(dataset, { wideBuckets: options.wideBuckets });
  }

  /** Adds one joined row; returns why it was skipped, or undefined when it was used. */
  add(joined: ServedJoinRow): ServedSkipReason | undefined {
    this.report.read++;
    const reason = this.check(joined);
    if (reason !== undefined) {
      this.report.skipped[reason]++;
      return reason;
    }
    const { dataset } = this;
    const known = dataset.userIndex.get(joined.userId);
    const u = known ?? dataset.userIds.length;
    const i = dataset.itemIndex.get(joined.itemId) ?? 0;
    const n = this.user.length;
    if ((n + 1) * DENSE_SIZE > this.dense.length) {
      const grown = new Float32Array(this.dense.length * 2);
      grown.set(this.dense);
      this.dense = grown;
    }
    this.dense.set(this.row, n * DENSE_SIZE);
    // The position the ranker saw (unknown before ranking, as serving logs it), for the item × position cross.
    const position = (this.row[DENSE_INDEX.positionMissing] ?? 1) === 1 ? -1 : Math.round(Math.expm1(this.row[DENSE_INDEX.position] ?? 0));
    this.wide.pushRow(this.state, u, i, position);
    const click = joined.labels.clicked === 1 || joined.labels.engaged === 1 ? 1 : 0;
    this.user.push(u);
    this.item.push(i);
    this.click.push(click);
    this.engagement.push(joined.labels.engaged);
    this.report.used++;
    this.report.clicked += click;
    this.report.engaged += joined.labels.engaged;
    if (known === undefined) this.report.unknownUsers++;
    this.report.modelVersions[joined.modelVersion] = (this.report.modelVersions[joined.modelVersion] ?? 0) + 1;
    return undefined;
  }

  /** The rows collected so far, with the join's own tallies when given. */
  build(join?: ServedJoinSummary): ServedRows {
    const n = this.user.length;
    const report: ServedRowsReport = { ...this.report, skipped: { ...this.report.skipped }, modelVersions: { ...this.report.modelVersions } };
    if (join) Object.assign(report, { files: join.files.length, requests: join.requests, badLines: join.badLines, erased: join.erased });
    return {
      rows: { length: n, user: Int32Array.from(this.user), item: Int32Array.from(this.item), dense: this.dense.slice(0, n * DENSE_SIZE), ...this.wide.build() },
      click: Uint8Array.from(this.click),
      engagement: Uint8Array.from(this.engagement),
      report,
    };
  }

  /** Why the row cannot train the ranker, or undefined; fills `this.row` with its dense features. */
  private check(joined: ServedJoinRow): ServedSkipReason | undefined {
    const names = Object.keys(joined.features);
    if (names.length === 0) return 'unranked';
    const key = names.join('\n');
    let match = this.namesMatch.get(key);
    if (match === undefined) {
      const logged = new Set(names);
      match = logged.size === DENSE_SIZE && DENSE_FEATURES.every((name) => logged.has(name));
      this.namesMatch.set(key, match);
    }
    if (!match) return 'featureNames';
    for (let f = 0; f < DENSE_SIZE; f++) {
      const value: unknown = joined.features[DENSE_FEATURES[f] ?? ''];
      if (typeof value !== 'number' || !Number.isFinite(value)) return 'badValues';
      this.row[f] = value;
    }
    if (!this.dataset.itemIndex.has(joined.itemId)) return 'unknownItem';
    const u = this.dataset.userIndex.get(joined.userId);
    const from = u === undefined ? Infinity : (this.options.heldOutFrom?.[u] ?? Infinity);
    if (joined.servedAt >= from || (joined.lastEventAt ?? -Infinity) >= from) return 'heldOut';
    return undefined;
  }
}

export interface LoadServedRowsOptions extends ServedRowsOptions {
  /** The core's data folder: `<data>/served/served-*.jsonl` and the events in `<data>/catalog.db`. */
  dataDir: string;
  /** Attribution window of the join (default its 24 h). */
  windowMs?: number | undefined;
  eventTypes?: readonly EventTypeConfig[] | undefined;
}

/** Joins the data folder's served-features log with its events and builds the ranker rows. */
export async function loadServedRows(dataset: Dataset, options: LoadServedRowsOptions): Promise<ServedRows> {
  const builder = new ServedRowsBuilder(dataset, options);
  const summary = await joinServedFeatures(
    { dataDir: options.dataDir, windowMs: options.windowMs, eventTypes: options.eventTypes },
    (row) => { builder.add(row); },
  );
  return builder.build(summary);
}
