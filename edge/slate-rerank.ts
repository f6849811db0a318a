// Step 3 of the edge request path: the cached slate re-ranked per request by the WASM kernel
// (wasm/assembly/rerank.ts through WasmReranker; core/domain/rerank.ts is its TypeScript reference).
// The session's interest vector and shown counts come from the SessionState Durable Object, the
// Beta posteriors of each item's click-through from the BanditShard objects (edge/bandit.ts);
// recommend.ts fills them into the input. Without posteriors every item has the prior at the
// default base rate, Beta(1, 30). The seed is a hash of the request id, so a request's exploration
// can be replayed from its id.
import { hashString } from '../core/domain/hash.ts';
import type { RerankInput, RerankOptions } from '../core/domain/rerank.ts';
import type { Slate } from '../core/domain/slate.ts';
import { WasmReranker } from '../wasm/index.ts';
import { DEFAULT_PRIOR } from './bandit.ts';
import { edgeKernels } from './kernels.ts';

/** Weight of the session affinity (no effect while the interest vector is zero). */
export const AFFINITY_WEIGHT = 0.5;
/** Score taken off per earlier impression in the session (no effect while shown counts are zero). */
export const SHOWN_PENALTY = 0.1;

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

/** Beta posteriors of the slate's candidates, in candidate order. */
export interface CandidatePosteriors {
  alpha: ArrayLike<number>;
  beta: ArrayLike<number>;
}

/**
 * A slate's core scores and embedding matrix, in the kernel's layout: made once per slate object
 * (an isolate serves a cached slate many times over) and only ever read.
 */
const slateArrays = new WeakMap<Slate, { coreScore: Float64Array; embeddings: Float32Array }>();

function arraysOf(slate: Slate): { coreScore: Float64Array; embeddings: Float32Array } {
  let arrays = slateArrays.get(slate);
  if (arrays === undefined) {
    const { dim } = slate;
    const coreScore = new Float64Array(slate.candidates.length);
    const embeddings = new Float32Array(slate.candidates.length * dim);
    slate.candidates.forEach((c, i) => {
      coreScore[i] = c.score;
      embeddings.set(c.embedding, i * dim);
    });
    arrays = { coreScore, embeddings };
    slateArrays.set(slate, arrays);
  }
  return arrays;
}

/**
 * The kernel input for a slate, with the session signals at their neutral values and the given
 * posteriors (the default prior for every candidate when there are none). Its core scores and
 * embeddings are shared by every input of the same slate object: read them, never write them.
 */
export function slateRerankInput(slate: Slate, posteriors?: CandidatePosteriors): RerankInput {
  const n = slate.candidates.length;
  const { dim } = slate;
  const { coreScore, embeddings } = arraysOf(slate);
  if (posteriors !== undefined && (posteriors.alpha.length !== n || posteriors.beta.length !== n)) {
    throw new RangeError(`posteriors for ${posteriors.alpha.length}/${posteriors.beta.length} candidates, the slate has ${n}`);
  }
  return {
    dim,
    coreScore,
    embeddings,
    shown: new Float64Array(n),
    alpha: posteriors === undefined ? new Float32Array(n).fill(DEFAULT_PRIOR.alpha) : Float32Array.from(posteriors.alpha),
    beta: posteriors === undefined ? new Float32Array(n).fill(DEFAULT_PRIOR.beta) : Float32Array.from(posteriors.beta),
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

/** Sets of MMR picks kept per slate object: one per session state and arm settings seen lately. */
const PICKS_PER_SLATE = 8;

/**
 * MMR picks (steps 1–2 of core/domain/rerank.ts) per slate object, keyed by everything else they
 * depend on: λ, how many there are, the interest vector and the shown counts. A hit re-ranks the
 * same cached slate for the same session again and again; only exploration (step 3, a fresh seed
 * per request) changes between those requests, so it alone runs per request. A session that
 * changes (a click moves the interest vector, an impression the shown counts) is a new key.
 */
const slatePicks = new WeakMap<Slate, Map<string, Int32Array>>();

function picksKey(input: RerankInput, options: RerankOptions): string {
  let key = `${options.lambda}|${options.k}|${options.exploreShare}|${options.affinityWeight}|${options.shownPenalty}|${input.interest.join(',')}|`;
  const { shown } = input;
  for (let i = 0; i < shown.length; i++) if (shown[i] !== 0) key += `${i}:${shown[i]},`;
  return key;
}

function picksFor(reranker: WasmReranker, slate: Slate, input: RerankInput, options: RerankOptions): Int32Array {
  let kept = slatePicks.get(slate);
  if (kept === undefined) {
    kept = new Map();
    slatePicks.set(slate, kept);
  }
  const key = picksKey(input, options);
  let picks = kept.get(key);
  if (picks === undefined) {
    picks = reranker.picks(input, options);
    if (kept.size >= PICKS_PER_SLATE) kept.delete(kept.keys().next().value as string);
    kept.set(key, picks);
  }
  return picks;
}

/**
 * The slate's top `k` after re-ranking, best first. Score is the core's score of the item.
 * `input` defaults to the slate with neutral session signals; its core scores and embeddings must
 * be the slate's own (slateRerankInput), since the MMR picks are kept per slate object.
 */
export async function rerankSlate(slate: Slate, settings: RerankSettings, input: RerankInput = slateRerankInput(slate)): Promise<RankedItem[]> {
  if (slate.candidates.length === 0 || settings.k === 0) return [];
  const reranker = await edgeReranker();
  const options = slateRerankOptions(settings);
  const { order, explored } = reranker.explore(picksFor(reranker, slate, input, options), input, options);
  return Array.from(order, (index, position): RankedItem => {
    const c = slate.candidates[index];
    if (c === undefined) throw new RangeError(`re-rank returned index ${index} of a ${slate.candidates.length}-candidate slate`);
    return { id: c.item, score: c.score, categories: c.categories, explored: explored[position] === 1 };
  });
}
