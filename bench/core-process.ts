// `kestrel serve` in its own process for the benches that load it over HTTP (serve, edge), so its
// CPU is not the load generator's: started from this checkout's CLI, with no API keys, and handed
// back once `ready(url)` says it serves.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/kestrel.js', import.meta.url));
const START_TIMEOUT_MS = 300_000;

export interface CoreProcess {
  url: string;
  child: ChildProcess;
  /** Stops it with SIGINT (as Ctrl-C would) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Runs `kestrel serve --port 0 ...args` and resolves once it listens and `ready(url)` is true,
 * within `timeoutMs` (default 5 min).
 */
export function startCoreProcess(args: readonly string[], ready: (url: string) => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<CoreProcess> {
  return startServerProcess('kestrel serve', [BIN, 'serve', '--port', '0', ...args], ready, timeoutMs);
}

/**
 * Runs `node ...argv`, a server that prints `listening on <url>` and then `Press Ctrl-C to stop.`,
 * and resolves once `ready(url)` is true, within `timeoutMs`; `what` names it in errors.
 */
export async function startServerProcess(what: string, argv: readonly string[], ready: (url: string) => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<CoreProcess> {
  const child = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KESTREL_API_KEYS: '' },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + timeoutMs;
  // A server that does not come up is stopped, not left running (and holding its data folder's lock).
  const fail = (how: string): never => {
    child.kill('SIGKILL');
    throw new Error(`${what} ${how}:\n${output}`);
  };
  while (!output.includes('Press Ctrl-C to stop.')) {
    if (child.exitCode !== null || Date.now() > deadline) fail('did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = /listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '';
  while (!(await ready(url).catch(() => false))) {
    if (child.exitCode !== null || Date.now() > deadline) fail('never became ready');
    await new Promise((r) => setTimeout(r, 250));
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
  };
  return { url, child, stop };
}

/**
 * Empties the served-features log (`<dataDir>/served/`) of a data folder a bench reuses from run
 * to run for its model: each recommendation served appends a ~4 KB line there, and the serve
 * bench's folder had grown to 17 GB over its runs. Nothing a bench measures reads it.
 */
export function clearServedLog(dataDir: string): void {
  rmSync(join(dataDir, 'served'), { recursive: true, force: true });
}

/** CPU seconds the process has used (all its threads), from /proc on Linux; undefined elsewhere. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    return statSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds from a /proc stat line: utime + stime, fields 14 and 15 (11 and 12 after the name), in ticks of 1/100 s. */
function statSeconds(line: string): number {
  const fields = line.replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds the process has used, split by thread: `main` (the event loop), each role Kestrel
 * names its worker threads by (`kestrel-engine`, `kestrel-ingest`, ... summed over the threads of a
 * role, core/threads.ts), and `other`: the rest of the process's time, V8's and libuv's helper
 * threads (garbage collection, compilation, file I/O) and threads that have exited. Linux only;
 * undefined elsewhere or once the process is gone.
 */
export function threadCpuSeconds(pid: number | undefined): Record<string, number> | undefined {
  const total = cpuSeconds(pid);
  if (pid === undefined || total === undefined) return undefined;
  const split: Record<string, number> = { main: 0 };
  let named = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      let name: string;
      let seconds: number;
      try {
        name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        seconds = statSeconds(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
      } catch {
        continue; // the thread ended meanwhile: its time is in the process's
      }
      const group = tid === String(pid) ? 'main' : name.startsWith('kestrel-') ? name : undefined;
      if (group === undefined) continue;
      split[group] = (split[group] ?? 0) + seconds;
      named += seconds;
    }
  } catch {
    return undefined;
  }
  split.other = Math.max(0, total - named);
  return split;
}

/** `after` − `before` per thread group, in ms per `per` (a group new in `after` counts from 0). */
export function threadCpuMsPer(before: Record<string, number>, after: Record<string, number>, per: number): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([group, seconds]) => [group, ((seconds - (before[group] ?? 0)) * 1000) / per]));
}
