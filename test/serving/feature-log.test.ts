// The served-features log after a crash mid-append: the file ends in half a line. The next
// process's first append must start on a new line, so the records on both sides of the torn line
// stay readable, and the readers (the training join, erasure) skip the torn line and count it.
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteCatalog } from '../../core/catalog/index.ts';
import type { ServedFeatures } from '../../core/serving/engine.ts';
import { FeatureLog, expiredLogFiles } from '../../core/serving/feature-log.ts';
import { joinServedFeatures } from '../../training/data/served-join.ts';
import type { ServedJoinRow } from '../../training/data/served-join.ts';

const root = mkdtempSync(join(tmpdir(), 'kestrel-feature-log-'));
const AT = Date.UTC(2026, 2, 1, 12);

afterAll(() => rmSync(root, { recursive: true, force: true }));

function record(requestId: string, userId: string, at = AT): ServedFeatures {
  return {
    requestId, userId, modelVersion: 'v1', at, features: ['a', 'b'],
    items: [{ item: `item-${requestId}`, position: 0, score: 0.5, dense: [1.5, -2], sources: ['two-tower'] }],
  };
}

async function write(dir: string, records: readonly ServedFeatures[], log?: (line: string) => void): Promise<FeatureLog> {
  const featureLog = new FeatureLog({ dir, flushMs: 60_000, ...(log ? { log } : {}) });
  for (const r of records) featureLog.record(r);
  await featureLog.close();
  return featureLog;
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n');

describe('FeatureLog after a torn append', () => {
  it('starts the next append on a new line, so the records around the torn line read back whole', async () => {
    const dataDir = join(root, 'torn');
    const dir = join(dataDir, 'served');
    const first = await write(dir, [record('r1', 'u1')]);
    const file = first.fileFor(AT);
    // The process died half-way through appending r2.
    appendFileSync(file, JSON.stringify(record('r2', 'u2')).slice(0, 30));
    const messages: string[] = [];
    await write(dir, [record('r3', 'u3')], (line) => messages.push(line));
    expect(messages).toEqual([]);

    const text = lines(file);
    expect(text).toHaveLength(4); // r1, the torn half, r3 and the empty string after the last '\n'
    expect(JSON.parse(text[0] ?? '')).toEqual(record('r1', 'u1'));
    expect(() => JSON.parse(text[1] ?? '')).toThrow();
    expect(JSON.parse(text[2] ?? '')).toEqual(record('r3', 'u3'));
    expect(text[3]).toBe('');

    // A second append in the same process does not add a blank line.
    const same = new FeatureLog({ dir, flushMs: 60_000 });
    same.record(record('r4', 'u4'));
    await same.flush();
    same.record(record('r5', 'u5'));
    await same.close();
    expect(lines(file).filter((l) => l === '')).toHaveLength(1);

    // The training join reads r1, r3, r4 and r5 and counts the torn line.
    openSqliteCatalog(join(dataDir, 'catalog.db')).close();
    const rows: ServedJoinRow[] = [];
    const summary = await joinServedFeatures({ dataDir }, (row) => { rows.push(row); });
    expect(rows.map((r) => r.requestId)).toEqual(['r1', 'r3', 'r4', 'r5']);
    expect(rows[1]?.features).toEqual({ a: 1.5, b: -2 });
    expect(summary).toMatchObject({ requests: 4, rows: 4, badLines: 1 });
  });

  it('erases a user from a log with a torn line without throwing, and says it skipped the line', async () => {
    const dir = join(root, 'erase', 'served');
    const featureLog = await write(dir, [record('r1', 'u1'), record('r2', 'u2')]);
    const file = featureLog.fileFor(AT);
    // A torn record of the user being erased, and one of another user (a glued pair, as a log
    // written before this fix holds).
    const tornOwn = JSON.stringify(record('r3', 'u1')).slice(0, 40);
    const tornOther = `${JSON.stringify(record('r4', 'u2')).slice(0, 20)}${JSON.stringify(record('r5', 'u2'))}`;
    appendFileSync(file, `${tornOwn}\n${tornOther}\n`);
    expect(tornOwn).toContain('"userId":"u1"');

    const messages: string[] = [];
    const eraser = new FeatureLog({ dir, flushMs: 60_000, log: (line) => messages.push(line) });
    expect(await eraser.eraseUser('u1')).toBe(1);
    await eraser.close();
    // u1's record and the torn line holding u1's id are gone; u2's record and the other torn line stay.
    expect(lines(file)).toEqual([JSON.stringify(record('r2', 'u2')), tornOther, '']);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/skipped 2 unreadable line\(s\) of the served-features log/);

    // A file that ends torn and holds nothing of the user is left as it is.
    const other = join(dir, 'served-2026-03-02.jsonl');
    writeFileSync(other, `${JSON.stringify(record('r6', 'u2'))}\n{"requestId":"r7","us`);
    const again = new FeatureLog({ dir, flushMs: 60_000, log: () => undefined });
    expect(await again.eraseUser('u3')).toBe(0);
    await again.close();
    expect(readFileSync(other, 'utf8')).toBe(`${JSON.stringify(record('r6', 'u2'))}\n{"requestId":"r7","us`);
  });

  it('erases a user reading the files in chunks smaller than a line, multi-byte ids cut across chunks, as with whole reads', async () => {
    const users = ['u1', 'ü-2', '用户3', 'u1'];
    const records = Array.from({ length: 40 }, (_, k) => record(`r${k}`, users[k % users.length] ?? 'u1'));
    const results: string[][] = [];
    for (const readChunkBytes of [5, 7, 64, 1 << 20]) {
      const dir = join(root, `chunks-${readChunkBytes}`, 'served');
      const featureLog = await write(dir, records);
      const file = featureLog.fileFor(AT);
      // A torn last line of another user, with no newline after it.
      appendFileSync(file, '{"requestId":"r99","userId":"ü-');
      const eraser = new FeatureLog({ dir, flushMs: 60_000, readChunkBytes, log: () => undefined });
      expect(await eraser.eraseUser('ü-2')).toBe(10);
      // Appends after an erasure still land.
      eraser.record(record('r100', 'u1'));
      await eraser.close();
      results.push(lines(file));
    }
    const expected = [
      ...records.filter((r) => r.userId !== 'ü-2').map((r) => JSON.stringify(r)),
      '{"requestId":"r99","userId":"ü-', JSON.stringify(record('r100', 'u1')), '',
    ];
    for (const got of results) expect(got).toEqual(expected);
  });
});

describe('FeatureLog retention', () => {
  const day = (iso: string): number => Date.parse(`${iso}T00:00:00Z`);

  it("deletes a day's file once its last record is retentionDays old, at open and at the first append of each day", async () => {
    const dir = join(root, 'retention');
    // Files of 2026-03-01 to 2026-03-05, and a file that is not the log's.
    for (const d of ['01', '02', '03', '04', '05']) {
      const seed = new FeatureLog({ dir, flushMs: 60_000, now: () => day(`2026-03-${d}`) });
      seed.record(record(`r${d}`, 'u1', Date.parse(`2026-03-${d}T12:00:00Z`)));
      await seed.close();
    }
    writeFileSync(join(dir, 'notes.txt'), 'kept');
    const files = () => readdirSync(dir).sort();
    expect(files()).toHaveLength(6);

    // On 2026-03-06 at noon, 2 days kept: the 1st, 2nd and 3rd days ended 4.5, 3.5 and 2.5 days
    // before, so their files go; the 4th ended 1.5 days before.
    let now = Date.parse('2026-03-06T12:00:00Z');
    const messages: string[] = [];
    const log = new FeatureLog({ dir, flushMs: 60_000, retentionDays: 2, now: () => now, log: (line) => messages.push(line) });
    await log.flush();
    expect(files()).toEqual(['notes.txt', 'served-2026-03-04.jsonl', 'served-2026-03-05.jsonl']);
    expect(messages).toHaveLength(3);
    expect(messages[0]).toMatch(/deleted served-2026-03-01\.jsonl .*over 2 day\(s\) old/);

    // Later the same day nothing more goes; at the first append of the next day the 4th goes.
    log.record(record('r6', 'u1', now));
    await log.flush();
    expect(files()).toContain('served-2026-03-04.jsonl');
    now = Date.parse('2026-03-07T00:00:05Z');
    log.record(record('r7', 'u1', now));
    await log.close();
    expect(files()).toEqual(['notes.txt', 'served-2026-03-05.jsonl', 'served-2026-03-06.jsonl', 'served-2026-03-07.jsonl']);
    expect(lines(join(dir, 'served-2026-03-06.jsonl')).filter((l) => l !== '')).toHaveLength(1);
  });

  it('keeps every file without retentionDays, and refuses a retention that is not a whole number of days', async () => {
    const dir = join(root, 'no-retention');
    await write(dir, [record('old', 'u1', Date.UTC(2020, 0, 1))]);
    await write(dir, [record('new', 'u1')]);
    expect(readdirSync(dir)).toHaveLength(2);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new FeatureLog({ dir, retentionDays: bad })).toThrow(/whole number of days, at least 1/);
    }
  });

  it('counts whole UTC days past the end of the file\'s day', () => {
    const names = ['served-2026-03-01.jsonl', 'served-2026-03-02.jsonl', 'served-2026-13-45.jsonl', 'served-2026-03-01.jsonl.erase-1', 'other.jsonl'];
    // The 1st's last record is 7 days old at the start of the 9th, not a millisecond before.
    expect(expiredLogFiles(names, 7, Date.parse('2026-03-09T00:00:00Z') - 1)).toEqual([]);
    expect(expiredLogFiles(names, 7, Date.parse('2026-03-09T00:00:00Z'))).toEqual(['served-2026-03-01.jsonl']);
    expect(expiredLogFiles(names, 7, Date.parse('2026-03-10T00:00:00Z'))).toEqual(['served-2026-03-01.jsonl', 'served-2026-03-02.jsonl']);
  });
});
