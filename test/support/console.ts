import { vi } from 'vitest';

/** Captures console.log/console.error for a CLI test; restore with vi.restoreAllMocks(). */
export function captureConsole() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  return { out: () => out.join('\n'), err: () => err.join('\n') };
}
