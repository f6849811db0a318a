// Exploration policies over per-arm click-through: Thompson sampling (Chapelle & Li, "An
// Empirical Evaluation of Thompson Sampling", NIPS 2011) over Beta posteriors, with ε-greedy and
// uniform random as the baselines it is measured against. An "arm" is whatever the edge explores
// over (an item or a category); `select(k)` fills k exploration slots with distinct arms.
import { sampleBetaInto, Xoshiro128 } from './random.ts';

export interface BanditPolicy {
  readonly arms: number;
  /** Records `clicks` out of `impressions` shown for `arm`. */
  update(arm: number, clicks: number, impressions: number): void;
  /** The indices of k distinct arms to show, best first, written into `out` when given. */
  select(k: number, out?: Int32Array): Int32Array;
}

export interface BetaPrior {
  /** Pseudo-clicks before any data (Beta α₀); default 1. */
  priorAlpha?: number;
  /** Pseudo-non-clicks before any data (Beta β₀); default 1, i.e. a uniform prior on the CTR. */
  priorBeta?: number;
}

export interface PolicyOptions extends BetaPrior {
  /** Seed of the policy's own PRNG, for reproducible runs. */
  seed?: number;
}

function checkArms(arms: number): void {
  if (!Number.isInteger(arms) || arms <= 0) throw new RangeError(`a bandit needs a positive integer number of arms, got ${arms}`);
}

function checkPrior(name: string, v: number): void {
  if (!(v > 0 && v < Infinity)) throw new RangeError(`${name} must be positive and finite, got ${v}`);
}

function checkSelect(k: number, arms: number, out: Int32Array | undefined): Int32Array {
  if (!Number.isInteger(k) || k < 0 || k > arms) throw new RangeError(`cannot select ${k} of ${arms} arms; k must be an integer in [0, ${arms}]`);
  if (out === undefined) return new Int32Array(k);
  if (out.length < k) throw new RangeError(`out has room for ${out.length} arms, ${k} requested`);
  return out;
}

/** Beta-Bernoulli counts per arm, shared by the policies that estimate CTRs. */
class BetaCounts {
  readonly alpha: Float64Array;
  readonly beta: Float64Array;

  constructor(readonly arms: number, { priorAlpha = 1, priorBeta = 1 }: BetaPrior) {
    checkArms(arms);
    checkPrior('priorAlpha', priorAlpha);
    checkPrior('priorBeta', priorBeta);
    this.alpha = new Float64Array(arms).fill(priorAlpha);
    this.beta = new Float64Array(arms).fill(priorBeta);
  }

  update(arm: number, clicks: number, impressions: number): void {
    if (!Number.isInteger(arm) || arm < 0 || arm >= this.arms) {
      throw new RangeError(`arm ${arm} does not exist; this bandit has arms 0..${this.arms - 1}`);
    }
    if (!(clicks >= 0 && impressions >= clicks && impressions < Infinity)) {
      throw new RangeError(`arm ${arm}: need 0 <= clicks <= impressions, got ${clicks} clicks of ${impressions} impressions`);
    }
    this.alpha[arm] = (this.alpha[arm] as number) + clicks;
    this.beta[arm] = (this.beta[arm] as number) + impressions - clicks;
  }
}

/**
 * The k largest of `scores`, best first, as indices into `out` (ties: lower index first).
 * Insertion into a sorted k-prefix: O(n·k), which beats a sort for the few exploration slots.
 */
export function topK(scores: ArrayLike<number>, k: number, out: Int32Array): Int32Array {
  let filled = 0;
  for (let i = 0; i < scores.length && k > 0; i++) {
    const s = scores[i] as number;
    if (filled === k && s <= (scores[out[k - 1] as number] as number)) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && (scores[out[j - 1] as number] as number) < s) {
      out[j] = out[j - 1] as number;
      j--;
    }
    out[j] = i;
  }
  return out;
}

/**
 * Thompson sampling over Beta posteriors: each call draws one CTR per arm from
 * Beta(α₀ + clicks, β₀ + non-clicks) and shows the arms with the highest draws, so an arm is shown
 * with the posterior probability that it is the best (Chapelle & Li 2011, Algorithm 2).
 */
export class ThompsonSampler implements BanditPolicy {
  private readonly counts: BetaCounts;
  private readonly draws: Float64Array;
  readonly rng: Xoshiro128;

  constructor(arms: number, { seed = 0, ...prior }: PolicyOptions = {}) {
    this.counts = new BetaCounts(arms, prior);
    this.draws = new Float64Array(arms);
    this.rng = new Xoshiro128(seed);
  }

  get arms(): number {
    return this.counts.arms;
  }

  /** Posterior α per arm (prior + clicks). Read-only by convention; the WASM sampler takes a copy. */
  get alpha(): Float64Array {
    return this.counts.alpha;
  }

  /** Posterior β per arm (prior + impressions − clicks). */
  get beta(): Float64Array {
    return this.counts.beta;
  }

  update(arm: number, clicks: number, impressions: number): void {
    this.counts.update(arm, clicks, impressions);
  }

  select(k: number, out?: Int32Array): Int32Array {
    const into = checkSelect(k, this.arms, out);
    sampleBetaInto(this.counts.alpha, this.counts.beta, this.rng, this.draws);
    return topK(this.draws, k, into);
  }
}

/**
 * ε-greedy: each slot is, with probability ε, a uniformly random arm not yet chosen, otherwise the
 * unchosen arm with the highest posterior-mean CTR (α / (α + β)). The Beta(1, 1) prior makes an
 * unseen arm's estimate ½, so every arm is tried before the greedy choice settles.
 */
export class EpsilonGreedy implements BanditPolicy {
  private readonly counts: BetaCounts;
  private readonly taken: Uint8Array;
  readonly rng: Xoshiro128;
  readonly epsilon: number;

  constructor(arms: number, { seed = 0, epsilon = 0.1, ...prior }: PolicyOptions & { epsilon?: number } = {}) {
    if (!(epsilon >= 0 && epsilon <= 1)) throw new RangeError(`epsilon must be in [0, 1], got ${epsilon}`);
    this.counts = new BetaCounts(arms, prior);
    this.taken = new Uint8Array(arms);
    this.rng = new Xoshiro128(seed);
    this.epsilon = epsilon;
  }

  get arms(): number {
    return this.counts.arms;
  }

  update(arm: number, clicks: number, impressions: number): void {
    this.counts.update(arm, clicks, impressions);
  }

  select(k: number, out?: Int32Array): Int32Array {
    const into = checkSelect(k, this.arms, out);
    const { alpha, beta } = this.counts;
    this.taken.fill(0);
    for (let slot = 0; slot < k; slot++) {
      let pick = -1;
      if (this.rng.next() < this.epsilon) {
        // The r-th untaken arm, uniformly.
        let r = this.rng.nextInt(this.arms - slot);
        for (let i = 0; i < this.arms; i++) {
          if (this.taken[i] === 0 && r-- === 0) {
            pick = i;
            break;
          }
        }
      } else {
        let best = -Infinity;
        for (let i = 0; i < this.arms; i++) {
          if (this.taken[i] !== 0) continue;
          const a = alpha[i] as number;
          const mean = a / (a + (beta[i] as number));
          if (mean > best) {
            best = mean;
            pick = i;
          }
        }
      }
      this.taken[pick] = 1;
      into[slot] = pick;
    }
    return into;
  }
}

/** Uniform random: k distinct arms, each subset equally likely. The no-learning baseline. */
export class UniformRandom implements BanditPolicy {
  private readonly order: Int32Array;
  readonly rng: Xoshiro128;

  constructor(readonly arms: number, { seed = 0 }: { seed?: number } = {}) {
    checkArms(arms);
    this.order = Int32Array.from({ length: arms }, (_, i) => i);
    this.rng = new Xoshiro128(seed);
  }

  update(arm: number, clicks: number, impressions: number): void {
    if (!Number.isInteger(arm) || arm < 0 || arm >= this.arms) {
      throw new RangeError(`arm ${arm} does not exist; this bandit has arms 0..${this.arms - 1}`);
    }
    if (!(clicks >= 0 && impressions >= clicks)) {
      throw new RangeError(`arm ${arm}: need 0 <= clicks <= impressions, got ${clicks} clicks of ${impressions} impressions`);
    }
  }

  select(k: number, out?: Int32Array): Int32Array {
    const into = checkSelect(k, this.arms, out);
    const order = this.order;
    // Partial Fisher–Yates: the first k positions become a uniform random k-subset.
    for (let i = 0; i < k; i++) {
      const j = i + this.rng.nextInt(this.arms - i);
      const t = order[i] as number;
      order[i] = order[j] as number;
      order[j] = t;
      into[i] = order[i] as number;
    }
    return into;
  }
}

/**
 * Runs `policy` for `rounds` rounds against Bernoulli arms with known click rates `ctrs`, one arm
 * shown per round, and returns the cumulative pseudo-regret Σ (max CTR − CTR of the arm shown)
 * after each round (index r holds the total after r + 1 rounds). Clicks come from `env`, a PRNG
 * separate from the policy's so that policies face the same kind of randomness.
 */
export function simulateRegret(policy: BanditPolicy, ctrs: ArrayLike<number>, rounds: number, env: Xoshiro128): Float64Array {
  if (ctrs.length !== policy.arms) throw new RangeError(`${ctrs.length} click rates for a ${policy.arms}-arm policy`);
  let best = 0;
  for (let i = 0; i < ctrs.length; i++) best = Math.max(best, ctrs[i] as number);
  const curve = new Float64Array(rounds);
  const shown = new Int32Array(1);
  let regret = 0;
  for (let r = 0; r < rounds; r++) {
    const arm = policy.select(1, shown)[0] as number;
    const ctr = ctrs[arm] as number;
    policy.update(arm, env.next() < ctr ? 1 : 0, 1);
    regret += best - ctr;
    curve[r] = regret;
  }
  return curve;
}
