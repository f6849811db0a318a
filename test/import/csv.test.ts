import { describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { MAX_RECORD_CHARS, parseDelimited } from '../../training/data/import/index.ts';
import type { CsvRow, ItemRecord } from '../../training/data/import/index.ts';
import { chunked, errors, readAll, records, tempFolder } from './helpers.ts';

const tmp = tempFolder('csv');

async function parse(text: string, size = 1 << 16, delimiter = ','): Promise<CsvRow[]> {
  const out: CsvRow[] = [];
  for await (const row of parseDelimited(chunked(text, size), delimiter)) out.push(row);
  return out;
}

describe('parseDelimited (RFC 4180)', () => {
  const tricky = 'a,b,c\r\n"x, y","he said ""hi""","two\nlines"\r\n3,,"" \n';

  it('reads quoted fields, doubled quotes, embedded delimiters and line breaks', async () => {
    const rows = await parse('a,b,c\r\n"x, y","he said ""hi""","two\nlines"\r\n3,,""\n');
    expect(rows).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['x, y', 'he said "hi"', 'two\nlines'] },
      { line: 4, fields: ['3', '', ''] },
    ]);
  });

  it('gives the same records whatever the chunk size', async () => {
    const whole = await parse(tricky);
    for (const size of [1, 2, 3, 5, 7]) expect(await parse(tricky, size)).toEqual(whole);
  });

  it('reports text after a closing quote and an unclosed quote, with line numbers', async () => {
    const rows = await parse('a,b\n"x"y,1\nok,2\n"open,3\n');
    expect(rows[0]).toEqual({ line: 1, fields: ['a', 'b'] });
    expect(rows[1]).toMatchObject({ line: 2, error: expect.stringMatching(/^line 2: text after a closing quote/) });
    expect(rows[2]).toEqual({ line: 3, fields: ['ok', '2'] });
    expect(rows[3]).toMatchObject({ line: 4, error: expect.stringMatching(/not closed before the end of the file/) });
  });

  it('reports a record over the size limit without holding it, and goes on after it', async () => {
    const huge = `a,b\n"${'x'.repeat(MAX_RECORD_CHARS + 10)}\nstill quoted",1\nok,2\n`;
    expect(await parse(huge, 1 << 16)).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, error: `line 2: record longer than ${MAX_RECORD_CHARS} characters; check for a quote left open` },
      { line: 4, fields: ['ok', '2'] },
    ]);
  });

  it('skips blank lines, reads a last line without a line break, and takes another delimiter', async () => {
    expect(await parse('a;b\n\n1;2', 3, ';')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 3, fields: ['1', '2'] },
    ]);
  });
});

describe('CSV and TSV files', () => {
  it('reads events with a BOM, CRLF, quotes, an embedded newline and an empty trailing line', async () => {
    const path = tmp.file('events.csv', '\uFEFFuser,item,value,timestamp,type,requestId\r\n'
      + 'u1,i1,4.5,1700000000000,rating,\r\n'
      + '"u,2","i""2",,1700000000001,click,"req\nwith newline"\r\n'
      + '\r\n');
    const rows = await readAll(path);
    expect(errors(rows)).toEqual([]);
    expect(records<Event>(rows)).toEqual([
      { id: 'import:rating:u1:i1:1700000000000', type: 'rating', userId: 'u1', itemId: 'i1', value: 4.5, timestamp: 1700000000000 },
      { id: 'import:click:u,2:i"2:1700000000001', type: 'click', userId: 'u,2', itemId: 'i"2', timestamp: 1700000000001, requestId: 'req\nwith newline' },
    ]);
  });

  it('turns a line with a missing column or a bad value into an error and keeps the rest', async () => {
    const path = tmp.file('events.csv', 'user,item,rating,ts\nu1,i1,5,1\nu2,i2,3\nu3,i3,x,3\nu4,i4,4,4\n');
    const rows = await readAll(path, { mapping: 'value=rating,timestamp=ts,type=const:rating', timestampUnit: 's' });
    expect(errors(rows)).toEqual([
      "line 3: has 3 columns, the header has 4; missing 'ts'",
      "line 4: column 'rating' is 'x', not a number",
    ]);
    expect(records<Event>(rows).map((e) => [e.userId, e.value, e.timestamp])).toEqual([['u1', 5, 1000], ['u4', 4, 4000]]);
  });

  it('stops with a clear error when the header lacks a needed column', async () => {
    const path = tmp.file('clicks.csv', 'user,item,when\nu1,i1,1\n');
    await expect(readAll(path)).rejects.toThrow(/no column for 'type', 'timestamp'; map one with type=<column>/);
    await expect(readAll(path, { mapping: 'timestamp=ts' })).rejects.toThrow("column 'ts' (for timestamp) is not in the header; the columns are user, item, when");
  });

  it('reads ISO timestamps and TSV with an explicit format', async () => {
    const path = tmp.file('log.txt', 'user\titem\ttimestamp\ttype\nu1\ti1\t2025-01-02T03:04:05Z\tview\nu2\ti2\tyesterday\tview\n');
    const rows = await readAll(path, { format: 'tsv', timestampUnit: 'iso' });
    expect(records<Event>(rows)[0]).toMatchObject({ userId: 'u1', timestamp: Date.UTC(2025, 0, 2, 3, 4, 5) });
    expect(errors(rows)).toEqual(["line 3: column 'timestamp' is 'yesterday', not an ISO 8601 date (e.g. 2025-01-31T12:00:00Z)"]);
  });

  it('reads items from a TSV: lists split on |, unmapped columns become attributes', async () => {
    const path = tmp.file('items.tsv', 'id\ttitle\tgenres\tprice\tbrand\n7\tA "quoted" title\tDrama|War\t9.5\tacme\n');
    const rows = await readAll(path, { mapping: 'categories=genres' });
    expect(records<ItemRecord>(rows)).toEqual([
      { id: '7', categories: ['Drama', 'War'], tags: [], text: 'A "quoted" title', attributes: { price: 9.5, brand: 'acme' } },
    ]);
  });
});
