// A terminal progress bar for `kestrel import`: `formatProgress` is pure (state → one line);
// `ProgressBar` writes it, redrawing in place on a TTY and printing a plain line now and then
// otherwise (logs and CI should not fill with carriage returns).

export interface ProgressState {
  bytesRead: number;
  /** 0 when unknown: no percentage or ETA then. */
  totalBytes: number;
  elapsedMs: number;
  /** Records read so far, shown when given. */
  records?: number;
  label?: string;
}

/** Redraws at most this often on a TTY. */
export const TTY_INTERVAL_MS = 100;
/** Prints a plain line at most this often when not on a TTY. */
export const PLAIN_INTERVAL_MS = 5_000;
const BAR_WIDTH = 24;

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let u = 0;
  while (value >= 1000 && u < units.length - 1) {
    value /= 1000;
    u++;
  }
  return `${u === 0 ? Math.round(value) : value.toFixed(1)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

/** One line: label, bar, percent, bytes, rate, records and ETA (or elapsed time once done). */
export function formatProgress(state: ProgressState, width = BAR_WIDTH): string {
  const { bytesRead, totalBytes, elapsedMs } = state;
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? bytesRead / seconds : 0;
  const parts: string[] = [];
  if (state.label) parts.push(state.label);
  if (totalBytes > 0) {
    const fraction = Math.min(1, bytesRead / totalBytes);
    const filled = Math.round(fraction * width);
    parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`, `${(fraction * 100).toFixed(1).padStart(5)}%`);
    parts.push(`${formatBytes(bytesRead)}/${formatBytes(totalBytes)}`);
  } else {
    parts.push(formatBytes(bytesRead));
  }
  parts.push(`${formatBytes(rate)}/s`);
  if (state.records !== undefined) {
    const perSecond = seconds > 0 ? Math.round(state.records / seconds) : 0;
    parts.push(`${state.records.toLocaleString('en-US')} rows (${perSecond.toLocaleString('en-US')}/s)`);
  }
  if (totalBytes > 0 && bytesRead >= totalBytes) parts.push(`done in ${formatDuration(elapsedMs)}`);
  else if (totalBytes > 0) parts.push(`ETA ${rate > 0 ? formatDuration(((totalBytes - bytesRead) / rate) * 1000) : '--:--'}`);
  return parts.join('  ');
}

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * Draws one status line: redrawn in place on a TTY at most every `TTY_INTERVAL_MS`, printed as a
 * plain line at most every `PLAIN_INTERVAL_MS` otherwise. Shared by every progress display.
 */
export class ThrottledLine {
  private last = -Infinity;
  readonly started: number;

  constructor(private readonly out: ProgressOutput, private readonly clock: () => number = performance.now.bind(performance)) {
    this.started = clock();
  }

  now(): number {
    return this.clock();
  }

  /** Shows `line()` if enough time has passed since the last one, or always when `final`. */
  show(line: (elapsedMs: number) => string, final = false): void {
    const t = this.clock();
    if (!final && t - this.last < (this.out.isTTY ? TTY_INTERVAL_MS : PLAIN_INTERVAL_MS)) return;
    this.last = t;
    const text = line(t - this.started);
    if (this.out.isTTY) this.out.write(`\r${text}\x1b[K${final ? '\n' : ''}`);
    else this.out.write(`${text}\n`);
  }
}

export class ProgressBar {
  private readonly line: ThrottledLine;
  private state: Omit<ProgressState, 'elapsedMs'> = { bytesRead: 0, totalBytes: 0 };

  constructor(out: ProgressOutput, private readonly options: { label?: string; now?: () => number } = {}) {
    this.line = new ThrottledLine(out, options.now);
  }

  /** Records progress; draws when enough time has passed since the last draw. */
  update(bytesRead: number, totalBytes: number, records?: number): void {
    this.state = { bytesRead, totalBytes, ...(records === undefined ? {} : { records }), ...(this.options.label ? { label: this.options.label } : {}) };
    this.line.show((elapsedMs) => formatProgress({ ...this.state, elapsedMs }));
  }

  /** Draws the final state and ends the line. */
  done(): void {
    this.line.show((elapsedMs) => formatProgress({ ...this.state, elapsedMs }), true);
  }
}
