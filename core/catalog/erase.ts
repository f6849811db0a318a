// GDPR/CCPA erasure of one user (issue 3: DELETE /v1/users/{id}).
//
// What this removes now: the profile, every stored interaction, and the user's share of the
// derived per-item counters (decremented, so no aggregate keeps a trace).
//
// The bus log is append-only and holds the user's events until retention deletes their
// segments. Erasure is honoured there in two ways:
// 1. A tombstone (erased_users) written before anything is deleted: every later append into the
//    InteractionStore (the projector, a replay from offset 0 under a new group) drops events of
//    an erased user with `timestamp <= erased_at`. Written first so a projector running
//    concurrently cannot re-insert events between the delete and the mark.
// 2. With `bus`, an ERASE_USER_EVENT_TYPE record published (durably) before that: the tombstone
//    lives in the SQLite file, and a rebuild from the log after losing the file must not bring
//    the user back. The projector applies the record in log order (tombstone, the user's events
//    up to its time, the profile if last written before it), so a rebuild ends where the live
//    store did.
// Events the user sends after erasure (timestamp later than erased_at) are a new relationship
// and are kept. An event stamped in the future before erasure would pass the tombstone: the
// API's timestamp limit (no timestamps far in the future) bounds that window.
//
// Derived state that later issues must hook in through `hooks` (each returns what it removed,
// reported under its name):
// * edge: cached slates and the session/bandit Durable Object state keyed by the user;
// * core serving (wired in core/serving/index.ts): `servingSnapshot` stops the engine using the
//   user's snapshot history and the model's rows for them at once and rebuilds the snapshot
//   (co-visitation, trending and features) without them; `servedFeatureLog` rewrites the
//   served-features log without their records. Item vectors hold no user data; the model's
//   rows for the user are never used again for them and go with the next retraining;
// * training: datasets already written (drop the user's rows; rebuilt sets read through the
//   tombstone); models trained on the user are retrained on the next schedule.
// * Kafka: compacted topics keyed by user id can take a tombstone record; the `events` topic
//   ages out under retention like the embedded log.
import { ERASE_USER_EVENT_TYPE } from '../domain/catalog.ts';
import type { EventBus } from '../events/bus.ts';
import type { InteractionStore, UserStore } from './ports.ts';

export interface ErasureReport {
  userId: string;
  /** When the tombstone says the user was erased, epoch ms. */
  erasedAt: number;
  removed: {
    profile: 0 | 1;
    events: number;
    /** Anything else a hook removed, by the hook's name. */
    [derived: string]: number;
  };
}

/** Removes one kind of derived state for the user; returns how many things it removed. */
export type ErasureHook = (userId: string) => Promise<number>;

export interface EraseOptions {
  users: UserStore;
  interactions: InteractionStore;
  /** Where to record the erasure for rebuilds; leave out only where the log is never replayed. */
  bus?: EventBus;
  hooks?: Record<string, ErasureHook>;
  now?: () => number;
}

/** Erases the user everywhere the stores reach; safe to run again (it finishes what it began). */
export async function eraseUser(userId: string, options: EraseOptions): Promise<ErasureReport> {
  const erasedAt = (options.now ?? Date.now)();
  await options.bus?.publish([{ id: `${ERASE_USER_EVENT_TYPE}:${userId}:${erasedAt}`, type: ERASE_USER_EVENT_TYPE, userId, itemId: '', timestamp: erasedAt }]);
  await options.interactions.markErased(userId, erasedAt);
  const events = await options.interactions.deleteUserEvents(userId);
  const profile = (await options.users.delete(userId)) ? 1 : 0;
  const removed: ErasureReport['removed'] = { profile, events };
  for (const [name, hook] of Object.entries(options.hooks ?? {})) removed[name] = await hook(userId);
  return { userId, erasedAt, removed };
}
