// Small files the test writes itself in each MovieLens format (the real data may not be copied).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { ML100K_GENRES, openImport } from '../../training/data/import/index.ts';
import type { ItemRecord, UserRecord } from '../../training/data/import/index.ts';
import { errors, readAll, records, tempFolder } from './helpers.ts';

const tmp = tempFolder('movielens');
const flags = (...on: number[]) => ML100K_GENRES.map((_, g) => (on.includes(g) ? '1' : '0')).join('|');

describe('ml-100k', () => {
  it('reads u.data as rating events with deterministic ids and ms timestamps', async () => {
    const path = tmp.file('u.data', '196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n22\t377\tx\t878887116\n\n');
    const source = await openImport(path);
    expect([source.format, source.kind]).toEqual(['ml-100k-ratings', 'event']);
    const rows = await readAll(path);
    expect(records<Event>(rows)).toEqual([
      { id: 'ml:196:242:881250949000', type: 'rating', userId: '196', itemId: '242', value: 3, timestamp: 881250949000 },
      { id: 'ml:186:302:891717742000', type: 'rating', userId: '186', itemId: '302', value: 3.5, timestamp: 891717742000 },
    ]);
    expect(errors(rows)).toEqual(["line 3: column 'rating' is 'x', not a number"]);
    // Re-importing yields the same ids, so the idempotent event store keeps one copy.
    expect(records<Event>(await readAll(path)).map((e) => e.id)).toEqual(records<Event>(rows).map((e) => e.id));
  });

  it('lets a mapping override the event type of ratings', async () => {
    const path = tmp.file('u1.base', '1\t2\t5\t10\n');
    const [event] = records<Event>(await readAll(path, { mapping: 'type=const:like' }));
    expect(event).toMatchObject({ type: 'like', value: 5, timestamp: 10_000 });
  });

  it('reads u.item in latin-1 with genres from the documented order', async () => {
    const path = tmp.file('u.item', Buffer.from([
      `1|Café Society (1995)|01-Jan-1995||http://example.org/cafe|${flags(3, 4, 5)}`,
      `2|No Date (1996)||||${flags(0)}`,
      `3|Bad Date (1997)|32-Foo-1997|||${flags(8)}`,
      `4|Short|01-Jan-1995`,
    ].join('\n'), 'latin1'));
    const rows = await readAll(path);
    expect(records<ItemRecord>(rows)).toEqual([
      {
        id: '1', categories: ['Animation', "Children's", 'Comedy'], tags: [], text: 'Café Society (1995)',
        attributes: { year: 1995, imdbUrl: 'http://example.org/cafe' }, publishedAt: Date.UTC(1995, 0, 1),
      },
      { id: '2', categories: ['unknown'], tags: [], text: 'No Date (1996)', attributes: { year: 1996 } },
    ]);
    expect(errors(rows)).toEqual([
      "line 3: release date is '32-Foo-1997', not a date like 01-Jan-1995",
      'line 4: has 3 fields, u.item with 19 genres needs 24',
    ]);
  });

  it('names genres from u.genre when it sits next to u.item', async () => {
    const dir = join(tmp.dir, 'custom');
    mkdirSync(dir);
    tmp.file('custom/u.genre', 'Noir|1\nComedy|0\nSpace|2\n\n');
    const path = tmp.file('custom/u.item', '9|T (2000)|02-Mar-2000|||1|0|1\n');
    const [item] = records<ItemRecord>(await readAll(path));
    expect(item?.categories).toEqual(['Comedy', 'Space']);
  });

  it('reads u.user', async () => {
    const path = tmp.file('u.user', '1|24|M|technician|85711\n2|old|F|other|94043\n');
    const rows = await readAll(path);
    expect(records<UserRecord>(rows)).toEqual([{ id: '1', attributes: { age: 24, gender: 'M', occupation: 'technician', zip: '85711' } }]);
    expect(errors(rows)).toEqual(["line 2: age is 'old', not a whole number"]);
  });
});

describe('ml-1m', () => {
  it('reads ratings.dat, latin-1 movies.dat and users.dat', async () => {
    const ratings = tmp.file('ratings.dat', '1::1193::5::978300760\n1::661::3::978302109\n');
    expect(records<Event>(await readAll(ratings))).toEqual([
      { id: 'ml:1:1193:978300760000', type: 'rating', userId: '1', itemId: '1193', value: 5, timestamp: 978300760000 },
      { id: 'ml:1:661:978302109000', type: 'rating', userId: '1', itemId: '661', value: 3, timestamp: 978302109000 },
    ]);
    const movies = tmp.file('movies.dat', Buffer.from('1::Toy Story (1995)::Animation|Children\'s|Comedy\n2::Crème Brûlée, La (1999)::Drama\n', 'latin1'));
    expect(records<ItemRecord>(await readAll(movies))).toEqual([
      { id: '1', categories: ['Animation', "Children's", 'Comedy'], tags: [], text: 'Toy Story (1995)', attributes: { year: 1995 }, publishedAt: Date.UTC(1995, 0, 1) },
      { id: '2', categories: ['Drama'], tags: [], text: 'Crème Brûlée, La (1999)', attributes: { year: 1999 }, publishedAt: Date.UTC(1999, 0, 1) },
    ]);
    const users = tmp.file('users.dat', '1::F::1::10::48067\n2::M::56::16::70072\n3::M::99::1::1\n');
    const rows = await readAll(users);
    expect(records<UserRecord>(rows)).toEqual([
      { id: '1', attributes: { gender: 'F', ageGroup: 'Under 18', occupation: 'K-12 student', zip: '48067' } },
      { id: '2', attributes: { gender: 'M', ageGroup: '56+', occupation: 'self-employed', zip: '70072' } },
    ]);
    expect(errors(rows)).toEqual(["line 3: age code is '99', not one of 1, 18, 25, 35, 45, 50, 56"]);
  });
});

describe('ml-25m', () => {
  it('reads ratings.csv and movies.csv with quoted titles', async () => {
    const ratings = tmp.file('ratings.csv', 'userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n');
    expect(records<Event>(await readAll(ratings))).toEqual([
      { id: 'ml:1:296:1147880044000', type: 'rating', userId: '1', itemId: '296', value: 5, timestamp: 1147880044000 },
      { id: 'ml:1:306:1147868817000', type: 'rating', userId: '1', itemId: '306', value: 3.5, timestamp: 1147868817000 },
    ]);
    const movies = tmp.file('movies.csv', 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n11,"American President, The (1995)",Comedy|Drama|Romance\n9,Untitled,(no genres listed)\n');
    expect(records<ItemRecord>(await readAll(movies))).toEqual([
      { id: '1', categories: ['Adventure', 'Animation'], tags: [], text: 'Toy Story (1995)', attributes: { year: 1995 }, publishedAt: Date.UTC(1995, 0, 1) },
      { id: '11', categories: ['Comedy', 'Drama', 'Romance'], tags: [], text: 'American President, The (1995)', attributes: { year: 1995 }, publishedAt: Date.UTC(1995, 0, 1) },
      { id: '9', categories: [], tags: [], text: 'Untitled', attributes: {} },
    ]);
  });

  it('says which column is missing when ratings.csv is not in the ml-25m layout', async () => {
    mkdirSync(join(tmp.dir, 'other'));
    const path = tmp.file('other/ratings.csv', 'user,movie,stars,ts\n1,2,3,4\n');
    await expect(readAll(path)).rejects.toThrow("column 'userId' (for user) is not in the header; the columns are user, movie, stars, ts");
  });
});
