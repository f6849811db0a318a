// Worker threads whose entry is a TypeScript module of this checkout, and the priority of the
// thread that calls `lowerThisThreadPriority`. Each worker is named after its role (`kestrel-engine`,
// `kestrel-ingest`, ...), which Linux shows per thread.
import { readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The most bytes of a thread's name on Linux (TASK_COMM_LEN less its NUL). */
const THREAD_NAME_BYTES = 15;

/**
 * Starts a worker running `entry` (a .ts module URL). It loads through tsx, registered inside the
 * worker: a worker does not inherit the loader hooks of the thread that starts it.
 *
 * `name` (printable ASCII, at most 15 bytes, by convention `kestrel-<role>`) becomes the thread's
 * name on Linux, first thing in the thread, where `top -H`, `ps -L`, perf and
 * `/proc/<pid>/task/<tid>/comm` show it: the threads of a core are then told apart (every thread
 * of node is called `node` otherwise), and the benches split a server's CPU by them. Elsewhere, or
 * where /proc refuses it, the thread keeps its name.
 */
export function typescriptWorker(entry: URL, workerData: unknown, name: string): Worker {
  if (!/^[\x21-\x7e]+$/.test(name) || name.length > THREAD_NAME_BYTES) {
    throw new RangeError(`a thread's name is 1 to ${THREAD_NAME_BYTES} printable ASCII characters without spaces, got '${name}'`);
  }
  // require.resolve answers the package's CommonJS build; its ES module build sits beside it.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const rename = `try { require('node:fs').writeFileSync('/proc/thread-self/comm', ${JSON.stringify(name)}); } catch {}`;
  const source = `${rename}\nimport(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(source, { eval: true, workerData });
}

/**
 * Ends a worker that was asked to close: waits for `closed` (the thread's word that it let go of
 * its connections) at most `graceMs`, then terminates it. A timer or socket a library leaves
 * behind would otherwise keep the thread alive, and whoever awaits its exit waiting (a bus's
 * close, seen taking ~110 s after a Kafka outage).
 */
export async function endWorker(worker: Worker, closed: Promise<unknown>, graceMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
  clearTimeout(timer);
  await worker.terminate();
}

/**
 * Background work (the projector's consumer and its SQLite writes) gives way to the threads that
 * serve requests when the cores are busy. Linux sets the nice value per thread, which
 * /proc/thread-self names; elsewhere, or without the right, the thread keeps its priority.
 */
export function lowerThisThreadPriority(nice = 10): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // Not Linux, or not allowed: same priority as before, which is only slower under load.
  }
}
