import { describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import type { UserRecord } from '../../training/data/import/index.ts';
import { errors, readAll, records, tempFolder } from './helpers.ts';

const tmp = tempFolder('jsonl');

describe('JSON Lines', () => {
  it('reports a bad JSON line with its number and keeps the others', async () => {
    const path = tmp.file('events.jsonl', [
      '{"id":"e1","type":"view","userId":"u1","itemId":"i1","timestamp":1}',
      '{"id":"e2","type":"view",',
      '[1,2]',
      '',
      '{"id":"e3","type":"click","userId":"u1","itemId":"i2","timestamp":3,"position":2,"requestId":"r","context":{"page":"home","n":1}}',
      '{"id":"e4","type":"click","userId":"u1","timestamp":4}',
      '{"id":"e5","type":"click","userId":"u1","itemId":"i2","timestamp":5,"position":-1}',
    ].join('\n'));
    const rows = await readAll(path);
    expect(records<Event>(rows).map((e) => e.id)).toEqual(['e1', 'e3']);
    expect(records<Event>(rows)[1]).toEqual({
      id: 'e3', type: 'click', userId: 'u1', itemId: 'i2', timestamp: 3, position: 2, requestId: 'r', context: { page: 'home', n: 1 },
    });
    const errs = errors(rows);
    expect(errs).toHaveLength(4);
    expect(errs[0]).toMatch(/^line 2: not valid JSON \(/);
    expect(errs[1]).toBe('line 3: is an array, not a JSON object');
    expect(errs[2]).toBe("line 6: event has no 'item': column 'item' or 'itemId' or 'item_id' is empty or missing; map one with item=<column> or item=const:<value>");
    expect(errs[3]).toBe("line 7: column 'position' is '-1', not a slot number (0, 1, 2...)");
  });

  it('reports a line over the length limit and reads on', async () => {
    const path = tmp.file('big.jsonl', `{"pad":"${'x'.repeat((1 << 20) + 100_000)}"}\n{"id":"e1","type":"view","userId":"u","itemId":"i","timestamp":1}\n`);
    const rows = await readAll(path);
    expect(errors(rows)).toEqual([`line 1: longer than ${1 << 20} characters; is a line break missing?`]);
    expect(records<Event>(rows).map((e) => e.id)).toEqual(['e1']);
  });

  it('maps other keys and reads users', async () => {
    const events = tmp.file('plays.jsonl', '{"who":"u1","what":"t9","at":"2025-03-01T00:00:00Z"}\n');
    const [row] = await readAll(events, { mapping: 'user=who,item=what,timestamp=at,type=const:play' });
    expect(row).toEqual({
      line: 1,
      record: { id: 'import:play:u1:t9:1740787200000', type: 'play', userId: 'u1', itemId: 't9', timestamp: 1740787200000 },
    });
    const users = tmp.file('users.jsonl', '{"id":"u1","attributes":{"country":"DE","age":31}}\n{"attributes":{}}\n');
    const rows = await readAll(users);
    expect(records<UserRecord>(rows)).toEqual([{ id: 'u1', attributes: { country: 'DE', age: 31 } }]);
    expect(errors(rows)).toEqual(["line 2: user has no 'id': column 'id' or 'userId' or 'user_id' is empty or missing; map one with id=<column> or id=const:<value>"]);
  });
});
