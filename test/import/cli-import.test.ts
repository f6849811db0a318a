// `kestrel import`: synthetic data into the stores, bad rows rejected with reasons, re-import as
// duplicates, usage errors (exit 2) and a held event log (exit 1).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openLogBus } from '../../core/events/log/index.ts';
import { kestrel, storeCounts } from './cli-helpers.ts';
import { tempFolder } from './helpers.ts';

const tmp = tempFolder('cli-import');
const generated = join(tmp.dir, 'generated');
const SIZE = { users: 30, items: 40, events: 2_000 };

function logBytes(dataDir: string): number {
  const dir = join(dataDir, 'events');
  return readdirSync(dir).filter((f) => f.endsWith('.log')).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

beforeAll(async () => {
  const run = await kestrel('generate', '--users', String(SIZE.users), '--items', String(SIZE.items),
    '--events', String(SIZE.events), '--clusters', '4', '--seed', '11', '--out', generated);
  expect(run.code, run.stderr).toBe(0);
});

describe('kestrel import', () => {
  const data = join(tmp.dir, 'synthetic-data');

  it('imports a generated folder: every item, user and event is in the stores when it returns', async () => {
    const run = await kestrel('import', '--data', data, generated);
    expect(run.code, run.stderr).toBe(0);
    expect(storeCounts(data)).toEqual({ items: SIZE.items, stubs: 0, users: SIZE.users, interactions: SIZE.events });
    expect(run.stdout).toMatch(/^items\.jsonl +jsonl \(items\) +40 +40 +0 +0 /m);
    expect(run.stdout).toMatch(/^events\.jsonl +jsonl \(events\) +2,000 +2,000 +0 +0 /m);
    expect(run.stdout).toMatch(/^total +2,070 +2,070 +0 +0 /m);
    expect(run.stdout).toContain('Interactions stored: 2,000 (2,000 new; created from events: 0 users, 0 stub items)');
  });

  it('a second import of the same files finds only duplicates and adds nothing, not even to the log', async () => {
    const before = logBytes(data);
    const run = await kestrel('import', '--data', data, generated);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^total +2,070 +0 +0 +2,070 /m);
    expect(storeCounts(data)).toEqual({ items: SIZE.items, stubs: 0, users: SIZE.users, interactions: SIZE.events });
    expect(logBytes(data)).toBe(before);
  });

  it('rejects bad CSV rows with their reasons and line numbers, and imports the rest', async () => {
    const future = Date.now() + 7 * 24 * 3_600_000;
    const csv = tmp.file('clicks.csv', [
      'user,item,type,timestamp,value',
      'u1,i1,click,1700000000000,',
      'u1,i2,teleport,1700000001000,', // line 3: not a configured type
      'u2,i1,view,1700000002000,1.5',
      `u2,i3,view,${future},`, // line 5: future
      'u3,i1,click', // line 6: too few columns
      'u3,i1,click,yesterday,', // line 7: not a time
      'u 4,i1,click,1700000003000,', // line 8: a space in the id
      'u5,i1,purchase,1700000004000,19.9',
      'u1,i2,teleport,1700000005000,', // line 10: second bad type
      'u1,i1,click,1700000000000,', // line 11: the same event as line 2
    ].join('\n'));
    const dir = join(tmp.dir, 'csv-data');
    const run = await kestrel('import', '--data', dir, csv);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^clicks\.csv +csv \(events\) +10 +3 +6 +1 /m);
    expect(run.stdout).toContain('Rejected in clicks.csv (6), by reason:');
    expect(run.stdout).toMatch(/ 2 {2}line 3: event\.type "teleport" is not a configured event type; configured: [^\n]+\n +lines 3, 10\n/);
    expect(run.stdout).toMatch(/ 1 {2}line 5: event\.timestamp is [0-9T:.Z-]+, more than 24h in the future\n +lines 5\n/);
    expect(run.stdout).toContain("line 6: has 3 columns, the header has 5; missing 'timestamp', 'value'");
    expect(run.stdout).toMatch(/line 7: column 'timestamp' is 'yesterday', not an ISO 8601 date/);
    expect(run.stdout).toMatch(/line 8: event\.id "import:click:u 4:i1:1700000003000" has characters other than [^\n]+; event\.userId "u 4" has characters other than/);
    expect(storeCounts(dir)).toEqual({ items: 1, stubs: 1, users: 3, interactions: 3 });
  });

  it('--no-create-unknown rejects events whose user or item is not stored', async () => {
    const dir = join(tmp.dir, 'strict-data');
    const users = tmp.file('users.csv', 'id,country\nu1,NL\n');
    const items = tmp.file('items.csv', 'id,title\ni1,One\n');
    const events = tmp.file('strict.csv', 'user,item,type,timestamp\nu1,i1,view,1700000000000\nu2,i1,view,1700000001000\nu1,i9,view,1700000002000\n');
    const run = await kestrel('import', '--data', dir, '--no-create-unknown', users, items, events);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('line 3: event names user "u2", which does not exist; import it first, or leave out --no-create-unknown');
    expect(run.stdout).toContain('line 4: event names item "i9", which does not exist');
    expect(storeCounts(dir)).toEqual({ items: 1, stubs: 0, users: 1, interactions: 1 });
  });

  it('usage errors exit 2 with a message that says what to fix', async () => {
    const cases: [string[], string][] = [
      [[], 'name at least one file or folder to import'],
      [['--kind', 'order', 'x.csv'], "--kind must be one of event, item, user, got 'order'"],
      [['--format', 'xml', 'x.csv'], "--format must be one of csv, tsv, jsonl"],
      [['--timestamp-unit', 'days', 'x.csv'], "--timestamp-unit must be one of s, ms, iso, auto, got 'days'"],
      [['--map', 'user', 'x.csv'], "mapping entry 'user' has no '='"],
      [['--frobnicate', 'x.csv'], "Unknown option '--frobnicate'"],
      [[tmp.dir], 'holds no u.data, ratings.dat, ratings.csv or events.jsonl/csv'],
      [['--kind', 'item', generated], '--format and --kind apply to files, not to a folder'],
      [[tmp.file('data.bin', 'x')], "cannot tell the format of 'data.bin'"],
      [['--map', 'user=customer', tmp.file('nocol.csv', 'user,item,type,timestamp\n')], "column 'customer' (for user) is not in the header"],
    ];
    for (const [args, message] of cases) {
      const run = await kestrel('import', '--data', join(tmp.dir, 'unused'), ...args);
      expect(run.code, `${args.join(' ')}: ${run.stdout}`).toBe(2);
      expect(run.stderr).toContain(message);
    }
    const exportRun = await kestrel('export', '--data', data);
    expect(exportRun.code).toBe(2);
    expect(exportRun.stderr).toContain('--out is required');
  });

  it('a missing file exits 1 before anything is written', async () => {
    const run = await kestrel('import', '--data', join(tmp.dir, 'missing-data'), join(tmp.dir, 'nope.csv'));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot read ${join(tmp.dir, 'nope.csv')}: no such file or folder`);
  });

  it('exits 1 with a clear message while another writer holds the event log', async () => {
    const bus = await openLogBus(join(data, 'events'));
    try {
      const run = await kestrel('import', '--data', data, generated);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`the event log in ${join(data, 'events')} is in use by process ${process.pid} (kestrel serve?); stop it or import through the API`);
    } finally {
      await bus.close();
    }
  });
});
