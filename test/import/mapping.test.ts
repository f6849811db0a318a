import { describe, expect, it } from 'vitest';
import { detectFormat, detectKind, ImportError, parseMapping } from '../../training/data/import/index.ts';
import { readAll, tempFolder } from './helpers.ts';

const tmp = tempFolder('mapping');

describe('parseMapping', () => {
  it('parses columns, constants and aliases', () => {
    expect(parseMapping('user=userId, item=movie,value=rating,timestamp=ts,type=const:rating')).toEqual({
      user: { column: 'userId' },
      item: { column: 'movie' },
      value: { column: 'rating' },
      timestamp: { column: 'ts' },
      type: { constant: 'rating' },
    });
    expect(parseMapping('itemId=sku,value=const:1')).toEqual({ item: { column: 'sku' }, value: { constant: '1' } });
  });

  it.each([
    ['user=a,,item=b', "mapping 'user=a,,item=b' has an empty entry; write target=column pairs separated by single commas"],
    ['user', "mapping entry 'user' has no '='; write target=column, e.g. user=userId"],
    ['colour=c', "mapping entry 'colour=c': unknown field 'colour'; the fields are id, type, user, item, value, timestamp, requestId, position, context, categories, tags, text, publishedAt"],
    ['user=a,userId=b', "mapping sets 'user' twice; keep one entry for it"],
    ['item=', "mapping entry 'item=' names no source; write item=<column> or item=const:<value>"],
    ['type=const:', "mapping entry 'type=const:': const: needs a value, e.g. type=const:view"],
    ['value=const:high', "mapping entry 'value=const:high': 'high' is not a number"],
  ])('rejects %s', (spec, message) => {
    expect(() => parseMapping(spec)).toThrow(ImportError);
    expect(() => parseMapping(spec)).toThrow(message);
  });

  it('rejects fields the record kind does not have, and mappings on fixed formats', async () => {
    const users = tmp.file('users.csv', 'id,country\nu1,DE\n');
    await expect(readAll(users, { mapping: 'timestamp=ts' })).rejects.toThrow("mapping sets 'timestamp', which users do not have; user fields are id");
    const items = tmp.file('u.item', '1|A (1990)|01-Jan-1990||x|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1\n');
    await expect(readAll(items, { mapping: 'text=title' })).rejects.toThrow('a column mapping applies to csv, tsv, jsonl and MovieLens ratings, not to ml-100k-items');
  });
});

describe('format detection', () => {
  it.each([
    ['data/ml-100k/u.data', 'ml-100k-ratings'], ['u1.base', 'ml-100k-ratings'], ['ua.test', 'ml-100k-ratings'],
    ['u.item', 'ml-100k-items'], ['u.user', 'ml-100k-users'],
    ['ratings.dat', 'ml-1m-ratings'], ['movies.dat', 'ml-1m-movies'], ['users.dat', 'ml-1m-users'],
    ['ratings.csv', 'ml-25m-ratings'], ['movies.csv', 'ml-25m-movies'],
    ['events.jsonl', 'jsonl'], ['x.ndjson', 'jsonl'], ['events.csv', 'csv'], ['clicks.tsv', 'tsv'],
  ])('%s is %s', (path, format) => expect(detectFormat(path)).toBe(format));

  it('asks for a format when the name does not say', () => {
    expect(() => detectFormat('dump.bin')).toThrow(/cannot tell the format of 'dump.bin' from its name; pass one of: csv, tsv, jsonl/);
  });

  it('guesses what a generic file holds from its name', () => {
    expect([detectKind('items.jsonl'), detectKind('users.csv'), detectKind('events.csv'), detectKind('clicks.tsv')]).toEqual(['item', 'user', 'event', 'event']);
  });
});
