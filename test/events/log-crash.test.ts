// The embedded log under a real crash: a child process publishes and prints every acknowledged
// event id; it is SIGKILLed mid-write; the reopened log must hold every acknowledged id and read
// nothing half-written. SIGKILL cannot tear a single write(2) to a file on Linux (the kernel
// finishes the copy into the page cache), so torn tails, which a power cut or kernel crash
// leaves, are then made by hand: recovery cuts them off, and appends after the cut work.
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { decodeEvent } from '../../core/events/bus.ts';
import { SegmentLog, crc32, crc32Table, frame } from '../../core/events/log/index.ts';

const root = await mkdtemp(join(tmpdir(), 'kestrel-log-crash-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const WRITER = new URL('./fixtures/log-writer.ts', import.meta.url).pathname;
/** Acknowledged events to see before the kill, per round (varied, so the kill lands at different points). */
const ACKED_BEFORE_KILL = [3_000, 20_000, 50_000];

/** Every record in the log, decoded: decoding fails loudly on anything half-written. */
async function readAll(log: SegmentLog): Promise<Event[]> {
  const events: Event[] = [];
  let position = log.start;
  while (position < log.end) {
    const records = await log.read(position);
    for (const r of records) events.push(decodeEvent(r.payload, `byte ${r.offset}`));
    position = (records.at(-1) as { next: number }).next;
  }
  return events;
}

/** Runs the writer until `count` more ids were acknowledged, then SIGKILLs it mid-write. */
async function runAndKill(dir: string, prefix: string, count: number): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, prefix, '65536'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked: string[] = [];
  let partial = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`writer exited early (code ${code}): ${stderr}`)));
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      acked.push(...lines);
      if (acked.length >= count) resolve();
    });
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  // Lines that arrived between the resolve and the kill count as acknowledged too.
  return acked;
}

describe('embedded log: crash and recovery', () => {
  it('CRC-32 (the native one and the table fallback for older Node) matches zlib and the standard check value', () => {
    for (const crc of [crc32, crc32Table]) {
      expect(crc(Buffer.from('123456789'))).toBe(0xcbf43926);
      for (const n of [0, 1, 7, 255, 4_096]) {
        const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff));
        expect(crc(bytes)).toBe(zlibCrc32(bytes));
        // A sub-range, as the log checks a record inside a larger read buffer.
        if (n > 8) expect(crc(bytes, 3, n - 2)).toBe(zlibCrc32(bytes.subarray(3, n - 2)));
      }
    }
  });

  it('keeps every acknowledged event through SIGKILL mid-write, in order, and reads nothing torn', { timeout: 300_000 }, async () => {
    const dir = join(root, 'killed');
    const acked: string[] = [];
    for (const [round, count] of ACKED_BEFORE_KILL.entries()) {
      acked.push(...await runAndKill(dir, `r${round}`, count));
      const log = await SegmentLog.open(dir, { segmentBytes: 65_536 });
      try {
        const ids = (await readAll(log)).map((e) => e.id);
        const present = new Set(ids);
        expect(present.size, 'no record twice').toBe(ids.length);
        expect(acked.filter((id) => !present.has(id)), 'acknowledged but missing').toEqual([]);
        // Acknowledgements come in log order, so the acknowledged ids sit in the log in the
        // order they were printed.
        const at = new Map(ids.map((id, i) => [id, i]));
        const positions = acked.map((id) => at.get(id) ?? -1);
        expect(positions.every((p, i) => i === 0 || p > (positions[i - 1] ?? -1)), 'acknowledged ids in log order').toBe(true);
        expect(log.recovery.truncatedBytes).toBeGreaterThanOrEqual(0);
      } finally {
        await log.close();
      }
    }
    // The writers rolled over many small segments.
    expect((await readdir(dir)).filter((f) => f.endsWith('.log')).length).toBeGreaterThan(3);
  });

  const cases: [string, (segment: string) => Promise<number>][] = [
    ['a partial header', async (segment) => { await appendFile(segment, Buffer.from([0x10, 0x00, 0x00])); return 3; }],
    ['a header whose length runs past the end of the file', async (segment) => {
      const torn = frame(Buffer.from(JSON.stringify({ id: 'torn', type: 'view', userId: 'u', itemId: 'i', timestamp: 1 }))).subarray(0, 20);
      await appendFile(segment, torn);
      return torn.length;
    }],
    ['a whole record with a wrong CRC', async (segment) => {
      const bad = frame(Buffer.from(JSON.stringify({ id: 'bad-crc', type: 'view', userId: 'u', itemId: 'i', timestamp: 1 })));
      bad.writeUInt8((bad.readUInt8(bad.length - 2) + 1) & 0xff, bad.length - 2);
      await appendFile(segment, bad);
      return bad.length;
    }],
    ['zeroed bytes (a preallocated tail)', async (segment) => { await appendFile(segment, Buffer.alloc(4_096)); return 4_096; }],
    ['a garbage length', async (segment) => { await appendFile(segment, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5])); return 9; }],
  ];

  for (const [what, damage] of cases) {
    it(`recovery cuts off ${what} and later appends work`, async () => {
      const dir = join(root, what.replace(/\W+/g, '-'));
      const events = (from: number, n: number): Event[] => Array.from({ length: n }, (_, i) => ({
        id: `e${from + i}`, type: 'click', userId: `u${(from + i) % 5}`, itemId: 'i', timestamp: from + i,
      }));
      let log = await SegmentLog.open(dir);
      await log.append(events(0, 100).map((e) => Buffer.from(JSON.stringify(e))));
      const end = log.end;
      await log.close();
      const segment = join(dir, '00000000000000000000.log');
      const added = await damage(segment);
      expect((await stat(segment)).size).toBe(end + added);

      log = await SegmentLog.open(dir);
      expect(log.recovery).toEqual({ segment, truncatedBytes: added });
      expect(log.end).toBe(end);
      expect((await stat(segment)).size).toBe(end);
      expect((await readAll(log)).map((e) => e.id)).toEqual(events(0, 100).map((e) => e.id));
      await log.append(events(100, 50).map((e) => Buffer.from(JSON.stringify(e))));
      await log.close();

      log = await SegmentLog.open(dir);
      try {
        expect(log.recovery.truncatedBytes).toBe(0);
        expect((await readAll(log)).map((e) => e.id)).toEqual(events(0, 150).map((e) => e.id));
      } finally {
        await log.close();
      }
    });
  }

  it('refuses to read a corrupt record in the middle of the log, naming the file and byte', async () => {
    const dir = join(root, 'mid-corrupt');
    const log = await SegmentLog.open(dir);
    await log.append(Array.from({ length: 10 }, (_, i) => Buffer.from(JSON.stringify({ id: `m${i}`, type: 'view', userId: 'u', itemId: 'i', timestamp: i }))));
    const first = (await log.read(0))[1];
    if (first === undefined) throw new Error('expected 10 records');
    const fh = await open(join(dir, '00000000000000000000.log'), 'r+');
    await fh.write(Buffer.from('X'), 0, 1, first.offset + 12);
    await fh.close();
    await expect(log.read(0)).resolves.toHaveLength(1);
    await expect(log.read(first.offset)).rejects.toThrow(/00000000000000000000\.log: the record at byte \d+ fails its length or CRC check/);
    await log.close();
  });
});
