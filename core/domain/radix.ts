// A stable radix sort on typed arrays, for rankings on the serving path (the retrieval sources'
// top n, the ranker's order). Keys are uint32s that sort like the scores (`descendingKey32`), so a
// sort is three counting passes with no comparisons and no boxing. (The fusion's float64 scores
// took as long this way, in two sorts of their two words, as by its quicksort, and kept that.)

const DIGIT_BITS = 11;
const BUCKETS = 1 << DIGIT_BITS;
const DIGIT = BUCKETS - 1;

// Per thread (a worker has its own module), and no sort calls out while it runs: shared scratch.
const counts = new Int32Array(BUCKETS);
let spareKeys = new Uint32Array(0);
let spareValues = new Int32Array(0);

/**
 * Sorts `keys[0..size)` ascending and moves `values[0..size)` with them, stably: values with equal
 * keys keep their order. Three passes of 11 bits; a pass whose digit is the same for every key is
 * skipped.
 */
export function radixSort(keys: Uint32Array, values: Int32Array, size: number): void {
  if (size > keys.length || size > values.length) throw new RangeError(`size ${size} exceeds the arrays (${keys.length} keys, ${values.length} values)`);
  if (size < 2) return;
  if (spareKeys.length < size) {
    spareKeys = new Uint32Array(Math.max(size, 2 * spareKeys.length));
    spareValues = new Int32Array(spareKeys.length);
  }
  let fromKeys: Uint32Array = keys;
  let fromValues: Int32Array = values;
  let toKeys: Uint32Array = spareKeys;
  let toValues: Int32Array = spareValues;
  for (let shift = 0; shift < 32; shift += DIGIT_BITS) {
    counts.fill(0);
    for (let i = 0; i < size; i++) {
      const d = ((fromKeys[i] as number) >>> shift) & DIGIT;
      counts[d] = (counts[d] as number) + 1;
    }
    if (counts[((fromKeys[0] as number) >>> shift) & DIGIT] === size) continue;
    let sum = 0;
    for (let b = 0; b < BUCKETS; b++) {
      const c = counts[b] as number;
      counts[b] = sum;
      sum += c;
    }
    for (let i = 0; i < size; i++) {
      const key = fromKeys[i] as number;
      const d = (key >>> shift) & DIGIT;
      const at = counts[d] as number;
      counts[d] = at + 1;
      toKeys[at] = key;
      toValues[at] = fromValues[i] as number;
    }
    const k = fromKeys;
    fromKeys = toKeys;
    toKeys = k;
    const v = fromValues;
    fromValues = toValues;
    toValues = v;
  }
  if (fromKeys !== keys) {
    keys.set(fromKeys.subarray(0, size));
    values.set(fromValues.subarray(0, size));
  }
}

/**
 * The uint32 that sorts ascending as the float32 whose bits are `bits` sorts descending (−0 as +0);
 * NaN bits sort before +∞ or after −∞ by their sign, so callers keep NaNs out.
 */
export function descendingKey32(bits: number): number {
  const b = bits === 0x80000000 ? 0 : bits;
  // ≥ 0: ascending order is b + 2^31, so descending is 2^31 − 1 − b; < 0: ascending is ~b, descending b.
  return b >= 0x80000000 ? b : 0x7fffffff - b;
}
