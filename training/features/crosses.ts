// Hashed feature crosses of the wide part (Cheng 2016's cross-product transformations): a pair of
// 32-bit hashes of names (user id, category, user attribute, item id) or a small bucket number,
// hashed again with the cross kind as seed into a fixed number of buckets. Hashing names rather
// than dataset indexes keeps a cross in the same bucket across retrains and at serving time.

import { fmix32 } from '../../core/domain/hash.ts';

/** Seeds of the cross kinds, so the same pair of hashes in two crosses lands in different buckets. */
export const CROSS_USER_CATEGORY = 1;
export const CROSS_ITEM_POSITION = 2;
export const CROSS_USER_FEATURE_CATEGORY = 3;

/** Slot → bucket for the item × position cross: unknown, 0, 1, 2, 3–4, 5–9, 10+. */
export function positionBucket(position: number): number {
  if (position < 0) return 0;
  if (position < 3) return position + 1;
  if (position < 5) return 4;
  if (position < 10) return 5;
  return 6;
}

/**
 * MurmurHash3 x86_32 (core/domain/hash.ts) of the 8 bytes of two u32 words, little-endian, with
 * the cross kind as seed: equal to `murmur3x86_32` of those bytes (a test checks), unrolled for the
 * two blocks so a cross costs no byte array.
 */
export function crossHash(kind: number, a: number, b: number): number {
  let h = kind >>> 0;
  h = murmurBlock(h, a);
  h = murmurBlock(h, b);
  return fmix32(h ^ 8);
}

function murmurBlock(h: number, word: number): number {
  let k = Math.imul(word | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
