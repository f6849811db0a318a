// Where a model's training data comes from: files (any format `kestrel import` reads) or the
// catalog the core built from its event bus. Recorded in the model directory, so
// `kestrel recommend` can rebuild histories and features from the same place.

import type { EventTypeConfig } from '../../core/domain/event-types.ts';
import { loadCatalogDataset } from './catalog-source.ts';
import type { Dataset, DatasetOptions } from './dataset.ts';
import type { ImportOptions } from './import/read.ts';
import { loadDataset } from './load.ts';
import type { LoadReport } from './load.ts';

export type TrainingSource =
  | {
    interactions: string;
    items?: string;
    users?: string;
    importOptions?: Pick<ImportOptions, 'format' | 'mapping' | 'timestampUnit' | 'delimiter'>;
    eventTypes?: readonly EventTypeConfig[];
  }
  | {
    /** The data folder of a core (`--data`): its catalog.db, fed from the event bus. */
    catalog: string;
    eventTypes?: readonly EventTypeConfig[];
  };

export function describeSource(source: TrainingSource): string {
  return 'catalog' in source ? `the catalog in ${source.catalog} (fed from the event bus)` : source.interactions;
}

export async function loadSource(source: TrainingSource, options: DatasetOptions = {}): Promise<{ dataset: Dataset; report: LoadReport }> {
  const withTypes: DatasetOptions = { ...options, ...(source.eventTypes ? { eventTypes: source.eventTypes } : {}) };
  if ('catalog' in source) return loadCatalogDataset(source.catalog, withTypes);
  return loadDataset({
    interactions: source.interactions,
    ...(source.items ? { items: source.items } : {}),
    ...(source.users ? { users: source.users } : {}),
    ...(source.importOptions ? { importOptions: source.importOptions } : {}),
  }, withTypes);
}
