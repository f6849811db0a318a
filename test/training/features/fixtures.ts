// Datasets for the feature and ranker tests: a small synthetic world, and row subsets of a dataset.
import { buildDataset } from '../../../training/data/dataset.ts';
import type { Dataset, Interactions } from '../../../training/data/dataset.ts';
import { syntheticEvents } from '../../../training/data/sessions.ts';
import { buildWorld } from '../../../training/data/synthetic.ts';

export function syntheticDataset(size: { users: number; items: number; events: number; seed?: number; clusters?: number }): Dataset {
  const world = buildWorld(size);
  return buildDataset({ events: syntheticEvents(world), items: world.items, users: world.users });
}

/** The dataset with only the given interaction rows (in the given order, which must keep time order). */
export function withRows(dataset: Dataset, rows: readonly number[]): Dataset {
  const src = dataset.interactions;
  const n = rows.length;
  const pick = <T extends Int32Array | Uint8Array | Float32Array | Float64Array | Int16Array>(a: T, make: (n: number) => T): T => {
    const out = make(n);
    rows.forEach((r, k) => (out[k] = a[r] ?? 0));
    return out;
  };
  const interactions: Interactions = {
    length: n,
    user: pick(src.user, (k) => new Int32Array(k)),
    item: pick(src.item, (k) => new Int32Array(k)),
    type: pick(src.type, (k) => new Uint8Array(k)),
    value: pick(src.value, (k) => new Float32Array(k)),
    weight: pick(src.weight, (k) => new Float32Array(k)),
    timestamp: pick(src.timestamp, (k) => new Float64Array(k)),
    position: pick(src.position, (k) => new Int16Array(k)),
  };
  return { ...dataset, interactions };
}

/** Rows 0..n-1 of the dataset for which `keep(row)` holds. */
export function rowsWhere(dataset: Dataset, keep: (r: number) => boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < dataset.interactions.length; r++) if (keep(r)) out.push(r);
  return out;
}
