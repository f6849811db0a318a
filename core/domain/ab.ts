// A/B assignment: which arm of an experiment a user sees. Deterministic (the same user gets the
// same arm on every edge location and every request, with no stored state), uniform over the
// weights, and independent across experiments.
//
// Two hashes per (experiment, user), both MurmurHash3 x86_32 of the user id's UTF-8 bytes with a
// seed derived from the experiment id:
//   * the traffic hash decides whether the user is in the experiment at all (u < traffic);
//   * the arm hash picks the arm by cumulative weight.
// Keeping them separate is what makes traffic changes safe: raising `traffic` only adds users
// (whoever was in stays in), and nobody already in changes arm. Changing weights moves the
// cumulative boundaries, so only users between the old and new boundary change arm. Renaming the
// experiment id changes both seeds and reshuffles everyone, by design.
import { hashString } from './hash.ts';

/** Arm name given to users outside the experiment's traffic share (the holdout). */
export const HOLDOUT_ARM = 'control';

export interface ExperimentArm {
  name: string;
  /** Relative weight; weights need not sum to 1. */
  weight: number;
  /** What the arm changes (model version, MMR λ, exploration rate, ...); opaque here. */
  params?: Record<string, unknown>;
}

export interface Experiment {
  id: string;
  arms: ExperimentArm[];
  /** Share of users in the experiment, in [0, 1]; default 1. The rest get HOLDOUT_ARM. */
  traffic?: number;
}

export interface Assignment {
  experimentId: string;
  arm: string;
  /** False for holdout users (outside `traffic`): they get HOLDOUT_ARM and no params. */
  inExperiment: boolean;
  params?: Record<string, unknown>;
}

/** Seed of the arm hash and seed of the traffic hash, both derived from the experiment id. */
const ARM_SALT = 0x6b657374; // "kest"
const TRAFFIC_SALT = 0x74726166; // "traf"
const TWO_32 = 4294967296;

/** An experiment checked once and ready to assign many users quickly. */
export interface CompiledExperiment {
  readonly experiment: Experiment;
  readonly traffic: number;
  readonly armSeed: number;
  readonly trafficSeed: number;
  /** Cumulative weight share up to and including arm i; the last is exactly 1. */
  readonly cumulative: Float64Array;
}

/** Checks an experiment and precomputes its seeds and cumulative weights. Errors say what to fix. */
export function compileExperiment(experiment: Experiment): CompiledExperiment {
  const { id, arms } = experiment;
  if (typeof id !== 'string' || id === '') throw new Error('experiment id must be a non-empty string');
  if (!Array.isArray(arms) || arms.length === 0) throw new Error(`experiment '${id}' has no arms`);
  const traffic = experiment.traffic ?? 1;
  if (!(traffic >= 0 && traffic <= 1)) {
    throw new Error(`experiment '${id}' traffic must be in [0, 1], got ${traffic}`);
  }
  const names = new Set<string>();
  let total = 0;
  for (const arm of arms) {
    if (typeof arm.name !== 'string' || arm.name === '') throw new Error(`experiment '${id}' has an arm without a name`);
    if (names.has(arm.name)) throw new Error(`experiment '${id}' has two arms named '${arm.name}'`);
    names.add(arm.name);
    if (!(arm.weight >= 0 && arm.weight < Infinity)) {
      throw new Error(`experiment '${id}' arm '${arm.name}' weight must be a finite number >= 0, got ${arm.weight}`);
    }
    total += arm.weight;
  }
  if (total === 0) throw new Error(`experiment '${id}' arm weights sum to 0`);
  const cumulative = new Float64Array(arms.length);
  let acc = 0;
  for (let i = 0; i < arms.length; i++) {
    acc += (arms[i] as ExperimentArm).weight;
    cumulative[i] = acc / total;
  }
  // Rounding could leave the last boundary a hair under 1; the arm hash is < 1, so pin it.
  cumulative[arms.length - 1] = 1;
  return {
    experiment,
    traffic,
    armSeed: hashString(id, ARM_SALT),
    trafficSeed: hashString(id, TRAFFIC_SALT),
    cumulative,
  };
}

/** The arm index for a uniform `u` in [0, 1): the first arm whose cumulative share exceeds u. */
function armIndex(cumulative: Float64Array, u: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (u < (cumulative[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Assigns `userId` an arm of a compiled experiment. */
export function assignCompiled(userId: string, compiled: CompiledExperiment): Assignment {
  const { experiment } = compiled;
  if (compiled.traffic < 1 && hashString(userId, compiled.trafficSeed) / TWO_32 >= compiled.traffic) {
    return { experimentId: experiment.id, arm: HOLDOUT_ARM, inExperiment: false };
  }
  const arm = experiment.arms[armIndex(compiled.cumulative, hashString(userId, compiled.armSeed) / TWO_32)] as ExperimentArm;
  const assignment: Assignment = { experimentId: experiment.id, arm: arm.name, inExperiment: true };
  if (arm.params !== undefined) assignment.params = arm.params;
  return assignment;
}

/**
 * The arm `userId` sees in `experiment`: deterministic, with each arm's share of the users in the
 * experiment equal to its weight share. Validates on every call; for hot paths, compile once with
 * `compileExperiment` and call `assignCompiled`.
 */
export function assignArm(userId: string, experiment: Experiment): Assignment {
  return assignCompiled(userId, compileExperiment(experiment));
}
