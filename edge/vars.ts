// Reading the Worker's string vars (wrangler.toml [vars]) as numbers.

/** A var in milliseconds: its value when it is a number ≥ 0, else `fallback` (unset or malformed). */
export function msVar(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(n) && n >= 0 ? n : fallback;
}
