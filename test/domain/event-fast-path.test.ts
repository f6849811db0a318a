// The events fast path (core/domain/schemas.ts) against the schema it stands in for: on random
// valid events and on events with one field pushed past a rule (each limit from limits.ts, on
// both sides), the fast path either returns exactly the schema's output (same keys, same order)
// or steps aside; it never accepts what the schema rejects. Seeds are fixed: deterministic.
import { describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import {
  ID_PATTERN, MAX_ATTRIBUTE_KEY_LENGTH, MAX_ATTRIBUTE_STRING_BYTES, MAX_CONTEXT_KEYS, MAX_FUTURE_SKEW_MS,
  MAX_ID_LENGTH, MAX_POSITION, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS,
} from '../../core/domain/limits.ts';
import { Xoshiro128 } from '../../core/domain/random.ts';
import { eventFastPath, eventInputSchema } from '../../core/domain/schemas.ts';

const NOW = 1_764_000_000_000;
const TYPES = [{ name: 'view', weight: 1 }, { name: 'purchase', weight: 8 }, { name: 'add-to-cart', weight: 4 }];
const CASES = 20_000;

const ID_CHARS = 'abcXYZ019._~:@+=-';
function pick<T>(rng: Xoshiro128, xs: readonly T[]): T {
  return xs[rng.nextInt(xs.length)] as T;
}
function idOf(rng: Xoshiro128, length = 1 + rng.nextInt(24)): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ID_CHARS[rng.nextInt(ID_CHARS.length)];
  return s;
}

function validEvent(rng: Xoshiro128): Record<string, unknown> {
  const e: Record<string, unknown> = {
    id: idOf(rng), type: pick(rng, TYPES).name, userId: idOf(rng), itemId: idOf(rng),
    timestamp: pick(rng, [MIN_TIMESTAMP_MS, NOW, NOW + MAX_FUTURE_SKEW_MS, rng.nextInt(NOW / 1000) * 1000]),
  };
  if (rng.next() < 0.5) e.value = pick(rng, [0, -1.5, 9.99, 1e300, rng.next()]);
  if (rng.next() < 0.5) e.requestId = idOf(rng);
  if (rng.next() < 0.5) e.position = pick(rng, [0, MAX_POSITION, rng.nextInt(MAX_POSITION)]);
  if (rng.next() < 0.5) {
    const context: Record<string, string | number> = {};
    const keys = rng.next() < 0.1 ? MAX_CONTEXT_KEYS : rng.nextInt(4);
    for (let k = 0; k < keys; k++) {
      context[rng.next() < 0.1 ? 'k'.repeat(MAX_ATTRIBUTE_KEY_LENGTH) : `key${k}`] = rng.next() < 0.5
        ? pick(rng, ['mobile', 'é'.repeat(MAX_ATTRIBUTE_STRING_BYTES / 2), 'x'.repeat(MAX_ATTRIBUTE_STRING_BYTES), ''])
        : pick(rng, [0, 42, -3.25]);
    }
    e.context = context;
  }
  // Keys in a random order: the output's order is the schema's either way.
  const keys = Object.keys(e);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
  }
  return Object.fromEntries(keys.map((k) => [k, e[k]]));
}

/** One field of a valid event set to a value on either side of a rule. */
const MUTATIONS: ReadonlyArray<(e: Record<string, unknown>, rng: Xoshiro128) => void> = [
  (e) => { e.id = ''; },
  (e) => { e.id = 'a'.repeat(MAX_ID_LENGTH); },
  (e) => { e.userId = 'a'.repeat(MAX_ID_LENGTH + 1); },
  (e, rng) => { e.itemId = `${idOf(rng)}${pick(rng, ['/', ' ', '%', 'é', '\n'])}`; },
  (e) => { e.requestId = 42; },
  (e) => { delete e.id; },
  (e) => { delete e.timestamp; },
  (e) => { delete e.type; },
  (e) => { e.type = 'click'; },
  (e) => { e.type = '$erase'; },
  (e) => { e.type = null; },
  (e) => { e.value = '3'; },
  (e) => { e.value = null; },
  (e) => { e.timestamp = MIN_TIMESTAMP_MS - 1; },
  (e) => { e.timestamp = NOW + MAX_FUTURE_SKEW_MS + 1; },
  (e) => { e.timestamp = MAX_TIMESTAMP_MS + 1; },
  (e) => { e.timestamp = 1.5; },
  (e) => { e.timestamp = '2025-11-24T12:00:00Z'; },
  (e) => { e.timestamp = '2025-02-30T12:00:00Z'; },
  (e) => { e.timestamp = '2025-11-24T12:00:00'; },
  (e) => { e.timestamp = `${NOW}`; },
  (e) => { e.position = -1; },
  (e) => { e.position = MAX_POSITION + 1; },
  (e) => { e.position = 2.5; },
  (e) => { e.position = '3'; },
  (e) => { e.context = []; },
  (e) => { e.context = null; },
  (e) => { e.context = 'web'; },
  (e) => { e.context = { '': 'x' }; },
  (e) => { e.context = { ['k'.repeat(MAX_ATTRIBUTE_KEY_LENGTH + 1)]: 'x' }; },
  (e) => { e.context = { a: 'x'.repeat(MAX_ATTRIBUTE_STRING_BYTES + 1) }; },
  (e) => { e.context = { a: 'é'.repeat(MAX_ATTRIBUTE_STRING_BYTES / 2 + 1) }; },
  (e) => { e.context = { a: true }; },
  (e) => { e.context = { a: { b: 1 } }; },
  (e) => { e.context = Object.fromEntries(Array.from({ length: MAX_CONTEXT_KEYS + 1 }, (_, k) => [`k${k}`, k])); },
  (e) => { e.extra = 1; },
  (e) => { e.userid = 'u'; },
];

describe('the events fast path', () => {
  const schema = eventInputSchema({ eventTypes: TYPES, now: () => NOW });
  const fast = eventFastPath(schema);

  it('exists for every schema eventInputSchema builds', () => {
    expect(fast).toBeTypeOf('function');
    expect(eventFastPath(eventInputSchema())).toBeTypeOf('function');
  });

  /** JSON round trip (what the route sees), then both; returns whether the fast path took it. */
  function agree(event: unknown, label: string): boolean {
    const input: unknown = JSON.parse(JSON.stringify(event));
    const parsed = schema.safeParse(input);
    const got: Event | undefined = fast?.(JSON.parse(JSON.stringify(event)));
    if (got === undefined) return false;
    expect(parsed.success, `${label}: the fast path accepted what the schema rejects: ${JSON.stringify(event).slice(0, 200)}`).toBe(true);
    // Byte for byte, keys in order: the log holds the same bytes whichever path accepted it.
    expect(JSON.stringify(got), label).toBe(JSON.stringify(parsed.data));
    return true;
  }

  it('accepts random valid events exactly as the schema outputs them', () => {
    const rng = new Xoshiro128(7);
    let taken = 0;
    for (let i = 0; i < CASES; i++) {
      const event = validEvent(rng);
      expect(schema.safeParse(event).success, JSON.stringify(event).slice(0, 200)).toBe(true);
      if (agree(event, `valid ${i}`)) taken++;
    }
    // Every valid JSON event with an epoch-ms timestamp is the common shape.
    expect(taken).toBe(CASES);
  });

  it('never accepts an event the schema rejects, one rule broken at a time', () => {
    const rng = new Xoshiro128(11);
    let rejected = 0;
    for (let i = 0; i < CASES; i++) {
      const event = validEvent(rng);
      const m = i % MUTATIONS.length;
      (MUTATIONS[m] as (e: Record<string, unknown>, rng: Xoshiro128) => void)(event, rng);
      if (!schema.safeParse(JSON.parse(JSON.stringify(event))).success) rejected++;
      agree(event, `mutation ${m}, case ${i}`);
    }
    expect(rejected).toBeGreaterThan(CASES * 0.8);
  });

  it('steps aside for what only the schema handles: ISO timestamps, __proto__ keys, non-JSON values', () => {
    const base = { id: 'e', type: 'view', userId: 'u', itemId: 'i', timestamp: NOW };
    expect(fast?.({ ...base, timestamp: '2025-11-24T12:00:00Z' })).toBeUndefined();
    expect(fast?.(JSON.parse('{"id":"e","type":"view","userId":"u","itemId":"i","timestamp":5,"context":{"__proto__":"x"}}'))).toBeUndefined();
    expect(fast?.({ ...base, value: undefined })).toBeUndefined();
    expect(fast?.({ ...base, value: Number.NaN })).toBeUndefined();
    expect(fast?.(Object.assign(Object.create(null) as object, base))).toBeUndefined();
    expect(fast?.([base])).toBeUndefined();
    expect(fast?.(null)).toBeUndefined();
    expect(fast?.(base)).toEqual(base);
    expect(ID_PATTERN.test('e')).toBe(true);
  });
});
