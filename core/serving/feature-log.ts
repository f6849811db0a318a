// The served-features log: for every recommendation request, the dense features each returned
// item was ranked with, keyed by the request id. A click that comes back with that requestId and
// its position joins to the features as they were served (Cheng 2016 trains on such logs), not
// as a later recomputation would see them.
//
// One JSON line per request in <dir>/served-YYYY-MM-DD.jsonl (UTC day). Writes are buffered and
// appended in the background (every second, or at 1,000 records), so a request never waits on
// the disk; `close()` flushes what is left.
//
// Retention. A day's file goes once its last record would be `retentionDays` old (a week by
// default from `kestrel serve` and `kestrel start`; without the option, never): checked when the
// log opens and at the first append of each UTC day, in the write chain, so it never races an
// append or an erasure. At ~4 KB a request the log otherwise grows without bound
// (~35 GB a day at 100 requests/s), and so does what each GDPR erasure has to read.
//
// Torn lines. A process that dies mid-append leaves the file ending in half a line. The first
// append of this process to a file (and the first after a failed one) starts on a new line when
// the file does not end with one, so the next record is never glued onto the torn half. Readers
// (`eraseUser` here, training/data/served-join.ts) skip a line that is not a JSON record and
// count it.

import { mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { EncodedServed, ServedFeatures } from './engine.ts';

export interface FeatureLogOptions {
  dir: string;
  /** Flush at least this often. Default 1,000 ms. */
  flushMs?: number;
  /** Flush as soon as this many records wait. Default 1,000. */
  maxBuffered?: number;
  log?: (line: string) => void;
  /** Bytes read (and written) at a time when erasing a user from the files. Default 1 MiB. */
  readChunkBytes?: number;
  /**
   * Days a record is kept at least: a day's file is deleted once the end of its day is this many
   * days past. Default: kept for ever.
   */
  retentionDays?: number;
  /** The clock retention counts by; tests set it. Default Date.now. */
  now?: () => number;
}

const DAY_MS = 86_400_000;
const FILE_NAME = /^served-(\d{4}-\d{2}-\d{2})\.jsonl$/;

/**
 * The log files in `dir` whose every record is over `retentionDays` old at `now`: day D's file
 * once D + 1 + retentionDays days have begun (UTC). Other files in the folder are not the log's.
 */
export function expiredLogFiles(files: readonly string[], retentionDays: number, now: number): string[] {
  return files.filter((f) => {
    const day = FILE_NAME.exec(f)?.[1];
    if (day === undefined) return false;
    const start = Date.parse(`${day}T00:00:00Z`);
    return Number.isFinite(start) && start + DAY_MS * (1 + retentionDays) <= now;
  });
}

const READ_CHUNK_BYTES = 1 << 20;

const UTF8 = new TextEncoder();
const NEWLINE = Uint8Array.of(0x0a);

/** The log's line of `served`: its JSON and a newline, UTF-8. */
export function encodeServed(served: ServedFeatures): EncodedServed {
  return { at: served.at, bytes: UTF8.encode(`${JSON.stringify(served)}\n`) };
}

export class FeatureLog {
  private buffer: EncodedServed[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly maxBuffered: number;
  private readonly log: (line: string) => void;
  private failed = false;
  /** Files this process has appended to since it last checked how they end. */
  private readonly checked = new Set<string>();

  /** The UTC day (YYYY-MM-DD) retention last ran on. */
  private prunedOn: string | undefined;

  constructor(private readonly options: FeatureLogOptions) {
    const { retentionDays } = options;
    if (retentionDays !== undefined && !(Number.isInteger(retentionDays) && retentionDays >= 1)) {
      throw new RangeError(`served-features retention must be a whole number of days, at least 1, got ${retentionDays}`);
    }
    this.maxBuffered = options.maxBuffered ?? 1000;
    this.log = options.log ?? console.error;
    this.timer = setInterval(() => void this.flush(), options.flushMs ?? 1000);
    this.timer.unref();
    if (retentionDays !== undefined) this.writing = this.writing.then(() => this.prune());
  }

  record(served: ServedFeatures): void {
    this.recordEncoded(encodeServed(served));
  }

  /** `record` for a record already encoded as its line (`encodeServed`; an engine thread's, engine.ts encodeRecommendation). */
  recordEncoded(served: EncodedServed): void {
    this.buffer.push(served);
    if (this.buffer.length >= this.maxBuffered) void this.flush();
  }

  /** Appends everything buffered; resolves when it is on disk (written, not fsynced). */
  flush(): Promise<void> {
    if (this.buffer.length === 0) return this.writing;
    const batch = this.buffer;
    this.buffer = [];
    this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  /**
   * GDPR erasure: rewrites every log file without the user's records (after flushing what is
   * buffered); returns how many records it removed. A line that is not a JSON record (a torn
   * append) is logged as skipped, and dropped too (not counted as a record) if it holds the
   * user's id.
   */
  async eraseUser(userId: string): Promise<number> {
    await this.flush();
    let removed = 0;
    let unreadable = 0;
    const quoted = JSON.stringify(userId);
    const erase = async (): Promise<void> => {
      let files: string[];
      try {
        files = (await readdir(this.options.dir)).filter((f) => /^served-.*\.jsonl$/.test(f));
      } catch {
        return;
      }
      const chunk = this.options.readChunkBytes ?? READ_CHUNK_BYTES;
      // Read as a stream, a line at a time: a day's log runs to gigabytes (~4 KB a request), past
      // what one string or Buffer holds. A first pass looks for the user's lines; only a file
      // that has some is written again, to a temporary file renamed over it. A line is theirs
      // when it is their record, or not a record (a torn append) and holds their id.
      const theirs = (line: string, owner: string | undefined): boolean => (owner === undefined ? line.includes(quoted) : owner === userId);
      for (const f of files) {
        const path = join(this.options.dir, f);
        let found = 0;
        await forEachLine(path, chunk, (line) => {
          const owner = userOf(line);
          if (owner === undefined) unreadable++;
          if (theirs(line, owner)) found++;
        });
        if (found === 0) continue;
        const tmp = `${path}.erase-${process.pid}`;
        const out = await open(tmp, 'w');
        let written = false;
        try {
          let pending: string[] = [];
          let pendingBytes = 0;
          await forEachLine(path, chunk, async (line) => {
            const owner = userOf(line);
            if (theirs(line, owner)) {
              if (owner === userId) removed++;
              return;
            }
            pending.push(line);
            pendingBytes += line.length + 1;
            if (pendingBytes < chunk) return;
            await out.write(`${pending.join('\n')}\n`);
            pending = [];
            pendingBytes = 0;
          });
          if (pending.length > 0) await out.write(`${pending.join('\n')}\n`);
          written = true;
        } finally {
          await out.close();
          if (!written) await rm(tmp, { force: true });
        }
        await rename(tmp, path);
      }
    };
    // In the write chain, so no append lands between the read and the rename; a failed erasure
    // is the caller's error, and the appends after it still run.
    const erased = this.writing.then(erase);
    this.writing = erased.catch(() => undefined);
    await erased;
    if (unreadable > 0) this.log(`kestrel core: skipped ${unreadable} unreadable line(s) of the served-features log in ${this.options.dir} while erasing a user (a crash mid-append)`);
    return removed;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** The file a record of time `at` goes to. */
  fileFor(at: number): string {
    return join(this.options.dir, `served-${new Date(at).toISOString().slice(0, 10)}.jsonl`);
  }

  /**
   * Deletes the files past retention, once a UTC day (see the top of this file). A file that
   * cannot be deleted is said and left for the next day's check; appends go on regardless.
   */
  private async prune(): Promise<void> {
    const { retentionDays } = this.options;
    if (retentionDays === undefined) return;
    const now = (this.options.now ?? Date.now)();
    const today = new Date(now).toISOString().slice(0, 10);
    if (this.prunedOn === today) return;
    this.prunedOn = today;
    let files: string[];
    try {
      files = await readdir(this.options.dir);
    } catch {
      return;
    }
    for (const f of expiredLogFiles(files, retentionDays, now)) {
      try {
        await unlink(join(this.options.dir, f));
        this.checked.delete(join(this.options.dir, f));
        this.log(`kestrel core: deleted ${f} from the served-features log in ${this.options.dir}: its records are over ${retentionDays} day(s) old`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.log(`kestrel core: cannot delete ${f} from the served-features log in ${this.options.dir} (past retention): ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
  }

  private async write(batch: readonly EncodedServed[]): Promise<void> {
    await this.prune();
    const byFile = new Map<string, Uint8Array[]>();
    for (const r of batch) {
      const file = this.fileFor(r.at);
      let lines = byFile.get(file);
      if (!lines) byFile.set(file, (lines = []));
      lines.push(r.bytes);
    }
    try {
      await mkdir(this.options.dir, { recursive: true });
      for (const [file, lines] of byFile) {
        if (!(this.checked.has(file) || await endsWithNewline(file))) lines.unshift(NEWLINE);
        // Unchecked again until the append succeeds: a failed one may have torn the file itself.
        this.checked.delete(file);
        await appendLines(file, lines);
        this.checked.add(file);
      }
      this.failed = false;
    } catch (error) {
      // Losing served-feature records costs training signal, not user data; say so once per outage.
      if (!this.failed) this.log(`kestrel core: cannot write the served-features log in ${this.options.dir}: ${error instanceof Error ? error.message : String(error)}`);
      this.failed = true;
    }
  }
}

/** Buffers per writev call, within every platform's IOV_MAX. */
const WRITEV_MAX = 512;

/**
 * Appends the lines, bytes already (encoded where they were made, often on an engine thread), with
 * writev: the event loop neither joins nor encodes nor copies the megabytes a second's requests
 * log (~4 KB each; joining and encoding 750 of them took it 7-9 ms, copying them into one buffer
 * 1-3 ms). A short write is an error, as a failed append.
 */
async function appendLines(file: string, lines: readonly Uint8Array[]): Promise<void> {
  const handle = await open(file, 'a');
  try {
    for (let start = 0; start < lines.length; start += WRITEV_MAX) {
      const group = lines.slice(start, start + WRITEV_MAX);
      const expected = group.reduce((sum, b) => sum + b.byteLength, 0);
      const { bytesWritten } = await handle.writev(group);
      if (bytesWritten !== expected) throw new Error(`appended ${bytesWritten} of ${expected} bytes to ${file}`);
    }
  } finally {
    await handle.close();
  }
}

/** Whether the file is missing, empty or ends with a newline (else it ends in a torn line). */
async function endsWithNewline(path: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return true;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    return last[0] === 0x0a;
  } finally {
    await handle.close();
  }
}

/**
 * Calls `each` with every non-empty line of the file, without its newline, reading `chunkBytes`
 * at a time (a line may span chunks; a last line without a newline counts too). Lines split at
 * byte 0x0a, which UTF-8 never uses inside a character.
 */
async function forEachLine(path: string, chunkBytes: number, each: (line: string) => void | Promise<void>): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(Math.max(1, chunkBytes));
    let carry: Buffer[] = [];
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      let start = 0;
      for (let nl = buffer.indexOf(0x0a, 0); nl !== -1 && nl < bytesRead; nl = buffer.indexOf(0x0a, start)) {
        const part = buffer.subarray(start, nl);
        const line = carry.length === 0 ? part.toString('utf8') : Buffer.concat([...carry, part]).toString('utf8');
        carry = [];
        start = nl + 1;
        if (line !== '') await each(line);
      }
      if (start < bytesRead) carry.push(Buffer.from(buffer.subarray(start, bytesRead)));
    }
    const last = Buffer.concat(carry).toString('utf8');
    if (last !== '') await each(last);
  } finally {
    await handle.close();
  }
}

/** The userId of a log line, or undefined when the line is not a JSON record with one. */
function userOf(line: string): string | undefined {
  try {
    const record = JSON.parse(line) as { userId?: unknown } | null;
    return typeof record?.userId === 'string' ? record.userId : undefined;
  } catch {
    return undefined;
  }
}
