import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuSeconds, threadCpuMsPer, threadCpuSeconds } from '../../bench/core-process.ts';
import { typescriptWorker } from '../../core/threads.ts';

const SPIN = new URL('../support/spin.thread.ts', import.meta.url);
const linux = process.platform === 'linux';

/** The names of this process's threads, as Linux shows them. */
function threadNames(): string[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return [readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()];
    } catch {
      return [];
    }
  });
}

describe('worker threads', () => {
  let workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
    workers = [];
  });

  async function start(name: string): Promise<Worker> {
    const worker = typescriptWorker(SPIN, undefined, name);
    workers.push(worker);
    const [message] = await once(worker, 'message');
    expect(message).toBe('started');
    return worker;
  }

  it.runIf(linux)('are named after their role, where Linux shows a thread\'s name', async () => {
    const named = () => threadNames().filter((n) => n === 'kestrel-test').length;
    expect(named()).toBe(0);
    await start('kestrel-test');
    // The worker, and the thread that runs its module loader's hooks (started from it, so named
    // after it too: its CPU is the worker's loading).
    const one = named();
    expect(one).toBeGreaterThanOrEqual(1);
    await start('kestrel-test');
    expect(named()).toBe(2 * one);
  });

  it('refuse a name Linux would cut short or one with spaces', () => {
    expect(() => typescriptWorker(SPIN, undefined, 'kestrel-snapshot')).toThrow(/1 to 15 printable ASCII characters without spaces, got 'kestrel-snapshot'/);
    expect(() => typescriptWorker(SPIN, undefined, 'kestrel engine')).toThrow(/without spaces/);
    expect(() => typescriptWorker(SPIN, undefined, '')).toThrow(RangeError);
  });

  it.runIf(linux)('have their CPU time read by role, the rest of the process as main and other', async () => {
    const worker = await start('kestrel-spin');
    const before = threadCpuSeconds(process.pid);
    expect(before).toBeDefined();
    worker.postMessage(400);
    await once(worker, 'message');
    const after = threadCpuSeconds(process.pid);
    expect(after).toBeDefined();
    const split = threadCpuMsPer(before ?? {}, after ?? {}, 1);
    // ~400 ms spun on the named thread (ticks of 10 ms; a busy machine may give it less CPU).
    expect(split['kestrel-spin']).toBeGreaterThan(100);
    expect(split['kestrel-spin']).toBeLessThanOrEqual(450);
    expect(Object.keys(after ?? {})).toEqual(expect.arrayContaining(['main', 'kestrel-spin', 'other']));
    // The groups add up to the process's own count.
    const total = Object.values(after ?? {}).reduce((s, v) => s + v, 0);
    expect(Math.abs(total - (cpuSeconds(process.pid) ?? 0))).toBeLessThan(0.05);
  });
});
