// One writer per event log folder: the LOCK file (core/events/log/lock.ts).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, LogLockedError, SegmentLog, openLogBus } from '../../core/events/log/index.ts';

const root = await mkdtemp(join(tmpdir(), 'kestrel-log-lock-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const WRITER = new URL('./fixtures/log-writer.ts', import.meta.url).pathname;

describe('embedded log: one writer per folder', () => {
  it('a second open in the same process fails with a message naming the holder; close releases the lock', async () => {
    const dir = join(root, 'twice');
    const first = await openLogBus(dir);
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
    const second = SegmentLog.open(dir);
    await expect(second).rejects.toThrow(LogLockedError);
    await expect(SegmentLog.open(dir)).rejects.toThrow(
      `the event log in ${dir} is in use by process ${process.pid} (kestrel serve?); stop it or import through the API`,
    );
    await first.close();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    const again = await SegmentLog.open(dir);
    expect(again.lockTakenOverFrom).toBeUndefined();
    await again.close();
  });

  it('takes over, with a note, the lock a killed process left behind', { timeout: 60_000 }, async () => {
    const dir = join(root, 'killed');
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, 'k', '65536'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // The first acknowledged publish: the child holds the lock.
    await new Promise<void>((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`writer exited early (code ${code}): ${stderr}`)));
      child.stdout.once('data', () => resolve());
    });
    const pid = child.pid;
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(pid));
    await expect(SegmentLog.open(dir)).rejects.toThrow(`in use by process ${pid}`);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const notes: string[] = [];
    const log = await SegmentLog.open(dir, { onNote: (n) => notes.push(n) });
    try {
      expect(log.lockTakenOverFrom).toBe(pid);
      expect(notes).toEqual([`event log ${dir}: process ${pid} no longer runs but left its lock; taking it over`]);
      expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
      expect(log.end).toBeGreaterThan(0);
    } finally {
      await log.close();
    }
  });

  it('removes an old lock file that names no process', async () => {
    const dir = join(root, 'empty');
    const log = await SegmentLog.open(dir);
    await log.close();
    await writeFile(join(dir, LOCK_FILE), '');
    const old = new Date(Date.now() - 60_000);
    await utimes(join(dir, LOCK_FILE), old, old);
    const notes: string[] = [];
    const reopened = await SegmentLog.open(dir, { onNote: (n) => notes.push(n) });
    expect(notes).toEqual([`event log ${dir}: removing a lock file that names no process`]);
    await reopened.close();
  });
});
