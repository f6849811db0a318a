// CRC-32 (IEEE 802.3; reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF), the
// checksum zlib, PNG and gzip use. Node's zlib.crc32 (zlib's own, several bytes per step; Node
// 20.15 and later) where the runtime has it: the log checks every byte it writes and reads, and
// the table loop below cost ~1 ms per 1,000 events on the ingest path. The table loop, one byte
// per step, is the fallback: Sarwate, "Computation of cyclic redundancy checks via table
// look-up", CACM 31(8), 1988.
import * as zlib from 'node:zlib';

const POLYNOMIAL = 0xedb88320;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The table-driven CRC-32 of `bytes[start, end)`: the reference, and the fallback. */
export function crc32Table(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// Looked up, not imported by name: Node before 20.15 has no zlib.crc32.
const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `bytes[start, end)`, as an unsigned 32-bit integer. */
export const crc32: (bytes: Uint8Array, start?: number, end?: number) => number = native === undefined
  ? crc32Table
  : (bytes, start = 0, end = bytes.length) => native(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end)) >>> 0;
