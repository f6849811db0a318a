// The edge's per-request re-rank of a cached slate (ARCHITECTURE.md, request path step 3): session
// affinity and already-shown penalties on top of the core's scores, MMR for diversity (Carbonell &
// Goldstein 1998), then Thompson-sampling exploration (Chapelle & Li 2011) in a share of the slots.
// The TypeScript reference of wasm/assembly/rerank.ts and the edge's fallback when WASM is not
// available. Pure: no runtime imports.
//
// The pipeline, for n candidates with embeddings of `dim` floats (unit rows), k slots:
//
//   0. slots m = min(k, n); exploration slots e = round(exploreShare · m) (Math.round, computed on
//      the host by `rerankPlan` and handed to the kernel, so both sides agree on halves); MMR picks
//      m − e. e never exceeds m, so there are always at least e candidates left to explore.
//   1. relevance_i = coreScore_i + affinityWeight · dot(embedding_i, interest) − shownPenalty · shown_i
//      in float64; dot = Σ_d embedding[i·dim + d] · interest[d] summed in float64 in dimension order
//      (each product of two float32 is exact in float64). An all-zero interest adds nothing.
//   2. MMR: `mmr` of core/domain/mmr.ts on those relevances (min-max normalised to [0, 1],
//      sim = float64 inner product summed in dimension order, first pick by relevance, ties to the
//      more relevant then the lower index), picking m − e candidates.
//   3. Exploration, only when e > 0: for every candidate MMR did not pick, in index order, one
//      θ_i ~ Beta(alpha_i, beta_i) with alpha, beta rounded to float32 and θ rounded to float32,
//      from one xoshiro128** stream seeded with `seed` (`new Xoshiro128(seed)`, Marsaglia–Tsang
//      Gamma: core/domain/random.ts `sampleBetaInto`, which wasm/assembly/sampling.ts matches bit
//      for bit). The e highest θ win (ties to the lower index: bandit.ts `topK`), best first.
//   4. Placement: the j-th explored candidate (j = 0 … e−1, best θ first) goes to position
//      p_j = floor((j + 1) · m / (e + 1)), which spreads them evenly and never puts one first
//      unless every slot explores (e = m gives p_j = j); the MMR picks fill the other positions in
//      pick order.
//
// Output: m candidate indexes in display order, and per position 1 when it came from exploration.
// Because every step is specified down to the float64 operation order, the WASM kernel returns the
// same order for the same input and seed (test/kernels/rerank-wasm.test.ts checks it exactly).
import { topK } from './bandit.ts';
import { mmr } from './mmr.ts';
import { sampleBetaInto, Xoshiro128 } from './random.ts';

export interface RerankInput {
  /** Embedding dimension: `embeddings` holds n rows of `dim` floats. */
  dim: number;
  /** The core's score per candidate (any finite scale). */
  coreScore: ArrayLike<number>;
  /** n × dim, row-major, L2-normalised rows (the slate's decoded embeddings). */
  embeddings: Float32Array;
  /** Times each candidate was already shown to this user in the session, ≥ 0. */
  shown: ArrayLike<number>;
  /** Beta posterior of each candidate's click-through (prior + clicks), > 0; used as float32. */
  alpha: ArrayLike<number>;
  /** Beta posterior β (prior + impressions − clicks), > 0; used as float32. */
  beta: ArrayLike<number>;
  /** The session's interest vector, `dim` floats; all zeros when the session has no signal yet. */
  interest: Float32Array;
}

export interface RerankOptions {
  /** Weight of dot(embedding, interest) added to the core score. */
  affinityWeight: number;
  /** Subtracted from the score once per time the candidate was already shown. */
  shownPenalty: number;
  /** MMR relevance weight in [0, 1]: 1 = relevance order, lower = more diverse. */
  lambda: number;
  /** Slots to fill; more than there are candidates fills one per candidate. */
  k: number;
  /** Share of the slots filled by exploration, in [0, 1]. */
  exploreShare: number;
  /** Seed of the request's xoshiro128** stream (an integer; taken mod 2^32). */
  seed: number;
}

export interface RerankResult {
  /** Candidate indexes, in display order; length min(k, n). */
  order: Int32Array;
  /** Per position of `order`: 1 when exploration filled it, else 0. */
  explored: Uint8Array;
}

export interface RerankPlan {
  /** Candidates. */
  n: number;
  /** Positions in the result: min(k, n). */
  slots: number;
  /** Positions filled by exploration: round(exploreShare · slots). */
  explore: number;
}

/** Step 0: how many slots there are and how many of them explore. */
export function rerankPlan(n: number, k: number, exploreShare: number): RerankPlan {
  const slots = Math.min(k, n);
  return { n, slots, explore: Math.min(slots, Math.round(exploreShare * slots)) };
}

/** Step 4: the position of the j-th explored candidate among `slots` positions, `explore` of them explored. */
export function explorationPosition(j: number, slots: number, explore: number): number {
  return Math.floor(((j + 1) * slots) / (explore + 1));
}

function checkLength(name: string, got: number, want: number, what: string): void {
  if (got !== want) throw new RangeError(`re-rank ${name} has ${got} values, expected ${want} (${what})`);
}

/**
 * Checks what the caller can get wrong and returns the plan. Shared with the WASM host
 * (wasm/index.ts `WasmReranker`) so both reject the same inputs with the same words. Embedding
 * values are not scanned here (n·dim reads); a non-finite one surfaces as a non-finite relevance.
 */
export function checkRerank(input: RerankInput, options: RerankOptions): RerankPlan {
  const { dim, coreScore, embeddings, shown, alpha, beta, interest } = input;
  const { affinityWeight, shownPenalty, lambda, k, exploreShare, seed } = options;
  if (!(Number.isInteger(dim) && dim > 0)) throw new RangeError(`re-rank dim must be a positive integer, got ${dim}`);
  const n = coreScore.length;
  checkLength('embeddings', embeddings.length, n * dim, `${n} candidates × ${dim} dims`);
  checkLength('shown', shown.length, n, 'one count per candidate');
  checkLength('alpha', alpha.length, n, 'one per candidate');
  checkLength('beta', beta.length, n, 'one per candidate');
  checkLength('interest', interest.length, dim, 'one per embedding dim');
  if (!Number.isFinite(affinityWeight)) throw new RangeError(`re-rank affinityWeight must be finite, got ${affinityWeight}`);
  if (!Number.isFinite(shownPenalty)) throw new RangeError(`re-rank shownPenalty must be finite, got ${shownPenalty}`);
  if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`re-rank lambda must be in [0, 1] (1 = pure relevance), got ${lambda}`);
  if (!(Number.isInteger(k) && k >= 0)) throw new RangeError(`re-rank k must be a non-negative integer, got ${k}`);
  if (!(exploreShare >= 0 && exploreShare <= 1)) throw new RangeError(`re-rank exploreShare must be in [0, 1], got ${exploreShare}`);
  if (!Number.isInteger(seed)) throw new RangeError(`re-rank seed must be an integer, got ${seed}`);
  for (let i = 0; i < n; i++) {
    const s = shown[i] as number;
    if (!(s >= 0 && s < Infinity)) throw new RangeError(`candidate ${i} was shown ${s} times; shown counts must be finite and ≥ 0`);
    const a = Math.fround(alpha[i] as number);
    const b = Math.fround(beta[i] as number);
    if (!(a > 0 && b > 0 && a < Infinity && b < Infinity)) {
      throw new RangeError(`candidate ${i} has Beta(${alpha[i]}, ${beta[i]}); both shapes must be positive and finite in float32`);
    }
  }
  return rerankPlan(n, k, exploreShare);
}

/** The error both implementations throw for a candidate whose step-1 relevance is not finite. */
export function nonFiniteRelevance(i: number, relevance: number): RangeError {
  return new RangeError(`candidate ${i} has relevance ${relevance}; its core score, embedding and the interest vector must be finite`);
}

/** Steps 0–4 above. Allocates its scratch per call; the WASM kernel is the hot path. */
export function rerank(input: RerankInput, options: RerankOptions): RerankResult {
  const { n, slots, explore } = checkRerank(input, options);
  const { dim, coreScore, embeddings, shown, alpha, beta, interest } = input;
  const { affinityWeight, shownPenalty, lambda, seed } = options;

  // 1. Relevance.
  const relevance: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let dot = 0;
    for (let d = 0, o = i * dim; d < dim; d++) dot += (embeddings[o + d] as number) * (interest[d] as number);
    const r = (coreScore[i] as number) + affinityWeight * dot - shownPenalty * (shown[i] as number);
    if (!Number.isFinite(r)) throw nonFiniteRelevance(i, r);
    relevance[i] = r;
  }

  // 2. MMR for the non-exploration slots.
  const picks = mmr(relevance, embeddings, { lambda, k: slots - explore, dim });
  return placeExploration(picks, { n, slots, explore }, alpha, beta, seed);
}

/** Fills `out` with one Beta(alpha_i, beta_i) draw per entry from the xoshiro128** stream of `seed` (step 3). */
export type BetaDraws = (alpha: Float32Array, beta: Float32Array, seed: number, out: Float32Array) => void;

const referenceDraws: BetaDraws = (alpha, beta, seed, out) => {
  sampleBetaInto(alpha, beta, new Xoshiro128(seed), out);
};

/**
 * Steps 3–4 for the MMR picks of step 2 (`plan.slots − plan.explore` candidate indexes, in pick
 * order). Steps 1–2 depend on neither the posteriors nor the seed, so a caller that re-ranks the
 * same candidates and session many times can keep the picks and run only this per request; `draws`
 * is where the Beta variates come from (the WASM host passes its kernel, which matches bit for bit).
 */
export function placeExploration(
  picks: ArrayLike<number>, plan: RerankPlan, alpha: ArrayLike<number>, beta: ArrayLike<number>, seed: number,
  draws: BetaDraws = referenceDraws,
): RerankResult {
  const { n, slots, explore } = plan;
  checkLength('picks', picks.length, slots - explore, `${slots} slots, ${explore} of them explored`);
  // 3. Thompson draws over the candidates MMR left, in index order.
  const top = new Int32Array(explore);
  const left = new Int32Array(n - picks.length);
  if (explore > 0) {
    const picked = new Uint8Array(n);
    for (let i = 0; i < picks.length; i++) picked[picks[i] as number] = 1;
    const a = new Float32Array(left.length);
    const b = new Float32Array(left.length);
    for (let i = 0, c = 0; i < n; i++) {
      if (picked[i] === 1) continue;
      left[c] = i;
      a[c] = alpha[i] as number;
      b[c] = beta[i] as number;
      c++;
    }
    const theta = new Float32Array(left.length);
    draws(a, b, seed, theta);
    topK(theta, explore, top);
  }

  // 4. Placement.
  const order = new Int32Array(slots);
  const explored = new Uint8Array(slots);
  for (let pos = 0, j = 0, q = 0; pos < slots; pos++) {
    if (j < explore && pos === explorationPosition(j, slots, explore)) {
      order[pos] = left[top[j] as number] as number;
      explored[pos] = 1;
      j++;
    } else {
      order[pos] = picks[q++] as number;
    }
  }
  return { order, explored };
}
