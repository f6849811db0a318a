import { describe, expect, it } from 'vitest';
import { normalVariate, Xoshiro128 } from '../../core/domain/random.ts';
import {
  base64Decode,
  base64Encode,
  decodeSlate,
  dequantizeEmbedding,
  encodeSlate,
  quantizeEmbedding,
  SLATE_CONTENT_TYPE,
  slateExpiresAt,
  SlateFormatError,
  slateFromJson,
  slateToJson,
} from '../../core/domain/slate.ts';
import type { Slate } from '../../core/domain/slate.ts';
import { l2Normalize } from '../../core/domain/vectors.ts';

const CATEGORIES = Array.from({ length: 20 }, (_, i) => `genre-${i}`);
const SOURCES = ['ann', 'covis', 'content', 'trending', 'fresh'];

function makeSlate(n: number, dim: number, seed = 1): Slate {
  const rng = new Xoshiro128(seed);
  return {
    version: 1,
    userId: 'user-42',
    modelVersion: '2026-11-26T18:00:00Z-abc123',
    createdAt: 1_795_000_000_123,
    ttlSeconds: 300,
    dim,
    requestId: 'req-0f3a',
    candidates: Array.from({ length: n }, (_, i) => {
      const embedding = new Float32Array(dim);
      for (let d = 0; d < dim; d++) embedding[d] = normalVariate(rng);
      return {
        item: `item-${String(i).padStart(6, '0')}`,
        score: normalVariate(rng) * 3,
        categories: [CATEGORIES[rng.nextInt(20)] as string, CATEGORIES[rng.nextInt(20)] as string],
        sources: [SOURCES[rng.nextInt(5)] as string, SOURCES[rng.nextInt(5)] as string],
        embedding: l2Normalize(embedding),
      };
    }),
  };
}

/** Everything but the embeddings equal; embeddings within the documented int8 bound. */
function expectSameSlate(actual: Slate, expected: Slate): void {
  const strip = (s: Slate): unknown => ({ ...s, candidates: s.candidates.map(({ embedding: _, ...rest }) => rest) });
  expect(strip(actual)).toEqual(strip(expected));
  expected.candidates.forEach((c, i) => {
    const got = actual.candidates[i]?.embedding;
    expect(got).toBeInstanceOf(Float32Array);
    expect(got?.length).toBe(expected.dim);
    let max = 0;
    for (const x of c.embedding) max = Math.max(max, Math.abs(x));
    const bound = (max / 254) * (1 + 1e-6);
    for (let d = 0; d < expected.dim; d++) expect(Math.abs((got?.[d] as number) - (c.embedding[d] as number))).toBeLessThanOrEqual(bound);
  });
}

const viaJson = (s: Slate): Slate => slateFromJson(JSON.parse(JSON.stringify(slateToJson(s))) as unknown);

describe('embedding quantisation', () => {
  it('keeps every component within max|v| / 254 and hits ±127 at the extreme', () => {
    const rng = new Xoshiro128(9);
    for (let t = 0; t < 200; t++) {
      const v = Float32Array.from({ length: 64 }, () => normalVariate(rng) * 10 ** (rng.nextInt(7) - 3));
      const { scale, q } = quantizeEmbedding(v);
      const max = Math.max(...v.map(Math.abs));
      expect(Math.max(...q.map(Math.abs))).toBe(127);
      const back = dequantizeEmbedding(q, scale);
      for (let d = 0; d < 64; d++) expect(Math.abs((back[d] as number) - (v[d] as number))).toBeLessThanOrEqual((max / 254) * (1 + 1e-6));
    }
  });

  it('maps a zero vector to scale 0 and rejects non-finite values', () => {
    const { scale, q } = quantizeEmbedding(new Float32Array(4));
    expect(scale).toBe(0);
    expect([...q]).toEqual([0, 0, 0, 0]);
    expect(() => quantizeEmbedding(Float32Array.from([1, Number.NaN]))).toThrow(/embedding value 1 is NaN/);
  });
});

describe('base64', () => {
  it('matches RFC 4648 test vectors and round-trips', () => {
    const enc = (s: string): string => base64Encode(Uint8Array.from(s, (c) => c.charCodeAt(0)));
    expect(['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar'].map(enc)).toEqual(['', 'Zg==', 'Zm8=', 'Zm9v', 'Zm9vYg==', 'Zm9vYmE=', 'Zm9vYmFy']);
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(base64Encode(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    expect(base64Decode(base64Encode(bytes))).toEqual(bytes);
    expect(base64Decode('Zm9vYg==')).toEqual(Uint8Array.from([0x66, 0x6f, 0x6f, 0x62]));
  });

  it('rejects malformed input', () => {
    for (const bad of ['Zm9', 'Zm9v!A==', 'Z=9v', '====', 'Zm9vYg=a']) expect(() => base64Decode(bad), bad).toThrow(SlateFormatError);
  });
});

describe('slate codecs', () => {
  it('exports its media type', () => {
    expect(SLATE_CONTENT_TYPE).toBe('application/vnd.kestrel.slate');
    expect(slateExpiresAt(makeSlate(0, 4))).toBe(1_795_000_000_123 + 300_000);
  });

  it('round-trips through JSON: everything exact, embeddings within the int8 bound', () => {
    const slate = makeSlate(50, 16);
    expectSameSlate(viaJson(slate), slate);
    // Also from the JSON text directly.
    expectSameSlate(slateFromJson(JSON.stringify(slateToJson(slate))), slate);
  });

  it('round-trips through the binary form: everything exact, embeddings within the int8 bound', () => {
    const slate = makeSlate(50, 16);
    expectSameSlate(decodeSlate(encodeSlate(slate)), slate);
  });

  it('decodes the same embeddings from JSON and binary, and re-encodes a decoded slate to the same bytes', () => {
    const slate = makeSlate(20, 8);
    const bin = decodeSlate(encodeSlate(slate));
    const json = viaJson(slate);
    bin.candidates.forEach((c, i) => expect(c.embedding).toEqual(json.candidates[i]?.embedding));
    expect(encodeSlate(bin)).toEqual(encodeSlate(slate));
  });

  it('keeps unicode ids, categories and sources, and awkward numbers, exactly', () => {
    const slate: Slate = {
      version: 1,
      userId: 'użytkownik-ß-用户-🦅',
      modelVersion: 'v2 ✓',
      createdAt: -1.5,
      ttlSeconds: 0.25,
      dim: 3,
      requestId: '',
      candidates: [
        { item: '商品-1 😀', score: -1e-300, categories: ['Ελληνικά', 'a"b\\c'], sources: ['ann'], embedding: Float32Array.from([0.6, -0.8, 0]) },
        { item: 'x', score: Number.MAX_VALUE, categories: [], sources: [], embedding: new Float32Array(3) },
        { item: 'y', score: 5e-324, categories: ['Ελληνικά'], sources: ['ann', 'fresh'], embedding: Float32Array.from([1e-30, 0, -1e30]) },
      ],
    };
    for (const back of [decodeSlate(encodeSlate(slate)), viaJson(slate)]) expectSameSlate(back, slate);
    // The binary form keeps even a negative zero; JSON has none (JSON.stringify(-0) is "0").
    (slate.candidates[1] as { score: number }).score = -0;
    expect(Object.is(decodeSlate(encodeSlate(slate)).candidates[1]?.score, -0)).toBe(true);
  });

  it('handles an empty slate and dim 0', () => {
    const empty = makeSlate(0, 32);
    expect(decodeSlate(encodeSlate(empty))).toEqual(empty);
    expect(viaJson(empty)).toEqual(empty);
    const noEmbeddings = makeSlate(3, 0);
    expectSameSlate(decodeSlate(encodeSlate(noEmbeddings)), noEmbeddings);
  });

  it('binary size for 500 candidates × 32 dims: 33,808 bytes (JSON: 102,131 bytes of text)', () => {
    const slate = makeSlate(500, 32);
    const bytes = encodeSlate(slate);
    const jsonText = JSON.stringify(slateToJson(slate));
    // 32 header + 48 for the three ids + 228 for the 25 table strings; per candidate 2+11 id,
    // 1+4 categories, 1+4 sources, 8 score, 4 scale, 32 embedding = 67 bytes: 32 + 48 + 228 + 500·67.
    expect(bytes.length).toBe(33_808);
    expect(jsonText.length).toBe(102_131);
    expectSameSlate(decodeSlate(bytes), slate);
  });

  it('rejects a bad magic, every truncation and trailing bytes with SlateFormatError', () => {
    const bytes = encodeSlate(makeSlate(5, 4));
    const garbled = bytes.slice();
    garbled[0] = 0x58;
    expect(() => decodeSlate(garbled)).toThrow(/magic "KSL1"/);
    for (let len = 0; len < bytes.length; len++) {
      expect(() => decodeSlate(bytes.subarray(0, len)), `truncated to ${len}`).toThrow(SlateFormatError);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decodeSlate(longer)).toThrow(/1 trailing bytes/);
  });

  it('rejects garbled bytes: absurd counts, bad table indexes, invalid UTF-8, NaN scores', () => {
    const slate = makeSlate(2, 4);
    const bytes = encodeSlate(slate);
    const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

    const count = bytes.slice();
    view(count).setUint32(24, 0xffffffff, true);
    expect(() => decodeSlate(count)).toThrow(/cannot fit/);

    // userId starts at 32: u16 length 7 ('user-42'); break its first byte into a lone continuation byte.
    const utf8 = bytes.slice();
    utf8[34] = 0x80;
    expect(() => decodeSlate(utf8)).toThrow(/userId is not valid UTF-8/);

    // Last candidate's last source index (just before the scores block) → out of the table.
    const scoresAt = bytes.length - 2 * (8 + 4 + 4);
    const index = bytes.slice();
    view(index).setUint16(scoresAt - 2, 9999, true);
    expect(() => decodeSlate(index)).toThrow(/candidates\[1\]\.sources\[1\] refers to string 9999/);

    const nan = bytes.slice();
    view(nan).setFloat64(scoresAt + 8, Number.NaN, true);
    expect(() => decodeSlate(nan)).toThrow(/candidates\[1\]\.score must be a finite number/);

    const ttl = bytes.slice();
    view(ttl).setFloat64(12, -5, true);
    expect(() => decodeSlate(ttl)).toThrow(/ttlSeconds must be >= 0/);
  });

  it('rejects bad JSON naming the field', () => {
    const good = slateToJson(makeSlate(2, 4));
    const cases: [(j: Record<string, unknown>) => void, RegExp][] = [
      [(j) => (j.version = 2), /slate\.version must be 1/],
      [(j) => delete j.userId, /slate\.userId must be a string/],
      [(j) => (j.ttlSeconds = -1), /slate\.ttlSeconds must be >= 0/],
      [(j) => (j.dim = 2.5), /slate\.dim must be a non-negative integer/],
      [(j) => (j.candidates = {}), /slate\.candidates must be an array/],
      [(j) => ((j.candidates as Record<string, unknown>[])[1] = { ...good.candidates[1], score: 'high' }), /candidates\[1\]\.score must be a finite number/],
      [(j) => ((j.candidates as Record<string, unknown>[])[0] = { ...good.candidates[0], categories: ['a', 3] }), /candidates\[0\]\.categories\[1\] must be a string/],
      [(j) => ((j.candidates as Record<string, unknown>[])[0] = { ...good.candidates[0], embedding: 'AAA=' }), /candidates\[0\]\.embedding holds 2 values, expected slate\.dim = 4/],
      [(j) => ((j.candidates as Record<string, unknown>[])[0] = { ...good.candidates[0], embedding: 'AA$AAA==' }), /candidates\[0\]\.embedding is not base64/],
      [(j) => ((j.candidates as Record<string, unknown>[])[0] = { ...good.candidates[0], scale: -1 }), /candidates\[0\]\.scale must be >= 0/],
    ];
    for (const [mutate, message] of cases) {
      const j = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
      mutate(j);
      expect(() => slateFromJson(j), String(message)).toThrow(message);
      expect(() => slateFromJson(j)).toThrow(SlateFormatError);
    }
    expect(() => slateFromJson('{not json')).toThrow(/slate is not JSON/);
    expect(() => slateFromJson(null)).toThrow(/slate must be a JSON object/);
  });

  it('refuses to encode a slate whose embedding length is not dim, naming the candidate', () => {
    const slate = makeSlate(3, 4);
    (slate.candidates[2] as { embedding: Float32Array }).embedding = new Float32Array(5);
    expect(() => encodeSlate(slate)).toThrow(/slate\.candidates\[2\]\.embedding has 5 values, expected slate\.dim = 4/);
    expect(() => slateToJson(slate)).toThrow(SlateFormatError);
  });
});
