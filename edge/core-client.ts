// The edge's two calls to the regional core: the user's slate (binary, GET /v1/candidates) on a
// miss or to revalidate, and the popular list (GET /v1/popular) that the edge keeps per location
// for when the core is down. Both under a deadline: a slow core is treated like a down one, so the
// user gets a cached answer in time instead of waiting on it. When the core requires API keys, the
// edge presents the secret CORE_API_KEY (a key with the core's `read` scope is enough here;
// forwarding events, edge/session.ts, needs `write`).
import { decodeSlate, SLATE_CONTENT_TYPE } from '../core/domain/slate.ts';
import type { Slate } from '../core/domain/slate.ts';
import { popularFromJson } from './slate-cache.ts';
import type { PopularList } from './slate-cache.ts';

/** Candidates the edge asks for: enough for any n ≤ 500 after re-ranking. */
export const SLATE_SIZE = 500;
/** Popular items kept for the fallback: as many as the largest n. */
export const POPULAR_SIZE = 500;
export const DEFAULT_CORE_TIMEOUT_MS = 300;

/** The core did not give a usable answer: down, slow, an error status, or a body that does not decode. */
export class CoreUnavailable extends Error {
  override readonly name = 'CoreUnavailable';
}

/** CORE_TIMEOUT_MS as a positive number of milliseconds, else the default. */
export function coreTimeoutMs(value: string | undefined): number {
  const ms = Number(value);
  return Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_CORE_TIMEOUT_MS;
}

/** Headers of a call to the core: `extra`, plus the edge's key for the core when it has one. */
export function coreHeaders(apiKey: string | undefined, extra: Record<string, string>): Record<string, string> {
  return apiKey === undefined || apiKey === '' ? extra : { ...extra, authorization: `Bearer ${apiKey}` };
}

async function getFromCore(coreUrl: string, path: string, accept: string, timeoutMs: number, apiKey: string | undefined): Promise<Response> {
  const url = new URL(path, coreUrl);
  let res: Response;
  try {
    res = await fetch(url, { headers: coreHeaders(apiKey, { accept }), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new CoreUnavailable(timedOut ? `no answer from ${url.origin} within ${timeoutMs} ms` : `${url.origin} unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    let code = '';
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      code = `${String(body.error?.code ?? '')}: ${String(body.error?.message ?? '')}`;
    } catch {
      code = text.slice(0, 200);
    }
    throw new CoreUnavailable(`${url.origin} answered ${res.status} to ${url.pathname}${code ? ` (${code})` : ''}`);
  }
  return res;
}

export interface FetchedSlate {
  slate: Slate;
  /** The bytes as the core sent them: what goes into the cache. */
  bytes: Uint8Array;
}

export async function fetchSlate(coreUrl: string, userId: string, timeoutMs: number, apiKey?: string): Promise<FetchedSlate> {
  const res = await getFromCore(coreUrl, `/v1/candidates/${encodeURIComponent(userId)}?n=${SLATE_SIZE}`, SLATE_CONTENT_TYPE, timeoutMs, apiKey);
  try {
    const bytes = new Uint8Array(await res.arrayBuffer());
    return { slate: decodeSlate(bytes), bytes };
  } catch (err) {
    throw new CoreUnavailable(`the core's slate for '${userId}' does not decode: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function fetchPopular(coreUrl: string, timeoutMs: number, apiKey?: string): Promise<PopularList> {
  const res = await getFromCore(coreUrl, `/v1/popular?n=${POPULAR_SIZE}`, 'application/json', timeoutMs, apiKey);
  try {
    return popularFromJson(await res.json());
  } catch (err) {
    throw new CoreUnavailable(`the core's popular list does not read: ${err instanceof Error ? err.message : String(err)}`);
  }
}
