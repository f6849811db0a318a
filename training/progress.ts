// Progress of a training run, one line per epoch: `kestrel train` draws it on stderr while a model
// trains. `formatEpochProgress` is pure; `EpochProgress` throttles and draws it.

import { formatDuration, ThrottledLine } from './data/import/progress.ts';
import type { ProgressOutput } from './data/import/progress.ts';

export interface EpochState {
  model: string;
  epoch: number;
  epochs: number;
  /** Examples done in this epoch, and in a whole epoch. */
  done: number;
  total: number;
  /** Mean training loss over the epoch so far. */
  loss: number;
  elapsedMs: number;
}

const BAR_WIDTH = 20;
const MIN_RATE_MS = 250;

export function formatEpochProgress(s: EpochState): string {
  const fraction = s.total > 0 ? Math.min(1, s.done / s.total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  // A rate over the first instants of an epoch is noise: show it once there is something to average.
  const rate = s.elapsedMs >= MIN_RATE_MS ? (s.done / s.elapsedMs) * 1000 : 0;
  const eta = rate > 0 ? formatDuration(((s.total - s.done) / rate) * 1000) : '--:--';
  return [
    `${s.model} epoch ${s.epoch}/${s.epochs}`,
    `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`,
    `${(fraction * 100).toFixed(0).padStart(3)}%`,
    `loss ${Number.isFinite(s.loss) ? s.loss.toFixed(4) : '-'}`,
    rate > 0 ? `${Math.round(rate).toLocaleString('en-US')} ex/s` : '- ex/s',
    fraction >= 1 ? `${formatDuration(s.elapsedMs)}` : `ETA ${eta}`,
  ].join('  ');
}

/** What a trainer reports: progress within an epoch, and the epoch's result line. */
export interface TrainingObserver {
  progress(model: string, epoch: number, epochs: number, done: number, total: number, loss: number): void;
  epochEnd(model: string, summary: string): void;
}

/** Draws a training run's progress on a stream (stderr), throttled, one finished line per epoch. */
export class EpochProgress implements TrainingObserver {
  private line: ThrottledLine | undefined;
  private epoch = -1;

  constructor(private readonly out: ProgressOutput) {}

  progress(model: string, epoch: number, epochs: number, done: number, total: number, loss: number): void {
    if (!this.line || epoch !== this.epoch) {
      this.line = new ThrottledLine(this.out);
      this.epoch = epoch;
    }
    this.line.show((elapsedMs) => formatEpochProgress({ model, epoch, epochs, done, total, loss, elapsedMs }), done >= total);
  }

  epochEnd(model: string, summary: string): void {
    this.out.write(`  ${model} ${summary}\n`);
  }
}

/** An observer that shows nothing (tests, benchmarks). */
export const SILENT: TrainingObserver = { progress() {}, epochEnd() {} };
