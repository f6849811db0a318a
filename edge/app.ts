import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { edgeKernels } from './kernels.ts';

export type EdgeEnv = { Bindings: Env };

const CORE_PROBE_TIMEOUT_MS = 2000;

export const app = new Hono<EdgeEnv>();

/** Alive, and the WASM kernels instantiate and compute in this runtime. */
app.get('/healthz', async (c) => {
  const kernels = await edgeKernels();
  return c.json({ status: 'ok', tier: 'edge', kernels: { wasm: kernelSelfCheck(kernels) } });
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
