// The MovieLens formats (GroupLens; files documented in each release's README): ml-100k
// `u.data`/`u.item`/`u.user`/`u.genre`, ml-1m `ratings.dat`/`movies.dat`/`users.dat` (`::`),
// ml-25m (and ml-latest) `ratings.csv`/`movies.csv`. Ratings map to `rating` events whose value is
// the rating; items carry genres as categories and the title as text.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LineError } from './records.ts';
import type { ItemRecord, UserRecord } from './records.ts';

/** ml-100k genre columns in the order the README documents (used when no u.genre is found). */
export const ML100K_GENRES = [
  'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama',
  'Fantasy', 'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western',
] as const;

/** ml-1m users.dat codes (its README). */
const ML1M_AGES: Record<string, string> = {
  '1': 'Under 18', '18': '18-24', '25': '25-34', '35': '35-44', '45': '45-49', '50': '50-55', '56': '56+',
};
const ML1M_OCCUPATIONS = [
  'other', 'academic/educator', 'artist', 'clerical/admin', 'college/grad student', 'customer service',
  'doctor/health care', 'executive/managerial', 'farmer', 'homemaker', 'K-12 student', 'lawyer', 'programmer',
  'retired', 'sales/marketing', 'scientist', 'self-employed', 'technician/engineer', 'tradesman/craftsman',
  'unemployed', 'writer',
];

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};

/** Genre names from `u.genre` (`name|index` lines) next to `u.item`, else the documented 19. */
export async function readGenres(itemPath: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(dirname(itemPath), 'u.genre'), 'latin1');
  } catch {
    return [...ML100K_GENRES];
  }
  const genres: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const bar = line.lastIndexOf('|');
    if (bar <= 0) continue;
    const index = Number(line.slice(bar + 1));
    if (Number.isInteger(index) && index >= 0) genres[index] = line.slice(0, bar);
  }
  // A gap in the indexes means the file is not a genre list; fall back rather than misname columns.
  return genres.length > 0 && Array.from(genres).every((g) => typeof g === 'string') ? genres : [...ML100K_GENRES];
}

function columns(fields: string[], min: number, what: string): void {
  if (fields.length < min) throw new LineError(`has ${fields.length} fields, ${what} needs ${min}`);
}

function id(value: string | undefined, name: string): string {
  const v = (value ?? '').trim();
  if (v === '') throw new LineError(`${name} is empty`);
  return v;
}

/** `01-Jan-1995` → epoch ms (UTC), or undefined when empty; throws when malformed. */
export function parseDayMonthYear(text: string, name: string): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(t);
  const month = m ? MONTHS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || month === undefined) throw new LineError(`${name} is '${t}', not a date like 01-Jan-1995`);
  return Date.UTC(Number(m[3]), month, Number(m[1]));
}

/** The year in a title like `Toy Story (1995)`, as Jan 1st of that year (epoch ms). */
function titleYear(title: string): number | undefined {
  const m = /\((\d{4})\)\s*$/.exec(title);
  return m ? Number(m[1]) : undefined;
}

/** u.item: id|title|release date|video release date|IMDb URL|19 genre flags. */
export function ml100kItem(fields: string[], genres: readonly string[]): ItemRecord {
  columns(fields, 5 + genres.length, `u.item with ${genres.length} genres`);
  const [rawId, title = '', release = '', video = '', url = ''] = fields;
  const categories: string[] = [];
  genres.forEach((genre, g) => {
    const flag = (fields[5 + g] ?? '').trim();
    if (flag === '1') categories.push(genre);
    else if (flag !== '0') throw new LineError(`genre flag '${genre}' is '${flag}', not 0 or 1`);
  });
  const item: ItemRecord = { id: id(rawId, 'movie id'), categories, tags: [], text: title.trim(), attributes: {} };
  const publishedAt = parseDayMonthYear(release, 'release date');
  if (publishedAt !== undefined) item.publishedAt = publishedAt;
  const year = titleYear(title);
  if (year !== undefined) item.attributes.year = year;
  if (url.trim() !== '') item.attributes.imdbUrl = url.trim();
  const videoAt = parseDayMonthYear(video, 'video release date');
  if (videoAt !== undefined) item.attributes.videoReleaseDate = new Date(videoAt).toISOString().slice(0, 10);
  return item;
}

/** u.user: id|age|gender|occupation|zip. */
export function ml100kUser(fields: string[]): UserRecord {
  columns(fields, 5, 'u.user');
  const [rawId, age = '', gender = '', occupation = '', zip = ''] = fields;
  const years = Number(age);
  if (age.trim() === '' || !Number.isInteger(years)) throw new LineError(`age is '${age}', not a whole number`);
  return { id: id(rawId, 'user id'), attributes: { age: years, gender: gender.trim(), occupation: occupation.trim(), zip: zip.trim() } };
}

/** Movies of ml-1m (`id::title::A|B`) and ml-25m (`movieId,title,genres`). */
export function mlMovie(fields: string[]): ItemRecord {
  columns(fields, 3, 'a movies file');
  const [rawId, title = '', genres = ''] = fields;
  const categories = genres.trim() === '(no genres listed)' ? [] : genres.split('|').map((g) => g.trim()).filter(Boolean);
  const item: ItemRecord = { id: id(rawId, 'movie id'), categories, tags: [], text: title.trim(), attributes: {} };
  const year = titleYear(title);
  if (year !== undefined) {
    item.attributes.year = year;
    // ml-1m/ml-25m have no release date; the title's year is the closest thing to a publish time.
    item.publishedAt = Date.UTC(year, 0, 1);
  }
  return item;
}

/** users.dat of ml-1m: id::gender::age code::occupation code::zip. */
export function ml1mUser(fields: string[]): UserRecord {
  columns(fields, 5, 'users.dat');
  const [rawId, gender = '', age = '', occupation = '', zip = ''] = fields;
  const ageGroup = ML1M_AGES[age.trim()];
  if (ageGroup === undefined) throw new LineError(`age code is '${age}', not one of ${Object.keys(ML1M_AGES).join(', ')}`);
  const job = ML1M_OCCUPATIONS[Number(occupation)];
  if (occupation.trim() === '' || job === undefined) throw new LineError(`occupation code is '${occupation}', not 0 to 20`);
  return { id: id(rawId, 'user id'), attributes: { gender: gender.trim(), ageGroup, occupation: job, zip: zip.trim() } };
}
