import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  summary: string;
  /** Full `--help` text: usage line, description, options. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** Thrown for a command line the user can fix; printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Strict option parsing: unknown flags are a UsageError that names them. */
export function parseCommandLine<O extends Options>(argv: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** A `--port`-style flag: an integer in [min, 65535], or `fallback` when absent. */
export function parsePort(value: string | undefined, fallback: number, flag: string, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > 65535) throw new UsageError(`${flag} must be a port number ${min}-65535, got '${value}'`);
  return n;
}
