// Each isolate's memory of the session snapshots it read or wrote (SESSION_CACHE_MS).
//
// A hit re-ranks with the user's session (edge/session.ts): reading it is one Durable Object call,
// which on its own costs a trivial Worker more than its whole request (`npm run bench -- edge`,
// trivial-worker-one-do-call). So an isolate reuses a snapshot for SESSION_CACHE_MS (default
// 1,000 ms) after it read it, and an isolate that records a user's events keeps the snapshot the
// object answers with (write-through): a client's event and its next recommendation on the same
// connection reach the same isolate and see each other at once. What another isolate wrote shows
// here once the window has passed. "0" reads the object on every request.
//
// A read that started before a write this isolate kept does not overwrite it (each entry carries
// the time it is known to be current from; the newer wins).
import type { SessionSnapshot } from './session.ts';
import { msVar } from './vars.ts';

export const DEFAULT_SESSION_CACHE_MS = 1000;
/** Users whose snapshots one isolate keeps; the least recently kept go first. */
const MAX_KEPT_SESSIONS = 10_000;

interface Kept {
  snapshot: SessionSnapshot;
  /** Epoch ms from which the snapshot is known to be current. */
  at: number;
}

const kept = new Map<string, Kept>();

/** SESSION_CACHE_MS as a number of milliseconds (the default when unset or not a number ≥ 0). */
export function sessionCacheMs(env: Env): number {
  return msVar(env.SESSION_CACHE_MS, DEFAULT_SESSION_CACHE_MS);
}

/** The user's kept snapshot when it is younger than `maxAgeMs` at `now`. */
export function keptSession(userId: string, now: number, maxAgeMs: number): SessionSnapshot | undefined {
  const entry = kept.get(userId);
  return entry !== undefined && now - entry.at < maxAgeMs ? entry.snapshot : undefined;
}

/** Keeps `snapshot`, current as of `at`, unless the isolate already keeps one at least as new. */
export function keepSession(userId: string, snapshot: SessionSnapshot, at: number): void {
  const entry = kept.get(userId);
  if (entry !== undefined && entry.at >= at) return;
  kept.delete(userId);
  kept.set(userId, { snapshot, at });
  for (const oldest of kept.keys()) {
    if (kept.size <= MAX_KEPT_SESSIONS) break;
    kept.delete(oldest);
  }
}

/** Drops the user's snapshot: the next request reads the object (after a write that may have failed). */
export function forgetSession(userId: string): void {
  kept.delete(userId);
}

/** Drops every kept snapshot (tests that change a session behind this isolate's back). */
export function forgetKeptSessions(): void {
  kept.clear();
}
