// The slate: the candidate list the core computes for a user and the edge caches and re-ranks
// (ARCHITECTURE.md, "Contracts that must not drift"). One type, a JSON codec and a binary codec,
// used on both sides.
//
// Embeddings travel int8-quantised with one float32 scale per candidate (symmetric, absmax):
//   scale = fround(max_i |v_i| / 127), q_i = round(v_i / scale) ∈ [−127, 127], v̂_i = q_i · scale,
// so |v_i − v̂_i| ≤ scale / 2 = max|v| / 254 per component (plus float32 rounding of the product,
// < 2⁻²⁴ relative): ≤ 0.0040 for the L2-normalised vectors the core sends. Everything else
// (ids, scores, times, categories, sources) round-trips exactly through both codecs.
//
// Binary layout (SLATE_CONTENT_TYPE), all numbers little-endian, no padding:
//   offset  size        field
//   0       4           magic "KSL1" (format version 1)
//   4       8           f64 createdAt (epoch ms)
//   12      8           f64 ttlSeconds
//   20      4           u32 dim
//   24      4           u32 N, candidates
//   28      4           u32 S, entries of the string table
//   32      …           str userId, str modelVersion, str requestId
//           …           S × str: the string table (distinct categories and sources)
//           …           N × candidate: str item,
//                                      u8 categories, u16 table index each,
//                                      u8 sources, u16 table index each
//           8·N         f64 score per candidate
//           4·N         f32 embedding scale per candidate
//           N·dim       i8 embeddings, row-major
// where str = u16 UTF-8 byte length + the bytes. The fixed-width columns come last so a reader
// can hand the score and embedding blocks to a kernel without walking them. Trailing bytes are an
// error. 500 candidates × 32 dims with 11-character ids and two categories and two sources each
// take 33,808 bytes, 67 per candidate (test/domain/slate.test.ts measures it); the JSON form
// takes 102,131 and float32 embeddings alone would take 64,000.
// Pure: no runtime imports (base64 and UTF-8 decoding are written out: core/domain has neither
// Buffer, atob nor TextDecoder in its types).
import { utf8Encode } from './hash.ts';

export const SLATE_CONTENT_TYPE = 'application/vnd.kestrel.slate';

export interface SlateCandidate {
  item: string;
  score: number;
  categories: string[];
  sources: string[];
  /** Compact item embedding, length = slate.dim; decoded slates carry the dequantised values. */
  embedding: Float32Array;
}

export interface Slate {
  version: 1;
  userId: string;
  modelVersion: string;
  /** Epoch milliseconds. */
  createdAt: number;
  ttlSeconds: number;
  dim: number;
  requestId: string;
  candidates: SlateCandidate[];
}

export interface SlateCandidateJson {
  item: string;
  score: number;
  categories: string[];
  sources: string[];
  /** Dequantise with v̂_i = q_i · scale. */
  scale: number;
  /** Base64 (standard alphabet, padded) of the dim int8 values q_i. */
  embedding: string;
}

export interface SlateJson {
  version: 1;
  userId: string;
  modelVersion: string;
  createdAt: number;
  ttlSeconds: number;
  dim: number;
  requestId: string;
  candidates: SlateCandidateJson[];
}

/** A slate that cannot be encoded or decoded; the message names the bad field. */
export class SlateFormatError extends Error {
  override readonly name = 'SlateFormatError';
}

const MAGIC = [0x4b, 0x53, 0x4c, 0x31]; // "KSL1"
const HEADER_BYTES = 32;
const MAX_STR_BYTES = 0xffff;
const MAX_LABELS = 0xff;
const MAX_TABLE = 0xffff;
const Q_MAX = 127;

/** When the slate stops being fresh, epoch ms. */
export function slateExpiresAt(slate: Slate): number {
  return slate.createdAt + slate.ttlSeconds * 1000;
}

// ---- quantisation ---------------------------------------------------------------------------

/** Symmetric absmax int8 quantisation; see the file header for the error bound. */
export function quantizeEmbedding(v: Float32Array): { scale: number; q: Int8Array } {
  const q = new Int8Array(v.length);
  let max = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    if (!Number.isFinite(x)) throw new RangeError(`embedding value ${i} is ${x}; embeddings must be finite`);
    const a = Math.abs(x);
    if (a > max) max = a;
  }
  // fround: the binary form stores the scale as f32, so JSON and binary dequantise identically.
  const scale = Math.fround(max / Q_MAX);
  if (scale === 0) return { scale: 0, q };
  const inv = 1 / scale;
  for (let i = 0; i < v.length; i++) {
    const r = Math.round((v[i] as number) * inv);
    q[i] = r > Q_MAX ? Q_MAX : r < -Q_MAX ? -Q_MAX : r;
  }
  return { scale, q };
}

/** v̂_i = q_i · scale, written into `out` when given. */
export function dequantizeEmbedding(q: Int8Array, scale: number, out = new Float32Array(q.length)): Float32Array {
  for (let i = 0; i < q.length; i++) out[i] = (q[i] as number) * scale;
  return out;
}

// ---- validation -----------------------------------------------------------------------------

function fail(message: string): never {
  throw new SlateFormatError(message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, path: string): string {
  return typeof v === 'string' ? v : fail(`${path} must be a string, got ${typeof v}`);
}

function finite(v: unknown, path: string): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fail(`${path} must be a finite number, got ${String(v)}`);
}

function nonNegative(v: unknown, path: string): number {
  const x = finite(v, path);
  return x >= 0 ? x : fail(`${path} must be >= 0, got ${x}`);
}

function strings(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) fail(`${path} must be an array of strings`);
  return v.map((s, i) => str(s, `${path}[${i}]`));
}

function dimension(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff
    ? v
    : fail(`slate.dim must be a non-negative integer, got ${String(v)}`);
}

/** Checks a slate about to be encoded (or just decoded); throws SlateFormatError naming the field. */
function checkSlate(slate: Slate): void {
  if (slate.version !== 1) fail(`slate.version must be 1, got ${String(slate.version)}`);
  str(slate.userId, 'slate.userId');
  str(slate.modelVersion, 'slate.modelVersion');
  str(slate.requestId, 'slate.requestId');
  finite(slate.createdAt, 'slate.createdAt');
  nonNegative(slate.ttlSeconds, 'slate.ttlSeconds');
  const dim = dimension(slate.dim);
  if (!Array.isArray(slate.candidates)) fail('slate.candidates must be an array');
  slate.candidates.forEach((c, i) => {
    const path = `slate.candidates[${i}]`;
    if (!isRecord(c)) fail(`${path} must be an object`);
    str(c.item, `${path}.item`);
    finite(c.score, `${path}.score`);
    strings(c.categories, `${path}.categories`);
    strings(c.sources, `${path}.sources`);
    if (!(c.embedding instanceof Float32Array)) fail(`${path}.embedding must be a Float32Array`);
    if (c.embedding.length !== dim) fail(`${path}.embedding has ${c.embedding.length} values, expected slate.dim = ${dim}`);
  });
}

// ---- base64 and UTF-8 -----------------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** RFC 4648 base64, standard alphabet, padded. */
export function base64Encode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + B64.charAt((n >> 6) & 63) + B64.charAt(n & 63);
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += `${B64.charAt(n >> 18)}${B64.charAt((n >> 12) & 63)}==`;
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += `${B64.charAt(n >> 18)}${B64.charAt((n >> 12) & 63)}${B64.charAt((n >> 6) & 63)}=`;
  }
  return out;
}

/** Strict inverse of base64Encode; SlateFormatError (naming `path`) on anything else. */
export function base64Decode(s: string, path = 'base64'): Uint8Array {
  if (s.length % 4 !== 0) fail(`${path} is not base64: length ${s.length} is not a multiple of 4`);
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      const isPad = i + 4 === s.length && j >= 4 - pad;
      const v = isPad ? 0 : c < 128 ? (B64_INDEX[c] as number) : -1;
      if (v < 0) fail(`${path} is not base64: bad character at ${i + j}`);
      n = (n << 6) | v;
    }
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 0xff;
    if (o < out.length) out[o++] = n & 0xff;
  }
  return out;
}

/** Strict UTF-8 decoding (no overlongs, surrogates or code points past U+10FFFF). */
function utf8Decode(b: Uint8Array, path: string): string {
  const units: number[] = [];
  for (let i = 0; i < b.length;) {
    const b0 = b[i] as number;
    let cp: number;
    let len: number;
    let min: number;
    if (b0 < 0x80) [cp, len, min] = [b0, 1, 0];
    else if (b0 >= 0xc2 && b0 < 0xe0) [cp, len, min] = [b0 & 0x1f, 2, 0x80];
    else if (b0 >= 0xe0 && b0 < 0xf0) [cp, len, min] = [b0 & 0x0f, 3, 0x800];
    else if (b0 >= 0xf0 && b0 < 0xf5) [cp, len, min] = [b0 & 0x07, 4, 0x10000];
    else return fail(`${path} is not valid UTF-8 (byte ${i})`);
    if (i + len > b.length) fail(`${path} is not valid UTF-8 (truncated sequence at byte ${i})`);
    for (let j = 1; j < len; j++) {
      const bj = b[i + j] as number;
      if ((bj & 0xc0) !== 0x80) fail(`${path} is not valid UTF-8 (byte ${i + j})`);
      cp = (cp << 6) | (bj & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(`${path} is not valid UTF-8 (code point at byte ${i})`);
    if (cp >= 0x10000) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    else units.push(cp);
    i += len;
  }
  let s = '';
  for (let i = 0; i < units.length; i += 8192) s += String.fromCharCode(...units.slice(i, i + 8192));
  return s;
}

// ---- JSON -----------------------------------------------------------------------------------

/** The JSON form: embeddings as base64 int8 with a per-candidate scale. */
export function slateToJson(slate: Slate): SlateJson {
  checkSlate(slate);
  return {
    version: 1,
    userId: slate.userId,
    modelVersion: slate.modelVersion,
    createdAt: slate.createdAt,
    ttlSeconds: slate.ttlSeconds,
    dim: slate.dim,
    requestId: slate.requestId,
    candidates: slate.candidates.map((c) => {
      const { scale, q } = quantizeEmbedding(c.embedding);
      return {
        item: c.item,
        score: c.score,
        categories: [...c.categories],
        sources: [...c.sources],
        scale,
        embedding: base64Encode(new Uint8Array(q.buffer, q.byteOffset, q.length)),
      };
    }),
  };
}

/** Reads the JSON form (parsed, or its text); throws SlateFormatError naming the bad field. */
export function slateFromJson(json: unknown): Slate {
  let v = json;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch (e) {
      fail(`slate is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (!isRecord(v)) fail('slate must be a JSON object');
  if (v.version !== 1) fail(`slate.version must be 1, got ${JSON.stringify(v.version) ?? 'nothing'}`);
  const dim = dimension(v.dim);
  if (!Array.isArray(v.candidates)) fail('slate.candidates must be an array');
  const slate: Slate = {
    version: 1,
    userId: str(v.userId, 'slate.userId'),
    modelVersion: str(v.modelVersion, 'slate.modelVersion'),
    createdAt: finite(v.createdAt, 'slate.createdAt'),
    ttlSeconds: nonNegative(v.ttlSeconds, 'slate.ttlSeconds'),
    dim,
    requestId: str(v.requestId, 'slate.requestId'),
    candidates: (v.candidates as unknown[]).map((c, i) => {
      const path = `slate.candidates[${i}]`;
      if (!isRecord(c)) fail(`${path} must be an object`);
      const scale = nonNegative(c.scale, `${path}.scale`);
      const q = base64Decode(str(c.embedding, `${path}.embedding`), `${path}.embedding`);
      if (q.length !== dim) fail(`${path}.embedding holds ${q.length} values, expected slate.dim = ${dim}`);
      return {
        item: str(c.item, `${path}.item`),
        score: finite(c.score, `${path}.score`),
        categories: strings(c.categories, `${path}.categories`),
        sources: strings(c.sources, `${path}.sources`),
        embedding: dequantizeEmbedding(new Int8Array(q.buffer, q.byteOffset, q.length), scale),
      };
    }),
  };
  return slate;
}

// ---- binary ---------------------------------------------------------------------------------

function strBytes(s: string, path: string): Uint8Array {
  const b = utf8Encode(s);
  if (b.length > MAX_STR_BYTES) fail(`${path} is ${b.length} UTF-8 bytes, over the binary slate's limit of ${MAX_STR_BYTES}`);
  return b;
}

/** The binary form; the layout is in the file header. */
export function encodeSlate(slate: Slate): Uint8Array {
  checkSlate(slate);
  const { candidates, dim } = slate;
  const n = candidates.length;
  const table = new Map<string, number>();
  const tableBytes: Uint8Array[] = [];
  const labelIndexes = (labels: string[], path: string): number[] => {
    if (labels.length > MAX_LABELS) fail(`${path} has ${labels.length} entries, over the binary slate's limit of ${MAX_LABELS}`);
    return labels.map((s, i) => {
      let idx = table.get(s);
      if (idx === undefined) {
        idx = table.size;
        if (idx >= MAX_TABLE) fail(`the slate has over ${MAX_TABLE} distinct categories and sources`);
        table.set(s, idx);
        tableBytes.push(strBytes(s, `${path}[${i}]`));
      }
      return idx;
    });
  };
  const head = [strBytes(slate.userId, 'slate.userId'), strBytes(slate.modelVersion, 'slate.modelVersion'), strBytes(slate.requestId, 'slate.requestId')];
  const items: Uint8Array[] = [];
  const cats: number[][] = [];
  const srcs: number[][] = [];
  let size = HEADER_BYTES;
  for (const b of head) size += 2 + b.length;
  candidates.forEach((c, i) => {
    const path = `slate.candidates[${i}]`;
    const item = strBytes(c.item, `${path}.item`);
    items.push(item);
    cats.push(labelIndexes(c.categories, `${path}.categories`));
    srcs.push(labelIndexes(c.sources, `${path}.sources`));
    size += 2 + item.length + 2 + 2 * (c.categories.length + c.sources.length);
  });
  for (const b of tableBytes) size += 2 + b.length;
  size += n * (8 + 4 + dim);

  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setFloat64(4, slate.createdAt, true);
  view.setFloat64(12, slate.ttlSeconds, true);
  view.setUint32(20, dim, true);
  view.setUint32(24, n, true);
  view.setUint32(28, tableBytes.length, true);
  let o = HEADER_BYTES;
  const putStr = (b: Uint8Array): void => {
    view.setUint16(o, b.length, true);
    out.set(b, o + 2);
    o += 2 + b.length;
  };
  const putIndexes = (idx: number[]): void => {
    out[o++] = idx.length;
    for (const x of idx) {
      view.setUint16(o, x, true);
      o += 2;
    }
  };
  for (const b of head) putStr(b);
  for (const b of tableBytes) putStr(b);
  for (let i = 0; i < n; i++) {
    putStr(items[i] as Uint8Array);
    putIndexes(cats[i] as number[]);
    putIndexes(srcs[i] as number[]);
  }
  const scaleAt = o + 8 * n;
  const embAt = scaleAt + 4 * n;
  candidates.forEach((c, i) => {
    view.setFloat64(o + 8 * i, c.score, true);
    const { scale, q } = quantizeEmbedding(c.embedding);
    view.setFloat32(scaleAt + 4 * i, scale, true);
    out.set(new Uint8Array(q.buffer, q.byteOffset, q.length), embAt + i * dim);
  });
  return out;
}

/** Bounds-checked little-endian reader over a binary slate. */
class SlateReader {
  private readonly view: DataView;
  offset = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(n: number, what: string): number {
    const at = this.offset;
    if (n > this.bytes.length - at) fail(`binary slate truncated: ${what} needs ${n} bytes at offset ${at}, ${this.bytes.length - at} left`);
    this.offset += n;
    return at;
  }

  u8(what: string): number {
    return this.bytes[this.need(1, what)] as number;
  }

  u16(what: string): number {
    return this.view.getUint16(this.need(2, what), true);
  }

  u32(what: string): number {
    return this.view.getUint32(this.need(4, what), true);
  }

  f64(what: string): number {
    return this.view.getFloat64(this.need(8, what), true);
  }

  str(what: string): string {
    const len = this.u16(`${what} length`);
    const at = this.need(len, what);
    return utf8Decode(this.bytes.subarray(at, at + len), what);
  }
}

/** Reads the binary form; SlateFormatError on a bad magic, truncation, garbage or trailing bytes. */
export function decodeSlate(bytes: Uint8Array): Slate {
  if (!(bytes instanceof Uint8Array)) fail('binary slate must be a Uint8Array');
  const r = new SlateReader(bytes);
  const magicAt = r.need(4, 'magic');
  for (let i = 0; i < 4; i++) {
    if (bytes[magicAt + i] !== MAGIC[i]) fail('binary slate does not start with the magic "KSL1" (wrong content or a newer format)');
  }
  const createdAt = r.f64('createdAt');
  const ttlSeconds = r.f64('ttlSeconds');
  const dim = r.u32('dim');
  const n = r.u32('candidate count');
  const tableSize = r.u32('string table size');
  // Each candidate takes at least 2 + 2 + 8 + 4 + dim bytes: reject absurd counts before allocating.
  if (n * (16 + dim) > bytes.length - r.offset) fail(`binary slate truncated: ${n} candidates × ${dim} dims cannot fit in ${bytes.length} bytes`);
  if (tableSize * 2 > bytes.length - r.offset) fail(`binary slate truncated: a string table of ${tableSize} entries cannot fit in ${bytes.length} bytes`);
  const userId = r.str('userId');
  const modelVersion = r.str('modelVersion');
  const requestId = r.str('requestId');
  const table: string[] = [];
  for (let i = 0; i < tableSize; i++) table.push(r.str(`string table entry ${i}`));
  const labels = (path: string): string[] => {
    const count = r.u8(`${path} count`);
    const out: string[] = [];
    for (let j = 0; j < count; j++) {
      const idx = r.u16(path);
      const s = table[idx];
      if (s === undefined) fail(`${path}[${j}] refers to string ${idx} of a table of ${tableSize}`);
      out.push(s);
    }
    return out;
  };
  const meta: { item: string; categories: string[]; sources: string[] }[] = [];
  for (let i = 0; i < n; i++) {
    const path = `slate.candidates[${i}]`;
    const item = r.str(`${path}.item`);
    const categories = labels(`${path}.categories`);
    const sources = labels(`${path}.sources`);
    meta.push({ item, categories, sources });
  }
  const scoreAt = r.need(8 * n, 'scores');
  const scaleAt = r.need(4 * n, 'embedding scales');
  const embAt = r.need(n * dim, 'embeddings');
  if (r.offset !== bytes.length) fail(`binary slate has ${bytes.length - r.offset} trailing bytes after its ${n} candidates`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + embAt, n * dim);
  const values = new Float32Array(n * dim);
  const candidates = meta.map((m, i): SlateCandidate => {
    const path = `slate.candidates[${i}]`;
    const score = finite(view.getFloat64(scoreAt + 8 * i, true), `${path}.score`);
    const scale = nonNegative(view.getFloat32(scaleAt + 4 * i, true), `${path}.scale`);
    const embedding = values.subarray(i * dim, (i + 1) * dim);
    dequantizeEmbedding(q.subarray(i * dim, (i + 1) * dim), scale, embedding);
    return { ...m, score, embedding };
  });
  const slate: Slate = { version: 1, userId, modelVersion, createdAt, ttlSeconds, dim, requestId, candidates };
  checkSlate(slate);
  return slate;
}
