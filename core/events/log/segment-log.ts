// A durable append-only log on disk: the embedded event bus and the Kafka adapter's spool.
//
// Layout of `dir`:
//   <base>.log        segments; <base> is the log position (byte) of the segment's first record,
//                     20 digits, so the positions of all segments are one contiguous byte range
//   LOCK              the pid of the process that has the log open (./lock.ts)
//   offsets/<g>.json  the committed position of consumer group g (hex of its name), replaced
//                     atomically (write, fsync, rename, fsync the folder)
// A record is framed as [u32 LE payload length][u32 LE CRC-32 of the payload][payload].
//
// One writer per folder (one process), enforced by a LOCK file (./lock.ts). Appends are
// group-committed: every append that arrives while an fdatasync is in flight joins the next
// write + fdatasync, so many publishes share one flush. Readers only ever see records below
// `end`, the durable end, so nothing that a crash could still take away is handed out. On open,
// the last segment is scanned and cut at the first record whose length or CRC does not check out
// (a torn write); earlier segments were flushed before the next one was created.
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from './crc32.ts';
import { acquireLogLock } from './lock.ts';
import type { LogLock } from './lock.ts';

export const HEADER_BYTES = 8;
/** A payload over this is refused on append and read as corruption on recovery. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const SEGMENT_NAME = /^(\d{20})\.log$/;
const RECOVERY_CHUNK_BYTES = 4 * 1024 * 1024;

export interface SegmentLogOptions {
  /** A segment rolls over once the next record would take it past this size. */
  segmentBytes?: number;
  /** Where the note about taking over a dead process's lock goes; defaults to console.warn. */
  onNote?: (note: string) => void;
}

export interface LogRecord {
  offset: number;
  next: number;
  payload: Buffer;
}

export interface RecoveryReport {
  /** The file whose tail was cut, and how many bytes were cut; 0 when the tail was clean. */
  segment: string;
  truncatedBytes: number;
}

interface Segment {
  base: number;
  /** Bytes flushed to disk. */
  size: number;
  path: string;
}

interface PendingAppend {
  frames: readonly Buffer[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

const segmentName = (base: number): string => `${String(base).padStart(20, '0')}.log`;

export function frame(payload: Buffer): Buffer {
  if (payload.length === 0 || payload.length > MAX_RECORD_BYTES) {
    throw new Error(`a log record holds 1 to ${MAX_RECORD_BYTES} bytes; this one has ${payload.length}`);
  }
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  payload.copy(out, HEADER_BYTES);
  return out;
}

/**
 * Frames UTF-8 JSON texts (or any strings) into one block, in order, and returns the frames as
 * views into it: one allocation and no copies per record, where `frame` per payload costs two
 * (the ingest path's events, 1,000 a request).
 */
export function frameTexts(texts: readonly string[]): Buffer[] {
  let total = 0;
  const lengths = texts.map((t) => {
    const n = Buffer.byteLength(t, 'utf8');
    if (n === 0 || n > MAX_RECORD_BYTES) throw new Error(`a log record holds 1 to ${MAX_RECORD_BYTES} bytes; this one has ${n}`);
    total += HEADER_BYTES + n;
    return n;
  });
  const block = Buffer.allocUnsafe(total);
  const frames: Buffer[] = [];
  let p = 0;
  texts.forEach((t, i) => {
    const n = lengths[i] as number;
    const start = p + HEADER_BYTES;
    block.write(t, start, n, 'utf8');
    block.writeUInt32LE(n, p);
    block.writeUInt32LE(crc32(block, start, start + n), p + 4);
    frames.push(block.subarray(p, start + n));
    p = start + n;
  });
  return frames;
}

/**
 * The records of a block `frameTexts` made (or one like it, from another thread), record i ending
 * at `ends[i]`, as views into it. Throws when a record does not hold what its header says: appended
 * as it is, it would read back as a torn tail.
 */
export function framedRecords(records: Uint8Array, ends: ArrayLike<number>): Buffer[] {
  const block = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
  const frames: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i] as number;
    if (end > block.length || end - start <= HEADER_BYTES || block.readUInt32LE(start) !== end - start - HEADER_BYTES) {
      throw new Error(`record ${i} (bytes ${start} to ${end}) is not one framed record`);
    }
    frames.push(block.subarray(start, end));
    start = end;
  }
  return frames;
}

/**
 * How many bytes of `buf` (which starts at a record boundary) hold whole, valid records, with
 * the records themselves. Stops at the first record that is incomplete or fails its checks.
 */
function parseFrames(buf: Buffer, at: number): { records: LogRecord[]; validBytes: number; bad: boolean } {
  const records: LogRecord[] = [];
  let p = 0;
  while (buf.length - p >= HEADER_BYTES) {
    const length = buf.readUInt32LE(p);
    if (length === 0 || length > MAX_RECORD_BYTES) return { records, validBytes: p, bad: true };
    if (buf.length - p - HEADER_BYTES < length) break;
    const start = p + HEADER_BYTES;
    if (crc32(buf, start, start + length) !== buf.readUInt32LE(p + 4)) return { records, validBytes: p, bad: true };
    records.push({ offset: at + p, next: at + start + length, payload: buf.subarray(start, start + length) });
    p = start + length;
  }
  return { records, validBytes: p, bad: false };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class SegmentLog {
  readonly recovery: RecoveryReport;
  #segments: Segment[];
  #active: FileHandle;
  #readers = new Map<number, FileHandle>();
  #pending: PendingAppend[] = [];
  #flushing: Promise<void> | undefined;
  #waiters = new Set<() => void>();
  #failed: unknown;
  #closed = false;
  #offsetWrites = new Map<string, Promise<void>>();
  #lock: LogLock;

  private constructor(
    readonly dir: string,
    readonly segmentBytes: number,
    segments: Segment[],
    active: FileHandle,
    recovery: RecoveryReport,
    lock: LogLock,
  ) {
    this.#segments = segments;
    this.#active = active;
    this.recovery = recovery;
    this.#lock = lock;
  }

  /** The pid of a dead process whose lock this open took over (see ./lock.ts), if any. */
  get lockTakenOverFrom(): number | undefined {
    return this.#lock.takenOverFrom;
  }

  /** Opens the log for writing; throws LogLockedError while another live process has it open. */
  static async open(dir: string, options: SegmentLogOptions = {}): Promise<SegmentLog> {
    await mkdir(join(dir, 'offsets'), { recursive: true });
    const lock = await acquireLogLock(dir, options.onNote);
    try {
      return await SegmentLog.#open(dir, options, lock);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  static async #open(dir: string, options: SegmentLogOptions, lock: LogLock): Promise<SegmentLog> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const bases = (await readdir(dir))
      .map((f) => SEGMENT_NAME.exec(f)?.[1])
      .filter((b): b is string => b !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    if (bases.length === 0) {
      const fh = await open(join(dir, segmentName(0)), 'w');
      await fh.close();
      await fsyncDir(dir);
      bases.push(0);
    }
    const segments: Segment[] = [];
    for (const base of bases) {
      const path = join(dir, segmentName(base));
      const fh = await open(path, 'r');
      const { size } = await fh.stat();
      await fh.close();
      const prev = segments.at(-1);
      if (prev !== undefined && prev.base + prev.size !== base) {
        throw new Error(`event log ${dir}: segment ${segmentName(base)} should start at byte ${prev.base + prev.size} (the end of ${segmentName(prev.base)}); the log is damaged, restore it from a backup`);
      }
      segments.push({ base, size, path });
    }
    const last = segments.at(-1) as Segment;
    const active = await open(last.path, 'r+');
    const valid = await SegmentLog.#scan(active, last.size);
    const recovery = { segment: last.path, truncatedBytes: last.size - valid };
    if (valid < last.size) {
      await active.truncate(valid);
      await active.datasync();
      last.size = valid;
    }
    return new SegmentLog(dir, segmentBytes, segments, active, recovery, lock);
  }

  /** The length of the prefix of the segment that holds whole, valid records. */
  static async #scan(fh: FileHandle, size: number): Promise<number> {
    let pos = 0;
    let chunk = Buffer.allocUnsafe(RECOVERY_CHUNK_BYTES);
    while (pos < size) {
      const want = Math.min(chunk.length, size - pos);
      const { bytesRead } = await fh.read(chunk, 0, want, pos);
      const { validBytes, bad } = parseFrames(chunk.subarray(0, bytesRead), pos);
      if (bad) return pos + validBytes;
      if (validBytes === 0) {
        // An incomplete record at the chunk's end: a longer read, unless the file ends first.
        if (bytesRead >= HEADER_BYTES) {
          const need = HEADER_BYTES + chunk.readUInt32LE(0);
          if (pos + need <= size && need > chunk.length) {
            chunk = Buffer.allocUnsafe(need);
            continue;
          }
        }
        return pos;
      }
      pos += validBytes;
    }
    return pos;
  }

  /** The first position still held (older segments may have been deleted). */
  get start(): number {
    return (this.#segments[0] as Segment).base;
  }

  /** The durable end: one past the last flushed record. */
  get end(): number {
    const last = this.#segments.at(-1) as Segment;
    return last.base + last.size;
  }

  /** Appends the payloads in order; resolves once they are on disk (fdatasync). */
  append(payloads: readonly Buffer[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`event log ${this.dir} is closed`));
    if (this.#failed !== undefined) return Promise.reject(this.#failedError());
    let frames: Buffer[];
    try {
      frames = payloads.map(frame);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.appendFramed(frames);
  }

  /** Appends records already framed (`frame`, `frameTexts`) in order; resolves once they are on disk. */
  appendFramed(frames: readonly Buffer[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`event log ${this.dir} is closed`));
    if (this.#failed !== undefined) return Promise.reject(this.#failedError());
    if (frames.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#pending.push({ frames, resolve, reject });
      this.#flushing ??= this.#flushLoop();
    });
  }

  #failedError(): Error {
    return new Error(`event log ${this.dir} stopped accepting appends after a write failed (${String(this.#failed)}); reopen it to recover`);
  }

  async #flushLoop(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0);
      try {
        await this.#write(batch.flatMap((p) => p.frames));
        for (const p of batch) p.resolve();
      } catch (error) {
        // After a failed write or fsync the file's state is unknown: refuse further appends;
        // reopening runs recovery.
        this.#failed = error;
        for (const p of [...batch, ...this.#pending.splice(0)]) p.reject(error);
      }
      this.#notify();
    }
    this.#flushing = undefined;
  }

  async #write(frames: Buffer[]): Promise<void> {
    let chunk: Buffer[] = [];
    let chunkBytes = 0;
    for (const f of frames) {
      const active = this.#segments.at(-1) as Segment;
      if (active.size + chunkBytes > 0 && active.size + chunkBytes + f.length > this.segmentBytes) {
        await this.#flushChunk(chunk, chunkBytes);
        chunk = [];
        chunkBytes = 0;
        await this.#roll();
      }
      chunk.push(f);
      chunkBytes += f.length;
    }
    await this.#flushChunk(chunk, chunkBytes);
  }

  async #flushChunk(chunk: Buffer[], bytes: number): Promise<void> {
    if (bytes === 0) return;
    const active = this.#segments.at(-1) as Segment;
    const buf = chunk.length === 1 ? (chunk[0] as Buffer) : Buffer.concat(chunk, bytes);
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await this.#active.write(buf, written, buf.length - written, active.size + written);
      written += bytesWritten;
    }
    await this.#active.datasync();
    active.size += bytes;
    this.#notify();
  }

  async #roll(): Promise<void> {
    const base = this.end;
    const path = join(this.dir, segmentName(base));
    const fh = await open(path, 'w+');
    await fsyncDir(this.dir);
    await this.#active.close();
    this.#active = fh;
    this.#segments.push({ base, size: 0, path });
  }

  #notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** Resolves once the durable end passes `position`, or the log closes. */
  waitForAppend(position: number): Promise<void> {
    if (this.end > position || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.add(resolve));
  }

  /** Whole records from `position` (a record boundary) on, about `maxBytes` of them, all durable. */
  async read(position: number, maxBytes = 1024 * 1024): Promise<LogRecord[]> {
    if (position >= this.end) return [];
    const segment = this.#segments.find((s) => s.base <= position && position < s.base + s.size);
    if (segment === undefined) {
      throw new Error(`event log ${this.dir}: position ${position} is before the oldest record still held (${this.start})`);
    }
    const fh = await this.#reader(segment);
    const segEnd = segment.base + segment.size;
    let want = Math.min(maxBytes, segEnd - position);
    for (;;) {
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, position - segment.base);
      const { records, bad } = parseFrames(buf.subarray(0, bytesRead), position);
      if (bad && records.length === 0) {
        throw new Error(`event log ${segment.path}: the record at byte ${position - segment.base} fails its length or CRC check; the segment is corrupt`);
      }
      if (records.length > 0) return records;
      // The first record is larger than `want`: read exactly it.
      const need = HEADER_BYTES + buf.readUInt32LE(0);
      if (bytesRead < HEADER_BYTES || need <= want || position + need > segEnd) {
        throw new Error(`event log ${segment.path}: cannot read a whole record at byte ${position - segment.base}`);
      }
      want = need;
    }
  }

  async #reader(segment: Segment): Promise<FileHandle> {
    let fh = this.#readers.get(segment.base);
    if (fh === undefined) {
      fh = await open(segment.path, 'r');
      this.#readers.set(segment.base, fh);
    }
    return fh;
  }

  /** The committed position of a consumer group, or undefined for a group never committed. */
  async committed(group: string): Promise<number | undefined> {
    let text: string;
    try {
      const fh = await open(this.#offsetPath(group), 'r');
      try {
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const { position } = JSON.parse(text) as { position: number };
    if (position > this.end) {
      throw new Error(`event log ${this.dir}: group '${group}' committed position ${position}, past the end of the log (${this.end}); the log lost data it had acknowledged`);
    }
    return position;
  }

  /** Durably records `position` as the group's committed position. Commits of one group apply in call order. */
  commit(group: string, position: number): Promise<void> {
    const previous = this.#offsetWrites.get(group) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(async () => {
      const path = this.#offsetPath(group);
      const tmp = `${path}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify({ group, position }));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      await fsyncDir(join(this.dir, 'offsets'));
    });
    this.#offsetWrites.set(group, next);
    return next;
  }

  #offsetPath(group: string): string {
    return join(this.dir, 'offsets', `${Buffer.from(group, 'utf8').toString('hex')}.json`);
  }

  /** Deletes whole segments that end at or before `position` (never the active one). */
  async deleteBefore(position: number): Promise<void> {
    while (this.#segments.length > 1) {
      const first = this.#segments[0] as Segment;
      if (first.base + first.size > position) break;
      this.#segments.shift();
      await this.#readers.get(first.base)?.close();
      this.#readers.delete(first.base);
      await rm(first.path, { force: true });
    }
    await fsyncDir(this.dir);
  }

  /** Waits for pending appends and commits, then releases the files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#flushing;
    await Promise.allSettled(this.#offsetWrites.values());
    this.#notify();
    for (const fh of this.#readers.values()) await fh.close();
    this.#readers.clear();
    await this.#active.close();
    await this.#lock.release();
  }
}
