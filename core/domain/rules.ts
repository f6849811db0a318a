// Business rules applied to a ranked list after scoring: boosts, buries, a per-category cap and
// pinned positions, configured as JSON by the people who run the catalog. Order of application:
//   1. boost  — scores are taken as log-domain (the ranker's logits or log-probabilities), so a
//               boost by `factor` adds ln(factor): ×factor on the odds or the probability, and it
//               works the same for negative scores. Several matching boosts compound. Re-sorted,
//               stable (equal scores keep their input order).
//   2. bury   — matching candidates move to the end, keeping their relative order.
//   3. maxPerCategory — walking best first, a candidate is dropped when one of its categories
//               already has that many items in the result; the next best fill in. Candidates
//               without categories are never capped.
//   4. pin    — a pinned item is placed at its 0-based position, if it is among the candidates
//               (a rule never invents an item). Pins win over the other rules: a pinned item is
//               placed even if it was buried, beyond the top n, or over a category cap, and it
//               counts towards the cap of its categories. Two pins on one position: the first in
//               `rules.pin` gets it, the next goes one lower. A pin at or beyond the result's
//               length lands at the end if there is room in n, otherwise it is not shown.
// A rule naming both `item` and `category` matches candidates that have both.
// Pure: no runtime imports.

export interface PinRule {
  item: string;
  /** 0-based position in the result. */
  position: number;
}

export interface BoostRule {
  item?: string;
  category?: string;
  /** Positive; > 1 promotes, < 1 demotes. Adds ln(factor) to the score. */
  factor: number;
}

export interface BuryRule {
  item?: string;
  category?: string;
}

export interface BusinessRules {
  pin?: readonly PinRule[];
  boost?: readonly BoostRule[];
  bury?: readonly BuryRule[];
  /** At most this many items sharing a category in the result. */
  maxPerCategory?: number;
}

export interface RuleCandidate {
  item: string;
  score: number;
  categories: readonly string[];
}

function matches(rule: BuryRule, c: RuleCandidate): boolean {
  return (rule.item === undefined || rule.item === c.item) && (rule.category === undefined || c.categories.includes(rule.category));
}

/**
 * The top n of `ranked` (best first) after the rules, in the order described in the file header.
 * Boosted candidates come back as shallow copies carrying the boosted score, so a later re-rank
 * (the edge's) sees the boost; every other candidate is the input object itself. Items listed
 * twice in `ranked` count once, at their first (best) entry.
 */
export function applyRules<T extends RuleCandidate>(ranked: readonly T[], rules: BusinessRules, n: number): T[] {
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`applyRules needs a non-negative integer n, got ${n}`);
  const seen = new Set<string>();
  let list: T[] = [];
  for (const c of ranked) {
    if (seen.has(c.item)) continue;
    seen.add(c.item);
    list.push(c);
  }

  const boosts = rules.boost ?? [];
  for (const b of boosts) {
    if (!(b.factor > 0 && b.factor < Infinity)) throw new RangeError(`boost factor must be a positive finite number, got ${b.factor}`);
  }
  if (boosts.length > 0) {
    list = list.map((c) => {
      let add = 0;
      for (const b of boosts) if (matches(b, c)) add += Math.log(b.factor);
      return add === 0 ? c : { ...c, score: c.score + add };
    });
    list.sort((a, b) => b.score - a.score);
  }

  const buries = rules.bury ?? [];
  if (buries.length > 0) {
    const kept: T[] = [];
    const buried: T[] = [];
    for (const c of list) (buries.some((b) => matches(b, c)) ? buried : kept).push(c);
    list = kept.concat(buried);
  }

  // Pins: the first rule for an item wins; only items among the candidates are placed.
  const byItem = new Map<string, T>();
  for (const c of list) byItem.set(c.item, c);
  const pins: { c: T; position: number }[] = [];
  const pinned = new Set<string>();
  for (const { item, position } of rules.pin ?? []) {
    const c = byItem.get(item);
    if (c === undefined || pinned.has(item)) continue;
    pinned.add(item);
    pins.push({ c, position });
  }
  pins.sort((a, b) => a.position - b.position);

  const cap = rules.maxPerCategory ?? Infinity;
  const perCategory = new Map<string, number>();
  const count = (c: T): void => {
    for (const cat of c.categories) perCategory.set(cat, (perCategory.get(cat) ?? 0) + 1);
  };
  const shown = pins.filter((p) => p.position < n);
  for (const p of shown) count(p.c);
  const rest: T[] = [];
  const room = n - shown.length;
  for (const c of list) {
    if (rest.length >= room) break;
    if (pinned.has(c.item)) continue;
    if (cap !== Infinity && c.categories.some((cat) => (perCategory.get(cat) ?? 0) >= cap)) continue;
    count(c);
    rest.push(c);
  }

  const out: T[] = [];
  let r = 0;
  let p = 0;
  while (out.length < n && (r < rest.length || p < shown.length)) {
    const pin = shown[p];
    if (pin !== undefined && (pin.position <= out.length || r >= rest.length)) {
      out.push(pin.c);
      p++;
    } else {
      out.push(rest[r++] as T);
    }
  }
  return out;
}

const RULE_KEYS = ['pin', 'boost', 'bury', 'maxPerCategory'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(v: Record<string, unknown>, path: string, known: readonly string[]): void {
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) throw new Error(`${path}.${key} is not a known field; known fields: ${known.join(', ')}`);
  }
}

function nonEmptyString(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') throw new Error(`${path} must be a non-empty string`);
  return v;
}

function optionalString(v: Record<string, unknown>, key: string, path: string): string | undefined {
  return v[key] === undefined ? undefined : nonEmptyString(v[key], `${path}.${key}`);
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${path} must be an array`);
  return v;
}

/** A match target: item and/or category, at least one. */
function target(v: Record<string, unknown>, path: string): BuryRule {
  const item = optionalString(v, 'item', path);
  const category = optionalString(v, 'category', path);
  if (item === undefined && category === undefined) throw new Error(`${path} must name an item, a category or both`);
  return { ...(item === undefined ? {} : { item }), ...(category === undefined ? {} : { category }) };
}

/**
 * Checks business rules read from config JSON and returns them as a fresh object. Errors name
 * the offending path, e.g. "rules.boost[2].factor must be a positive number".
 */
export function parseBusinessRules(json: unknown): BusinessRules {
  if (!isRecord(json)) throw new Error('rules must be an object with any of: pin, boost, bury, maxPerCategory');
  checkKeys(json, 'rules', RULE_KEYS);
  const rules: BusinessRules = {};
  if (json.pin !== undefined) {
    rules.pin = array(json.pin, 'rules.pin').map((p, i) => {
      const path = `rules.pin[${i}]`;
      if (!isRecord(p)) throw new Error(`${path} must be an object { item, position }`);
      checkKeys(p, path, ['item', 'position']);
      const item = nonEmptyString(p.item, `${path}.item`);
      const { position } = p;
      if (typeof position !== 'number' || !Number.isInteger(position) || position < 0) {
        throw new Error(`${path}.position must be a non-negative integer (0 = first)`);
      }
      return { item, position };
    });
  }
  if (json.boost !== undefined) {
    rules.boost = array(json.boost, 'rules.boost').map((b, i) => {
      const path = `rules.boost[${i}]`;
      if (!isRecord(b)) throw new Error(`${path} must be an object { item?, category?, factor }`);
      checkKeys(b, path, ['item', 'category', 'factor']);
      const { factor } = b;
      if (typeof factor !== 'number' || !(factor > 0 && factor < Infinity)) {
        throw new Error(`${path}.factor must be a positive number (> 1 promotes, < 1 demotes)`);
      }
      return { ...target(b, path), factor };
    });
  }
  if (json.bury !== undefined) {
    rules.bury = array(json.bury, 'rules.bury').map((b, i) => {
      const path = `rules.bury[${i}]`;
      if (!isRecord(b)) throw new Error(`${path} must be an object { item?, category? }`);
      checkKeys(b, path, ['item', 'category']);
      return target(b, path);
    });
  }
  if (json.maxPerCategory !== undefined) {
    const m = json.maxPerCategory;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1) throw new Error('rules.maxPerCategory must be a positive integer');
    rules.maxPerCategory = m;
  }
  return rules;
}
