// String hashing for deterministic assignment (A/B arms, traffic splits, sharding).
// Runtime-free: no TextEncoder (core/domain compiles without DOM or Node types), so strings are
// encoded to UTF-8 here.

/**
 * UTF-8 bytes of `s`, as the WHATWG encoder writes them: a lone surrogate becomes U+FFFD, so
 * every JS string hashes the same in Node, workerd and the browser.
 */
export function utf8Encode(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 0x3f);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, n);
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** MurmurHash3's 32-bit finalizer: a bijection on u32 with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MurmurHash3 x86_32 (Austin Appleby, SMHasher, public domain) of the first `len` bytes of `bytes`
 * (all of them by default) with `seed`, as an unsigned 32-bit integer. Chosen for assignment
 * because it passes SMHasher's avalanche and distribution tests, is specified byte-for-byte
 * (little-endian blocks), and needs only 32-bit integer ops, which JS does exactly with Math.imul. Not a cryptographic hash.
 */
export function murmur3x86_32(bytes: Uint8Array, seed = 0, len = bytes.length): number {
  const blocks = len & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) {
    let k = (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24);
    k = Math.imul(k, C1);
    k = rotl32(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
    h = rotl32(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = bytes[blocks] as number;
    if (tail > 1) k |= (bytes[blocks + 1] as number) << 8;
    if (tail > 2) k |= (bytes[blocks + 2] as number) << 16;
    k = Math.imul(k, C1);
    k = rotl32(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
  }
  return fmix32(h ^ len);
}

/** Scratch bytes of the ASCII strings hashString hashes (ids, request ids): grown, never shrunk. */
let asciiScratch = new Uint8Array(64);

/** MurmurHash3 x86_32 of the UTF-8 bytes of `s`. */
export function hashString(s: string, seed = 0): number {
  // Ids are ASCII, where UTF-8 is the char codes themselves: copy them without allocating per call.
  const len = s.length;
  if (len > asciiScratch.length) asciiScratch = new Uint8Array(Math.max(len, 2 * asciiScratch.length));
  const bytes = asciiScratch;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return murmur3x86_32(utf8Encode(s), seed);
    bytes[i] = c;
  }
  return murmur3x86_32(bytes, seed, len);
}

/** A hash mapped to a uniform number in [0, 1) (resolution 2^-32). */
export function hashToUnit(s: string, seed = 0): number {
  return hashString(s, seed) / 4294967296;
}
