import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dataPaths } from '../../core/paths.ts';
import { loadEventTypes } from '../../core/runtime.ts';
import { DEFAULT_ATTRIBUTION_WINDOW_MS, servedLogDays, writeServedJoin } from '../../training/data/served-join.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';

const help = `Usage: kestrel served-join [--data DIR] [--out FILE] [--since YYYY-MM-DD] [--until YYYY-MM-DD]
                           [--window 24h] [--event-types FILE]

Joins the served-features log (<data>/served/served-YYYY-MM-DD.jsonl, one record per
recommendation request) with the events that came back with a requestId, into JSON Lines for
training: one row per served (request, item) with the dense features as they were served and
labels { clicked, engaged, negative, weight }, the attributed events per type, firstEventAt and
lastEventAt. An item served without ranker features (an anonymous request) has features {}.

An event labels a row only if its requestId, userId and itemId are the row's and its timestamp
is within the window after the request was served (1 min of clock skew before it allowed); its
position may differ (the edge re-ranks) and is counted. Each event id counts once. Events whose
requestId matches no served record read are reported as unattributed. Users erased since are
left out. Reads a snapshot of the catalog, so it can run next to \`kestrel serve\`. The output
holds user ids and erasure does not reach it: write it again after \`DELETE /v1/users/{id}\`.

Options:
      --data <dir>            Data folder (default $KESTREL_DATA_DIR or .kestrel).
      --out <file>            Where to write the rows (default <data>/served-join.jsonl); replaced
                              when complete.
      --since <day>           First UTC day of served logs to read (inclusive).
      --until <day>           Last UTC day of served logs to read (inclusive).
      --window <duration>     Attribution window after the request: a number with ms, s, m, h or d
                              (default 24h).
      --event-types <file>    Event types and weights (see \`kestrel serve --help\`); default the built-in set.
  -h, --help                  Show this help.`;

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** `24h`, `30m`, `90s`, `2d`, `500ms` → milliseconds. */
export function parseWindow(value: string | undefined, flag = '--window'): number {
  if (value === undefined) return DEFAULT_ATTRIBUTION_WINDOW_MS;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new UsageError(`${flag} must be a duration such as 24h, 30m or 7d, got '${value}'`);
  return Number(match[1]) * (UNITS[match[2] ?? 'ms'] ?? 1);
}

function parseDay(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const date = new Date(`${value}T00:00:00Z`);
  if (!DAY.test(value) || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value) {
    throw new UsageError(`${flag} must be a UTC day YYYY-MM-DD, got '${value}'`);
  }
  return value;
}

const percent = (part: number, whole: number) => (whole === 0 ? '0.00' : ((100 * part) / whole).toFixed(2));

export const servedJoinCommand: Command = {
  name: 'served-join',
  summary: 'join the served-features log with the events that came back: labelled rows for training',
  help,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, {
      data: { type: 'string' },
      out: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      window: { type: 'string' },
      'event-types': { type: 'string' },
    }, false);
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0] ?? ''}'`);
    const since = parseDay(values.since, '--since');
    const until = parseDay(values.until, '--until');
    if (since !== undefined && until !== undefined && since > until) throw new UsageError(`--since ${since} is after --until ${until}`);
    const windowMs = parseWindow(values.window);
    const paths = dataPaths(values.data);
    if (!existsSync(paths.catalog)) {
      throw new UsageError(`no catalog at ${paths.catalog}: point --data at the data folder \`kestrel serve\` uses`);
    }
    const eventTypes = loadEventTypes(values['event-types'], undefined);
    const out = resolve(values.out ?? join(paths.dir, 'served-join.jsonl'));
    const days = await servedLogDays(paths.dir);
    if (!days.some((d) => (since === undefined || d >= since) && (until === undefined || d <= until))) {
      const range = since === undefined && until === undefined ? '' : ` from ${since ?? 'the first day'} to ${until ?? 'the last day'}`;
      const present = days.length === 0 ? 'none' : `${days[0] ?? ''} to ${days.at(-1) ?? ''}`;
      throw new UsageError(`no served-features log in ${join(paths.dir, 'served')}${range} (days present: ${present}); serve recommendations with \`kestrel serve --models DIR\` first, or change --since/--until`);
    }
    const summary = await writeServedJoin({ dataDir: paths.dir, since, until, windowMs, eventTypes }, out);
    const n = (x: number) => x.toLocaleString('en-US');
    console.log(`read ${summary.files.length} served log file(s): ${n(summary.requests)} requests${summary.erased > 0 ? ` (${n(summary.erased)} of erased users left out)` : ''}${summary.badLines > 0 ? `, ${n(summary.badLines)} unreadable lines skipped` : ''}`);
    console.log(`wrote ${n(summary.rows)} rows to ${out}${summary.unranked > 0 ? ` (${n(summary.unranked)} served without ranker features: features {})` : ''}`);
    console.log(`clicked ${n(summary.clicked)} (CTR ${percent(summary.clicked, summary.rows)}%), engaged ${n(summary.engaged)} (${percent(summary.engaged, summary.rows)}%)`);
    console.log(`events: ${n(summary.attributedEvents)} attributed, ${n(summary.unattributed)} unattributed (no served record), ` +
      `${n(summary.outsideWindow)} outside the ${values.window ?? '24h'} window, ${n(summary.itemNotServed)} for an item not served, ` +
      `${n(summary.otherUser)} of another user, ${n(summary.duplicate)} duplicate; ${n(summary.positionMismatch)} attributed at another position`);
    return 0;
  },
};
