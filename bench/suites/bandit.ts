// Exploration: regret curves of Thompson sampling, ε-greedy and uniform on a simulated catalogue
// with known click rates, and the cost of one Thompson draw over a 500-arm posterior in TS vs WASM.
import { EpsilonGreedy, simulateRegret, ThompsonSampler, UniformRandom } from '../../core/domain/bandit.ts';
import type { BanditPolicy } from '../../core/domain/bandit.ts';
import { loadWasmKernels } from '../../core/kernels/wasm.ts';
import { betaVariate, sampleBetaInto, Xoshiro128 } from '../../core/domain/random.ts';
import { WasmBetaSampler } from '../../wasm/index.ts';
import { time } from '../harness.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const ARMS = 50;
const ROUNDS = 10_000;
const CHECKPOINTS = [1_000, 5_000, 10_000];
const SEEDS = 10;
/** Click rates are drawn from Beta(1, 30) per seed (mean CTR ≈ 3.2%). */
const CTR_PRIOR = { priorAlpha: 1, priorBeta: 30 };
const FLAT_PRIOR = { priorAlpha: 1, priorBeta: 1 };
const SAMPLE_ARMS = 500;

const POLICIES: [string, (seed: number) => BanditPolicy][] = [
  ['thompson', (seed) => new ThompsonSampler(ARMS, { seed, ...CTR_PRIOR })],
  ['thompson-flat-prior', (seed) => new ThompsonSampler(ARMS, { seed, ...FLAT_PRIOR })],
  ['eps-greedy-0.1', (seed) => new EpsilonGreedy(ARMS, { seed, epsilon: 0.1, ...CTR_PRIOR })],
  ['eps-greedy-0.1-flat-prior', (seed) => new EpsilonGreedy(ARMS, { seed, epsilon: 0.1, ...FLAT_PRIOR })],
  ['uniform', (seed) => new UniformRandom(ARMS, { seed })],
];

function regretRows(): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const [name, make] of POLICIES) {
    const sums = new Float64Array(CHECKPOINTS.length);
    for (let seed = 1; seed <= SEEDS; seed++) {
      const env = new Xoshiro128(seed * 1000);
      const ctrs = Float64Array.from({ length: ARMS }, () => betaVariate(CTR_PRIOR.priorAlpha, CTR_PRIOR.priorBeta, env));
      const curve = simulateRegret(make(seed), ctrs, ROUNDS, env);
      CHECKPOINTS.forEach((r, i) => (sums[i] = (sums[i] as number) + (curve[r - 1] as number)));
    }
    CHECKPOINTS.forEach((r, i) => rows.push({ name, metric: `regret@${r / 1000}k`, value: (sums[i] as number) / SEEDS, unit: 'clicks' }));
  }
  return rows;
}

export const suite: BenchSuite = {
  description: `bandit regret (${ARMS} arms, CTR ~ Beta(1, 30), ${ROUNDS.toLocaleString('en')} rounds) and Beta sampling of ${SAMPLE_ARMS} arms`,
  async run(notes) {
    Object.assign(notes, {
      regret: `cumulative pseudo-regret Σ(max CTR − CTR shown), one arm per round, mean over ${SEEDS} seeds (seed s draws its own CTRs)`,
      priors: "'thompson' and 'eps-greedy' use the catalogue base-rate prior Beta(1, 30); '-flat-prior' rows use Beta(1, 1)",
      sampling: `one Beta draw per arm for ${SAMPLE_ARMS} arms (alpha 1..51, beta 1..2001, f32), median of 2000 timed calls after 200 warm-up calls; wasm includes copying alpha/beta in and the draws out`,
    });
    const rows = regretRows();

    const env = new Xoshiro128(42);
    const alpha = Float32Array.from({ length: SAMPLE_ARMS }, () => 1 + env.next() * 50);
    const beta = Float32Array.from({ length: SAMPLE_ARMS }, () => 1 + env.next() * 2000);
    const out = new Float32Array(SAMPLE_ARMS);
    const opts = { warmup: 200, runs: 2000 };
    const tsRng = new Xoshiro128(7);
    const ts = await time(() => sampleBetaInto(alpha, beta, tsRng, out), opts);
    const wasm = new WasmBetaSampler(await loadWasmKernels('release'));
    const wasmRng = new Xoshiro128(7);
    const w = await time(() => wasm.sample(alpha, beta, wasmRng, out), opts);
    for (const [name, t] of [['ts', ts], ['wasm', w]] as const) {
      rows.push({ name: `sample-beta-${SAMPLE_ARMS}-${name}`, metric: 'median_us', value: t.median * 1000, unit: 'µs' });
      rows.push({ name: `sample-beta-${SAMPLE_ARMS}-${name}`, metric: 'p99_us', value: t.p99 * 1000, unit: 'µs' });
    }
    return rows;
  },
};
