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
//   3. Exploration, only when e > 0: Thompson sampling over the candidates MMR did not pick, with
//      alpha, beta rounded to float32: one draw θ_i ~ Beta(alpha_i, beta_i) each, the e highest θ
//      win, best first, ties to the lower candidate index. The draws come in two parts whose union
//      has exactly that distribution, so that the common case costs a few draws, not one per
//      candidate:
//      a. candidates with alpha = 1 (no click yet: Beta(1, β), whose quantile is
//         1 − (1 − u)^(1/β)) are grouped by beta. Only a group's e' = min(e, g) best of its g draws
//         can win, and they are the top order statistics of g uniforms, drawn top down (Rényi):
//         ln U_(g) = ln V_1 / g, ln U_(g−j) = ln U_(g−j+1) + ln V_(j+1) / (g − j), each mapped
//         through the quantile (in float64 with Math.log/expm1, then rounded to float32) and given
//         to e' members chosen uniformly without replacement (a partial Fisher–Yates shuffle of the
//         group; member order is exchangeable). Groups go in order of their first candidate, each
//         drawing V then the member, from the xoshiro128** stream seeded with `seed ^ GROUP_STREAM`.
//      b. every other candidate: one draw each, in index order, from the xoshiro128** stream seeded
//         with `seed` (Marsaglia–Tsang Gamma: core/domain/random.ts `sampleBetaInto`, which
//         wasm/assembly/sampling.ts `sampleBeta` matches bit for bit).
//   4. Placement: the j-th explored candidate (j = 0 … e−1, best θ first) goes to position
//      p_j = floor((j + 1) · m / (e + 1)), which spreads them evenly and never puts one first
//      unless every slot explores (e = m gives p_j = j); the MMR picks fill the other positions in
//      pick order.
//
// Output: m candidate indexes in display order, and per position 1 when it came from exploration.
// Because every step is specified down to the float64 operation order, the WASM kernel (steps 1–2,
// and the draws of 3b) gives the same order for the same input and seed
// (test/kernels/rerank-wasm.test.ts checks it exactly).
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
  const plan = checkRerankShape(input, options);
  checkShown(input.shown);
  checkPosteriors(input.alpha, input.beta);
  return plan;
}

/** checkRerank's checks of sizes and options alone: no per-candidate reads. */
export function checkRerankShape(input: RerankInput, options: RerankOptions): RerankPlan {
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
  return rerankPlan(n, k, exploreShare);
}

function checkShown(shown: ArrayLike<number>): void {
  for (let i = 0; i < shown.length; i++) {
    const s = shown[i] as number;
    if (!(s >= 0 && s < Infinity)) throw new RangeError(`candidate ${i} was shown ${s} times; shown counts must be finite and ≥ 0`);
  }
}

/** Every candidate's Beta shapes are positive and finite in float32 (what the draws read). */
export function checkPosteriors(alpha: ArrayLike<number>, beta: ArrayLike<number>): void {
  for (let i = 0; i < alpha.length; i++) {
    const a = Math.fround(alpha[i] as number);
    const b = Math.fround(beta[i] as number);
    if (!(a > 0 && b > 0 && a < Infinity && b < Infinity)) {
      throw new RangeError(`candidate ${i} has Beta(${alpha[i]}, ${beta[i]}); both shapes must be positive and finite in float32`);
    }
  }
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

/** Seed difference of step 3a's stream from step 3b's. */
export const GROUP_STREAM = 0x67726f75;

/** Step 3's candidates: those MMR left unpicked, split as steps 3a and 3b draw them. */
export interface ExplorationPool {
  /** 3a: candidates with alpha = 1 grouped by beta (float32), groups by first candidate, members in index order. */
  groups: { beta: number; members: Int32Array }[];
  /** 3b: the others, in index order, with their Beta shapes in float32. */
  single: Int32Array;
  alpha: Float32Array;
  beta: Float32Array;
}

/** The pool of step 3 for `picks` among `n` candidates with posteriors Beta(alpha_i, beta_i). */
export function explorationPool(picks: ArrayLike<number>, n: number, alpha: ArrayLike<number>, beta: ArrayLike<number>): ExplorationPool {
  // 0: picked by MMR, 1: left, alpha = 1 (grouped), 2: left, drawn on its own.
  const kind = new Uint8Array(n).fill(1);
  for (let i = 0; i < picks.length; i++) kind[picks[i] as number] = 0;
  let singles = 0;
  for (let i = 0; i < n; i++) {
    if (kind[i] === 1 && Math.fround(alpha[i] as number) !== 1) {
      kind[i] = 2;
      singles++;
    }
  }
  const pool: ExplorationPool = { groups: [], single: new Int32Array(singles), alpha: new Float32Array(singles), beta: new Float32Array(singles) };
  const byBeta = new Map<number, number[]>();
  for (let i = 0, c = 0; i < n; i++) {
    if (kind[i] === 2) {
      pool.single[c] = i;
      pool.alpha[c] = alpha[i] as number;
      pool.beta[c] = beta[i] as number;
      c++;
    } else if (kind[i] === 1) {
      const b = Math.fround(beta[i] as number);
      const members = byBeta.get(b);
      if (members === undefined) byBeta.set(b, [i]);
      else members.push(i);
    }
  }
  // A Map iterates in insertion order: the order of each group's first candidate.
  for (const [b, members] of byBeta) pool.groups.push({ beta: b, members: Int32Array.from(members) });
  return pool;
}

/**
 * Steps 3–4 for the MMR picks of step 2 (`plan.slots − plan.explore` candidate indexes, in pick
 * order). Steps 1–2 depend on neither the posteriors nor the seed, so a caller that re-ranks the
 * same candidates and session many times can keep the picks and run only this per request; `draws`
 * is where step 3b's Beta variates come from (the WASM host passes its kernel, which matches bit
 * for bit).
 */
export function placeExploration(
  picks: ArrayLike<number>, plan: RerankPlan, alpha: ArrayLike<number>, beta: ArrayLike<number>, seed: number,
  draws: BetaDraws = referenceDraws,
): RerankResult {
  // placeFromPool checks the picks; a pool made from wrong ones is only thrown away.
  const pool = plan.explore > 0 ? explorationPool(picks, plan.n, alpha, beta) : undefined;
  return placeFromPool(picks, plan, pool, seed, draws);
}

/** The picks are as many as the plan's non-explored slots. */
function checkPicks(picks: ArrayLike<number>, plan: RerankPlan): void {
  const { slots, explore } = plan;
  checkLength('picks', picks.length, slots - explore, `${slots} slots, ${explore} of them explored`);
}

/** Members of the group being drawn from, shuffled in part (step 3a); grown, never shrunk. */
let memberScratch = new Int32Array(64);

/**
 * Step 3: the `explore` winners of Thompson sampling over `pool`, best first, as candidate indexes.
 * `draws` makes step 3b's draws.
 */
export function thompsonWinners(pool: ExplorationPool, explore: number, seed: number, draws: BetaDraws = referenceDraws): Int32Array {
  const winners = new Int32Array(explore);
  const best = new Float64Array(explore);
  let filled = 0;
  // Keeps the `explore` best (θ, index) seen, highest θ first, ties to the lower index.
  const offer = (theta: number, index: number): void => {
    if (filled === explore && !(theta > (best[explore - 1] as number) || (theta === best[explore - 1] && index < (winners[explore - 1] as number)))) return;
    let j = filled < explore ? filled++ : explore - 1;
    for (; j > 0; j--) {
      const t = best[j - 1] as number;
      if (t > theta || (t === theta && (winners[j - 1] as number) < index)) break;
      best[j] = t;
      winners[j] = winners[j - 1] as number;
    }
    best[j] = theta;
    winners[j] = index;
  };
  if (explore === 0) return winners;

  // 3a. Groups of Beta(1, β): their top order statistics, given to members chosen at random.
  const rng = new Xoshiro128((seed ^ GROUP_STREAM) >>> 0);
  for (const { beta: b, members } of pool.groups) {
    const g = members.length;
    const top = Math.min(explore, g);
    if (memberScratch.length < g) memberScratch = new Int32Array(Math.max(g, 2 * memberScratch.length));
    memberScratch.set(members);
    let logU = 0;
    for (let j = 0; j < top; j++) {
      logU += Math.log(rng.nextOpen()) / (g - j);
      // θ = 1 − (1 − U)^(1/β), with 1 − U = −expm1(ln U) and x^(1/β) = exp(ln x / β).
      const theta = Math.fround(-Math.expm1(Math.log(-Math.expm1(logU)) / b));
      const at = j + rng.nextInt(g - j);
      const member = memberScratch[at] as number;
      memberScratch[at] = memberScratch[j] as number;
      memberScratch[j] = member;
      offer(theta, member);
    }
  }

  // 3b. One draw per other candidate.
  const m = pool.single.length;
  if (m > 0) {
    const theta = new Float32Array(m);
    draws(pool.alpha, pool.beta, seed, theta);
    for (let c = 0; c < m; c++) offer(theta[c] as number, pool.single[c] as number);
  }
  return winners;
}

/**
 * placeExploration with the pool of `picks` already made (explorationPool; needed only when
 * `plan.explore` > 0): a caller that keeps the picks keeps their pool too.
 */
export function placeFromPool(
  picks: ArrayLike<number>, plan: RerankPlan, pool: ExplorationPool | undefined, seed: number, draws: BetaDraws = referenceDraws,
): RerankResult {
  const { slots, explore } = plan;
  checkPicks(picks, plan);
  let winners: Int32Array | undefined;
  if (explore > 0) {
    if (pool === undefined) throw new RangeError(`re-rank explores ${explore} slots and was given no exploration pool`);
    winners = thompsonWinners(pool, explore, seed, draws);
  }

  // 4. Placement.
  const order = new Int32Array(slots);
  const explored = new Uint8Array(slots);
  for (let pos = 0, j = 0, q = 0; pos < slots; pos++) {
    if (j < explore && pos === explorationPosition(j, slots, explore)) {
      order[pos] = (winners as Int32Array)[j] as number;
      explored[pos] = 1;
      j++;
    } else {
      order[pos] = picks[q++] as number;
    }
  }
  return { order, explored };
}
