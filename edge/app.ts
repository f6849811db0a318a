// The edge Worker's Hono app: health and readiness, and GET /v1/recommendations/{userId}, which
// validates its input here (the same limits and error shape as the core's API) and leaves the
// request path itself (arm, slate cache, re-rank, fallback) to recommend.ts; and POST /v1/events,
// whose validation, session update and forwarding live in events.ts and session.ts. The /v1 routes
// sit behind API keys and per-key rate limits when REQUIRE_API_KEY is on (access.ts).
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ID_CHARACTERS, ID_PATTERN, MAX_ID_LENGTH } from '../core/domain/limits.ts';
import { apiKeysRequired, requireApiKey } from './access.ts';
import { ingestEvents, malformedJson } from './events.ts';
import { experimentsSource } from './experiments.ts';
import { edgeKernels } from './kernels.ts';
import { recommend, recommendationsJson } from './recommend.ts';

export type EdgeEnv = { Bindings: Env };

const CORE_PROBE_TIMEOUT_MS = 2000;
/** The most recommendations one request may ask for: the size of the slate the edge caches. */
export const MAX_RECOMMENDATIONS = 500;
const DEFAULT_RECOMMENDATIONS = 20;
/** Where the popular fallback is kept when the runtime does not say which colo this is (workerd locally). */
const LOCAL_REGION = 'local';
const JSON_HEADERS = { 'content-type': 'application/json' };

export const app = new Hono<EdgeEnv>();

/** Alive, and the WASM kernels instantiate and compute in this runtime. */
app.get('/healthz', async (c) => {
  const kernels = await edgeKernels();
  return c.json({ status: 'ok', tier: 'edge', kernels: { wasm: kernelSelfCheck(kernels) }, apiKeys: apiKeysRequired(c.env) ? 'required' : 'off' });
});

/** Ready when the core answers its own health check. */
app.get('/readyz', async (c) => {
  const url = new URL('/healthz', c.env.CORE_URL);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(CORE_PROBE_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`core answered ${res.status}`);
    return c.json({ status: 'ready', core: c.env.CORE_URL });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return c.json({ status: 'unready', core: c.env.CORE_URL, reason }, 503);
  }
});

app.use('/v1/*', requireApiKey());

/** Recommendations for a user, served at the edge; see recommend.ts for where they come from. */
app.get('/v1/recommendations/:userId', async (c) => {
  const userId = c.req.param('userId');
  const idProblem = userId.length > MAX_ID_LENGTH ? `is ${userId.length} characters, over the limit of ${MAX_ID_LENGTH}`
    : ID_PATTERN.test(userId) ? undefined : `'${userId}' has characters other than ${ID_CHARACTERS}`;
  if (idProblem !== undefined) return badRequest(`userId ${idProblem}`, 'userId');
  const nText = c.req.query('n');
  const n = nText === undefined ? DEFAULT_RECOMMENDATIONS : /^\d+$/.test(nText) ? Number(nText) : NaN;
  if (!(n >= 1 && n <= MAX_RECOMMENDATIONS)) {
    return badRequest(`n must be a whole number from 1 to ${MAX_RECOMMENDATIONS}; got ${JSON.stringify(nText)}`, 'n');
  }
  const now = Date.now();
  const experiments = await experimentsSource(c.env, now);
  const body = await recommend(userId, n, {
    // The bindings object as it is (a copy with EXPERIMENTS replaced enumerated every binding).
    env: c.env,
    experiments: experiments.text,
    cache: caches.default,
    waitUntil: (p) => c.executionCtx.waitUntil(p),
    // Read only when the popular list is: workerd builds `cf` from JSON on first access, a cost a hit does not need.
    region: () => regionOf(c.req.raw),
    now,
  });
  if (experiments.warning !== undefined) body.warning = body.warning === undefined ? experiments.warning : `${body.warning}; ${experiments.warning}`;
  return new Response(recommendationsJson(body), { headers: JSON_HEADERS });
});

/** Events: validated here, kept in the user's session object and forwarded to the core; see events.ts. */
app.post('/v1/events', async (c) => {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch (err) {
    const answer = malformedJson(err instanceof Error ? err.message : String(err));
    return c.json(answer.body, answer.status);
  }
  const now = Date.now();
  // The arm of each event's user is the one its recommendations were served under (KV's experiments, else the var's).
  const experiments = await experimentsSource(c.env, now);
  const answer = await ingestEvents(body, { env: c.env, experiments: experiments.text, cache: caches.default, now });
  return c.json(answer.body, answer.status);
});

/** The colo serving the request, or LOCAL_REGION where the runtime does not say (workerd locally). */
function regionOf(request: Request): string {
  const colo = request.cf?.colo;
  return typeof colo === 'string' && colo !== '' ? colo : LOCAL_REGION;
}

/** A 400 in the core's error shape, naming the offending parameter. */
function badRequest(message: string, path: string): Response {
  return Response.json({ error: { code: 'invalid_request', message, details: [{ path, message }] } }, { status: 400 });
}

app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

app.onError((err, c) => {
  if (err instanceof HTTPException) return err.getResponse();
  const requestId = crypto.randomUUID();
  console.error(`[${requestId}]`, err);
  return c.json({ error: { code: 'internal', message: 'internal error', requestId } }, 500);
});

/** Scores a fixed 2-item slate; a wrong answer means the module or its host binding is broken. */
function kernelSelfCheck(kernels: Awaited<ReturnType<typeof edgeKernels>>): 'ok' | 'wrong-result' {
  const base = (kernels.heapBase() + 15) & ~15;
  const dim = 4;
  const floats = new Float32Array(kernels.memory.buffer, base, dim * 4);
  floats.set([1, 2, 3, 4, /* items */ 1, 0, 0, 0, 0, 0, 0, 1]);
  kernels.scoreDot(base, base + dim * 4, 2, dim, base + dim * 12);
  return floats[12] === 1 && floats[13] === 4 ? 'ok' : 'wrong-result';
}
