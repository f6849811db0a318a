export type {
  AppendOptions, AppendReport, EventQuery, InteractionStore, ItemListOptions, ItemStore, ListOptions, Page,
  UpsertOutcome, UpsertResult, UserStore,
} from './ports.ts';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './ports.ts';
export { DEFAULT_CHECKPOINT_PAGES, openSqliteCatalog, SCHEMA_VERSION } from './sqlite/index.ts';
export type { SqliteCatalog, SqliteCatalogOptions } from './sqlite/index.ts';
export { createProjector, DEFAULT_PROJECTOR_GROUP, logPositions } from './projector.ts';
export type { BusPositions, Projector, ProjectorOptions, ProjectorTotals } from './projector.ts';
export { eraseUser } from './erase.ts';
export type { EraseOptions, ErasureHook, ErasureReport } from './erase.ts';
