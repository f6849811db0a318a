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
  readonly id: string;
  readonly score: number;
  readonly categories: readonly string[];
  /** Placed by exploration (Thompson sampling) rather than by relevance and MMR. */
  readonly explored: boolean;
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
 * A slate's core scores and embedding matrix, in the kernel's layout, and what else a hit needs of
 * it: made once per slate object (an isolate serves a cached slate many times over), only ever read.
 */
interface SlateArrays {
  coreScore: Float64Array;
  embeddings: Float32Array;
  /** The neutral session signals: nothing shown, no interest. */
  noneShown: Float64Array;
  noInterest: Float32Array;
  prior: { alpha: Float32Array; beta: Float32Array };
  /** Item ids in candidate order (one array per slate: the bandit keeps its answer per array). */
  items: string[];
  /** Candidate indexes by item id (one, unless the slate lists an item twice). */
  indexOf: Map<string, number[]>;
  /** Each candidate's answer, placed by relevance and by exploration: made on first use, then shared. */
  ranked: (RankedItem | undefined)[];
  explored: (RankedItem | undefined)[];
}

const slateArrays = new WeakMap<Slate, SlateArrays>();

export function arraysOf(slate: Slate): SlateArrays {
  let arrays = slateArrays.get(slate);
  if (arrays === undefined) {
    const { dim } = slate;
    const n = slate.candidates.length;
    const coreScore = new Float64Array(n);
    const embeddings = new Float32Array(n * dim);
    const indexOf = new Map<string, number[]>();
    slate.candidates.forEach((c, i) => {
      coreScore[i] = c.score;
      embeddings.set(c.embedding, i * dim);
      const at = indexOf.get(c.item);
      if (at === undefined) indexOf.set(c.item, [i]);
      else at.push(i);
    });
    const prior = { alpha: new Float32Array(n).fill(DEFAULT_PRIOR.alpha), beta: new Float32Array(n).fill(DEFAULT_PRIOR.beta) };
    const items = slate.candidates.map((c) => c.item);
    arrays = {
      coreScore, embeddings, noneShown: new Float64Array(n), noInterest: new Float32Array(dim), prior, items, indexOf,
      ranked: new Array<RankedItem | undefined>(n).fill(undefined), explored: new Array<RankedItem | undefined>(n).fill(undefined),
    };
    slateArrays.set(slate, arrays);
  }
  return arrays;
}

/** Posteriors in the kernel's float32, per posteriors object (the bandit hands the same one out while its counts stand). */
const posteriorArrays = new WeakMap<CandidatePosteriors, { alpha: Float32Array; beta: Float32Array }>();

function float32Posteriors(posteriors: CandidatePosteriors): { alpha: Float32Array; beta: Float32Array } {
  let arrays = posteriorArrays.get(posteriors);
  if (arrays === undefined) {
    arrays = { alpha: Float32Array.from(posteriors.alpha), beta: Float32Array.from(posteriors.beta) };
    posteriorArrays.set(posteriors, arrays);
  }
  return arrays;
}

/**
 * The kernel input for a slate, with the session signals at their neutral values and the given
 * posteriors (the default prior for every candidate when there are none). Its arrays are shared by
 * every input of the same slate object (and posteriors object): read them, never write them;
 * replace one to change it.
 */
export function slateRerankInput(slate: Slate, posteriors?: CandidatePosteriors): RerankInput {
  const n = slate.candidates.length;
  const { dim } = slate;
  const { coreScore, embeddings, noneShown, noInterest, prior } = arraysOf(slate);
  if (posteriors !== undefined && (posteriors.alpha.length !== n || posteriors.beta.length !== n)) {
    throw new RangeError(`posteriors for ${posteriors.alpha.length}/${posteriors.beta.length} candidates, the slate has ${n}`);
  }
  const { alpha, beta } = posteriors === undefined ? prior : float32Posteriors(posteriors);
  return { dim, coreScore, embeddings, shown: noneShown, alpha, beta, interest: noInterest };
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

/** The session's part of picksKey, per input object (a hit repeats its input: recommend.ts sessionRerankInput). */
const sessionKeys = new WeakMap<RerankInput, string>();

function picksKey(input: RerankInput, options: RerankOptions): string {
  let session = sessionKeys.get(input);
  if (session === undefined) {
    const { interest, shown } = input;
    // No interest yet (all zeros) is the common case: no need to print 32 floats for it.
    session = interest.some((x) => x !== 0) ? interest.join(',') : '';
    session += '|';
    for (let i = 0; i < shown.length; i++) if (shown[i] !== 0) session += `${i}:${shown[i]},`;
    sessionKeys.set(input, session);
  }
  return `${options.lambda}|${options.k}|${options.exploreShare}|${options.affinityWeight}|${options.shownPenalty}|${session}`;
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

/** Each shared answer item's JSON text, under a symbol (JSON.stringify skips symbol keys). */
const JSON_TEXT = Symbol('json');

/** The answer for candidate `index` of the slate, the same object every time (items are only ever read). */
function rankedItem(slate: Slate, arrays: SlateArrays, index: number, explored: boolean): RankedItem {
  const kept = explored ? arrays.explored : arrays.ranked;
  let item = kept[index];
  if (item === undefined) {
    const c = slate.candidates[index];
    if (c === undefined) throw new RangeError(`re-rank returned index ${index} of a ${slate.candidates.length}-candidate slate`);
    const fields = { id: c.item, score: c.score, categories: c.categories, explored };
    item = Object.freeze(Object.defineProperty(fields, JSON_TEXT, { value: JSON.stringify(fields) }));
    kept[index] = item;
  }
  return item;
}

/**
 * The slate's top `k` after re-ranking, best first. Score is the core's score of the item.
 * `input` defaults to the slate with neutral session signals; its core scores and embeddings must
 * be the slate's own (slateRerankInput), since the MMR picks are kept per slate object. The items
 * are frozen and shared by every answer from the same slate.
 */
export async function rerankSlate(slate: Slate, settings: RerankSettings, input: RerankInput = slateRerankInput(slate)): Promise<RankedItem[]> {
  if (slate.candidates.length === 0 || settings.k === 0) return [];
  const reranker = await edgeReranker();
  const options = slateRerankOptions(settings);
  const { order, explored } = reranker.explore(picksFor(reranker, slate, input, options), input, options);
  const arrays = arraysOf(slate);
  const items = new Array<RankedItem>(order.length);
  for (let p = 0; p < order.length; p++) items[p] = rankedItem(slate, arrays, order[p] as number, explored[p] === 1);
  return items;
}

/** JSON.stringify(item); a slate's shared items (rankedItem) carry theirs, written once. */
export function rankedItemJson(item: RankedItem): string {
  return (item as { [JSON_TEXT]?: string })[JSON_TEXT] ?? JSON.stringify(item);
}
