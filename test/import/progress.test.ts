import { describe, expect, it } from 'vitest';
import { formatProgress, ProgressBar } from '../../training/data/import/index.ts';
import { formatDuration } from '../../training/data/import/progress.ts';

describe('formatProgress', () => {
  it('shows bar, percent, bytes, rate, rows and ETA', () => {
    expect(formatProgress({ bytesRead: 500_000, totalBytes: 2_000_000, elapsedMs: 1000, records: 25_000, label: 'u.data' }, 8))
      .toBe('u.data  [##......]   25.0%  500.0 KB/2.0 MB  500.0 KB/s  25,000 rows (25,000/s)  ETA 0:03');
  });

  it('says done, and copes with an unknown size or no time elapsed', () => {
    expect(formatProgress({ bytesRead: 2_000, totalBytes: 2_000, elapsedMs: 3_723_000 }, 4)).toBe('[####]  100.0%  2.0 KB/2.0 KB  1 B/s  done in 1:02:03');
    expect(formatProgress({ bytesRead: 10, totalBytes: 0, elapsedMs: 0 })).toBe('10 B  0 B/s');
    expect(formatProgress({ bytesRead: 0, totalBytes: 10, elapsedMs: 0 }, 2)).toBe('[..]    0.0%  0 B/10 B  0 B/s  ETA --:--');
    expect(formatDuration(65_000)).toBe('1:05');
  });
});

describe('ProgressBar', () => {
  function fakeOut(isTTY: boolean) {
    const written: string[] = [];
    return { written, out: { isTTY, write: (s: string) => written.push(s) } };
  }

  it('redraws in place on a TTY, throttled', () => {
    let now = 0;
    const { written, out } = fakeOut(true);
    const bar = new ProgressBar(out, { now: () => now });
    bar.update(10, 100);
    now = 50;
    bar.update(20, 100); // within 100 ms: not drawn
    now = 200;
    bar.update(100, 100);
    bar.done();
    expect(written).toHaveLength(3);
    expect(written.every((s) => s.startsWith('\r') && s.includes('\x1b[K'))).toBe(true);
    expect(written.at(-1)?.endsWith('\n')).toBe(true);
  });

  it('prints plain lines every few seconds when not on a TTY', () => {
    let now = 0;
    const { written, out } = fakeOut(false);
    const bar = new ProgressBar(out, { now: () => now });
    for (; now <= 12_000; now += 500) bar.update(now, 12_000);
    bar.done();
    expect(written).toHaveLength(4); // at 0, 5 s and 10 s, and the final line
    expect(written.every((s) => !s.includes('\r') && s.endsWith('\n'))).toBe(true);
  });
});
