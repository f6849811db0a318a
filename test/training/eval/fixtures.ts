// Tiny datasets for the evaluation tests, built with the project's own `buildDataset`.
import type { Event } from '../../../core/domain/event.ts';
import { Xoshiro128 } from '../../../core/domain/random.ts';
import { buildDataset } from '../../../training/data/dataset.ts';
import type { Dataset } from '../../../training/data/dataset.ts';

const T0 = Date.UTC(2025, 0, 1);

/** A dataset from (user, item) click pairs, in the order given, one second apart. */
export function clicks(pairs: readonly [string, string][]): Dataset {
  const events: Event[] = pairs.map(([userId, itemId], n) => ({ id: `e${n}`, type: 'click', userId, itemId, timestamp: T0 + n * 1000 }));
  return buildDataset({ events });
}

/**
 * `users` users, each rating between 1 and `maxPerUser` distinct items out of `items`, with
 * distinct timestamps in shuffled order, plus a few negative (`dislike`) events. User 0 rates one item.
 */
export function randomRatings(users: number, items: number, maxPerUser: number, seed: number): Dataset {
  const rng = new Xoshiro128(seed);
  const events: Event[] = [];
  const times: number[] = [];
  let n = 0;
  for (let u = 0; u < users; u++) {
    // User 0 always has a single rating, so the one-rating rule is exercised.
    const count = u === 0 ? 1 : 1 + rng.nextInt(maxPerUser);
    const chosen = new Set<number>();
    while (chosen.size < Math.min(count, items)) chosen.add(rng.nextInt(items));
    for (const i of chosen) {
      events.push({ id: `r${n}`, type: 'rating', userId: `u${u}`, itemId: `i${i}`, value: 1 + rng.nextInt(5), timestamp: 0 });
      times.push(n++);
    }
    if (rng.next() < 0.3) {
      events.push({ id: `d${n}`, type: 'dislike', userId: `u${u}`, itemId: `i${rng.nextInt(items)}`, timestamp: 0 });
      times.push(n++);
    }
  }
  // Distinct timestamps, not in insertion order.
  for (let i = times.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = times[i] ?? 0;
    times[i] = times[j] ?? 0;
    times[j] = t;
  }
  events.forEach((e, i) => (e.timestamp = T0 + (times[i] ?? 0) * 60_000));
  return buildDataset({ events });
}
