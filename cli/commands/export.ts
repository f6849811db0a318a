import { createWriteStream, existsSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { openSqliteCatalog } from '../../core/catalog/index.ts';
import { dataPaths } from '../../core/paths.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';

const help = `Usage: kestrel export --out DIR [--data DIR] [--kind item|user|event]...

Writes the stored catalog, users and interactions as JSON Lines, in the shapes \`kestrel import\`
reads back (\`kestrel import DIR\` loads the folder):
  items.jsonl    { id, categories, tags, text, attributes, publishedAt[, hidden] }, by id
  users.jsonl    { id, attributes }, by id
  events.jsonl   one Event per line, in time order (ties in the order they were stored)
Items created on the fly from events (stubs) are left out: importing the events makes them again.
Reads one consistent snapshot, so it can run next to \`kestrel serve\`.

Options:
      --out <dir>      Folder to write to; created if missing, files in it replaced (required).
      --data <dir>     Data folder (default $KESTREL_DATA_DIR or .kestrel).
      --kind <k>       Only this kind: item, user or event; repeat or comma-separate for several.
  -h, --help           Show this help.`;

type Kind = 'item' | 'user' | 'event';
const KINDS: readonly Kind[] = ['item', 'user', 'event'];
const FILES: Record<Kind, string> = { item: 'items.jsonl', user: 'users.jsonl', event: 'events.jsonl' };

interface ItemRow {
  id: string; categories: string; tags: string; text: string; attributes: string; published_at: number; hidden: number;
}
interface UserRow { id: string; attributes: string }
interface EventRow {
  id: string; type: string; user_id: string; item_id: string; value: number | null; timestamp: number;
  request_id: string | null; position: number | null; context: string | null;
}

/** Fixed key order, so the same data always gives the same bytes. */
function itemLine(r: ItemRow): string {
  return `{"id":${JSON.stringify(r.id)},"categories":${r.categories},"tags":${r.tags},"text":${JSON.stringify(r.text)},` +
    `"attributes":${r.attributes},"publishedAt":${r.published_at}${r.hidden === 1 ? ',"hidden":true' : ''}}`;
}

function userLine(r: UserRow): string {
  return `{"id":${JSON.stringify(r.id)},"attributes":${r.attributes}}`;
}

function eventLine(r: EventRow): string {
  let line = `{"id":${JSON.stringify(r.id)},"type":${JSON.stringify(r.type)},"userId":${JSON.stringify(r.user_id)},"itemId":${JSON.stringify(r.item_id)}`;
  if (r.value !== null) line += `,"value":${JSON.stringify(r.value)}`;
  line += `,"timestamp":${r.timestamp}`;
  if (r.request_id !== null) line += `,"requestId":${JSON.stringify(r.request_id)}`;
  if (r.position !== null) line += `,"position":${r.position}`;
  if (r.context !== null) line += `,"context":${r.context}`;
  return `${line}}`;
}

/** Writes the lines to `path` (through a temp file, renamed at the end), honouring backpressure. */
async function writeLines(path: string, lines: Iterable<string>): Promise<number> {
  const tmp = `${path}.tmp`;
  const out: WriteStream = createWriteStream(tmp);
  let n = 0;
  let chunk = '';
  try {
    for (const line of lines) {
      chunk += `${line}\n`;
      n++;
      if (chunk.length >= 1 << 16) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
    out.end(chunk);
    await once(out, 'finish');
  } catch (error) {
    out.destroy();
    throw error;
  }
  await rename(tmp, path);
  return n;
}

function* mapped<T>(rows: IterableIterator<T>, f: (r: T) => string): Generator<string> {
  for (const r of rows) yield f(r);
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the stored items, users and events as JSON Lines (what import reads back)',
  help,
  async run(argv) {
    const { values } = parseCommandLine(argv, {
      data: { type: 'string' },
      out: { type: 'string' },
      kind: { type: 'string', multiple: true },
    }, false);
    if (values.out === undefined) throw new UsageError('--out is required');
    const kinds = new Set<Kind>();
    for (const k of (values.kind ?? KINDS).flatMap((v) => v.split(','))) {
      const kind = k.trim();
      if (!(KINDS as readonly string[]).includes(kind)) throw new UsageError(`--kind must be item, user or event, got '${kind}'`);
      kinds.add(kind as Kind);
    }
    const paths = dataPaths(values.data);
    if (!existsSync(paths.catalog)) throw new Error(`no data in ${paths.dir} (no catalog.db); import or serve something first, or pass --data`);
    const out = resolve(values.out);
    await mkdir(out, { recursive: true });
    const catalog = openSqliteCatalog(paths.catalog);
    const t0 = performance.now();
    const counts: string[] = [];
    try {
      const db = catalog.db;
      // One read transaction: the three files are one snapshot even while a projector writes (WAL).
      db.exec('BEGIN');
      try {
        if (kinds.has('item')) {
          const rows = db.prepare<[], ItemRow>('SELECT id, categories, tags, text, attributes, published_at, hidden FROM items WHERE stub = 0 ORDER BY id').iterate();
          counts.push(`${(await writeLines(join(out, FILES.item), mapped(rows, itemLine))).toLocaleString('en-US')} items`);
        }
        if (kinds.has('user')) {
          const rows = db.prepare<[], UserRow>('SELECT id, attributes FROM users ORDER BY id').iterate();
          counts.push(`${(await writeLines(join(out, FILES.user), mapped(rows, userLine))).toLocaleString('en-US')} users`);
        }
        if (kinds.has('event')) {
          const rows = db.prepare<[], EventRow>('SELECT id, type, user_id, item_id, value, timestamp, request_id, position, context FROM interactions ORDER BY timestamp, seq').iterate();
          counts.push(`${(await writeLines(join(out, FILES.event), mapped(rows, eventLine))).toLocaleString('en-US')} events`);
        }
      } finally {
        db.exec('COMMIT');
      }
    } finally {
      catalog.close();
    }
    console.log(`Exported ${counts.join(', ')} from ${paths.dir} to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    return 0;
  },
};
