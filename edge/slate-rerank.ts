// Step 3 of the edge request path: the cached slate re-ranked per request by the WASM kernel
// (wasm/assembly/rerank.ts through WasmReranker; core/domain/rerank.ts is its TypeScript reference).
// The session's interest vector and shown counts come from the SessionState Durable Object
// (recommend.ts fills them into the input); every item still has the uniform Beta(1, 1) prior
// until the bandit state (a later piece of issue 6) supplies posteriors. The seed is a hash of the
// request id, so a request's exploration can be replayed from its id.
import { hashString } from '../core/domain/hash.ts';
import type { RerankInput, RerankOptions } from '../core/domain/rerank.ts';
import type { Slate } from '../core/domain/slate.ts';
import { WasmReranker } from '../wasm/index.ts';
import { edgeKernels } from './kernels.ts';

/** Weight of the session affinity (no effect while the interest vector is zero). */
export const AFFINITY_WEIGHT = 0.5;
/** Score taken off per earlier impression in the session (no effect while shown counts are zero). */
export const SHOWN_PENALTY = 0.1;
/** Beta prior of an item's click-through without posteriors: uniform. */
const PRIOR_ALPHA = 1;
const PRIOR_BETA = 1;

export interface RankedItem {
  id: string;
  score: number;
  categories: string[];
  /** Placed by exploration (Thompson sampling) rather than by relevance and MMR. */
  explored: boolean;
}

export interface RerankSettings {
  k: number;
  mmrLambda: number;
  exploreShare: number;
  requestId: string;
}

/** The kernel input for a slate, with the session signals at their neutral values. */
export function slateRerankInput(slate: Slate): RerankInput {
  const n = slate.candidates.length;
  const { dim } = slate;
  const coreScore = new Float64Array(n);
  const embeddings = new Float32Array(n * dim);
  slate.candidates.forEach((c, i) => {
    coreScore[i] = c.score;
    embeddings.set(c.embedding, i * dim);
  });
  return {
    dim,
    coreScore,
    embeddings,
    shown: new Float64Array(n),
    alpha: new Float32Array(n).fill(PRIOR_ALPHA),
    beta: new Float32Array(n).fill(PRIOR_BETA),
    interest: new Float32Array(dim),
  };
}

export function slateRerankOptions(settings: RerankSettings): RerankOptions {
  return {
    affinityWeight: AFFINITY_WEIGHT,
    shownPenalty: SHOWN_PENALTY,
    lambda: settings.mmrLambda,
    k: settings.k,
    exploreShare: settings.exploreShare,
    seed: hashString(settings.requestId),
  };
}

let reranker: Promise<WasmReranker> | undefined;

/** One reranker per isolate, on the isolate's kernel instance (requests run one at a time through it). */
function edgeReranker(): Promise<WasmReranker> {
  reranker ??= edgeKernels().then((kernels) => new WasmReranker(kernels));
  return reranker;
}

/**
 * The slate's top `k` after re-ranking, best first. Score is the core's score of the item.
 * `input` defaults to the slate with neutral session signals.
 */
export async function rerankSlate(slate: Slate, settings: RerankSettings, input: RerankInput = slateRerankInput(slate)): Promise<RankedItem[]> {
  if (slate.candidates.length === 0 || settings.k === 0) return [];
  const { order, explored } = (await edgeReranker()).rerank(input, slateRerankOptions(settings));
  return Array.from(order, (index, position): RankedItem => {
    const c = slate.candidates[index];
    if (c === undefined) throw new RangeError(`re-rank returned index ${index} of a ${slate.candidates.length}-candidate slate`);
    return { id: c.item, score: c.score, categories: c.categories, explored: explored[position] === 1 };
  });
}
