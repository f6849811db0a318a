// `kestrel serve` in its own process for the benches that load it over HTTP (serve, edge), so its
// CPU is not the load generator's: started from this checkout's CLI, with no API keys, and handed
// back once `ready(url)` says it serves.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
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
export async function startCoreProcess(args: readonly string[], ready: (url: string) => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<CoreProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KESTREL_API_KEYS: '' },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + timeoutMs;
  // A core that does not come up is stopped, not left running (and holding its data folder's lock).
  const fail = (what: string): never => {
    child.kill('SIGKILL');
    throw new Error(`kestrel serve ${what}:\n${output}`);
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

/** CPU seconds the process has used (all its threads), from /proc on Linux; undefined elsewhere. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the command name), in ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
