// One writer per event log folder: a `LOCK` file holding the writer's pid, created with O_EXCL
// (open 'wx'), removed on close. Two writers would interleave appends and both believe they own
// the durable end, so a second open fails while the first process lives. A process that died
// without closing (kill -9, a crash) leaves its lock behind; its pid no longer runs, so the next
// open takes the lock over and says so (segment recovery then checks the tail it left).
//
// Known limit: two processes that find the same stale lock at the same instant can both take it
// over (unlink + create is not one step). Stale locks only exist after a crash, and a restart
// after a crash is one process, so this window is accepted rather than adding flock(2) (not in
// Node's standard library).
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCK_FILE = 'LOCK';
/** A lock file with no pid yet, younger than this, is a writer between creating and filling it. */
const FILLING_GRACE_MS = 5_000;

/** The folder's lock is held by a live process. */
export class LogLockedError extends Error {
  override name = 'LogLockedError';
  constructor(readonly dir: string, readonly pid: number) {
    super(`the event log in ${dir} is in use by process ${pid} (kestrel serve?); stop it or import through the API`);
  }
}

export interface LogLock {
  path: string;
  /** The pid of the dead process whose lock was taken over, if any. */
  takenOverFrom?: number;
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>;
}

/** Whether a process with this pid runs (EPERM: it runs under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function create(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await fh.writeFile(`${process.pid}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

async function holder(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function ageMs(path: string): Promise<number> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return Infinity;
  }
}

/**
 * Takes the lock of `dir` (which must exist). Throws LogLockedError while a live process holds
 * it; takes over a lock whose process is gone, reporting that through `onNote`.
 */
export async function acquireLogLock(dir: string, onNote: (note: string) => void = console.warn): Promise<LogLock> {
  const path = join(dir, LOCK_FILE);
  let takenOverFrom: number | undefined;
  // Two rounds: the second follows removing a stale lock (or one released in between).
  for (let round = 0; round < 2; round++) {
    if (await create(path)) {
      const lock: LogLock = {
        path,
        async release() {
          if ((await holder(path)) === process.pid) await unlink(path).catch(() => undefined);
        },
      };
      if (takenOverFrom !== undefined) lock.takenOverFrom = takenOverFrom;
      return lock;
    }
    const pid = await holder(path);
    if (pid !== undefined && alive(pid)) throw new LogLockedError(dir, pid);
    if (pid === undefined && (await ageMs(path)) < FILLING_GRACE_MS) {
      throw new Error(`the event log in ${dir} is being opened by another process right now; try again in a few seconds`);
    }
    // A dead pid, or a file naming none (a writer killed between creating and filling it).
    onNote(pid === undefined
      ? `event log ${dir}: removing a lock file that names no process`
      : `event log ${dir}: process ${pid} no longer runs but left its lock; taking it over`);
    if (pid !== undefined) takenOverFrom = pid;
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  const pid = await holder(path);
  throw new LogLockedError(dir, pid ?? 0);
}
