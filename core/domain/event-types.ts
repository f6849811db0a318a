// The configured interaction types and the weight training gives each (issue 3: "Types are
// configurable with weights"). Plain data and one check, no zod: the runtime, the CLI and
// training read it without building the request schemas.
import { BUILTIN_EVENT_TYPES } from './event.ts';
import { ID_CHARACTERS, ID_PATTERN, MAX_EVENT_TYPES, MAX_EVENT_TYPE_LENGTH } from './limits.ts';

/** One configured interaction type: its name and the weight training gives it (< 0: negative). */
export interface EventTypeConfig {
  name: string;
  weight: number;
}

const BUILTIN_WEIGHTS: Record<(typeof BUILTIN_EVENT_TYPES)[number], number> = {
  // An impression is exposure, not interest: weight 0, used to mine negatives.
  impression: 0,
  view: 1,
  click: 2,
  'add-to-cart': 4,
  purchase: 8,
  // A rating's strength is in `value`; the weight scales it.
  rating: 1,
  like: 4,
  dislike: -4,
  skip: -1,
};

/** The event types a deployment gets unless its config says otherwise. */
export const DEFAULT_EVENT_TYPES: readonly EventTypeConfig[] = BUILTIN_EVENT_TYPES.map(
  (name) => ({ name, weight: BUILTIN_WEIGHTS[name] }),
);

/** Checks a configured set of event types; throws an Error that says what to fix. */
export function checkEventTypeConfig(types: readonly EventTypeConfig[]): void {
  if (types.length === 0) throw new Error('event types: configure at least one event type');
  if (types.length > MAX_EVENT_TYPES) {
    throw new Error(`event types: ${types.length} configured, over the limit of ${MAX_EVENT_TYPES}`);
  }
  const seen = new Set<string>();
  for (const { name, weight } of types) {
    if (name.length === 0 || name.length > MAX_EVENT_TYPE_LENGTH || !ID_PATTERN.test(name)) {
      throw new Error(`event type '${name}': use 1 to ${MAX_EVENT_TYPE_LENGTH} of ${ID_CHARACTERS}`);
    }
    if (seen.has(name)) throw new Error(`event type '${name}' is configured twice`);
    if (!Number.isFinite(weight)) throw new Error(`event type '${name}' has weight ${weight}; use a finite number`);
    seen.add(name);
  }
}

