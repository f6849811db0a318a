// Step 1 of the edge request path: which A/B arm a user is in, and what that arm changes.
// Experiments come from the `experiments` entry of the CONFIG KV namespace when there is one (so an
// operator changes them without a redeploy; an isolate rereads it every EXPERIMENTS_CACHE_MS), else
// from the `EXPERIMENTS` var (the same JSON, see wrangler.toml); assignment itself is the
// deterministic, stateless hash of core/domain/ab.ts, so every edge location agrees without
// coordination. The first experiment in the list decides the arm (one experiment at a time drives
// the recommendation path; list order is the operator's priority). A malformed config does not take
// recommendations down: the request is served with the default arm and a warning naming the fault.
import { assignCompiled, compileExperiment } from '../core/domain/ab.ts';
import type { CompiledExperiment, Experiment } from '../core/domain/ab.ts';

/** Arm of a request when no experiment is configured. */
export const DEFAULT_ARM = 'default';
/** MMR relevance weight when the arm does not set one (1 = pure relevance order). */
export const DEFAULT_MMR_LAMBDA = 0.85;
/** Share of the slots filled by Thompson-sampling exploration when the arm does not set one. */
export const DEFAULT_EXPLORE_SHARE = 0.1;

export interface ArmChoice {
  /** Arm name, as it goes into the response (and later into logged events). */
  arm: string;
  /** The experiment that assigned it; undefined for the default arm. */
  experimentId: string | undefined;
  /** Names the (experiment, arm) pair in cache keys: arm names alone may repeat across experiments. */
  cacheKey: string;
  mmrLambda: number;
  exploreShare: number;
  /** The model version the arm pins; a slate of another version is a cache miss. */
  modelVersion: string | undefined;
  /** Set when EXPERIMENTS could not be read: what is wrong with it. */
  warning?: string;
}

interface ArmParams {
  mmrLambda?: number;
  exploreShare?: number;
  modelVersion?: string;
}

interface ParsedExperiments {
  experiments: CompiledExperiment[];
  params: Map<string, ArmParams>;
}

const DEFAULT_CHOICE: ArmChoice = {
  arm: DEFAULT_ARM, experimentId: undefined, cacheKey: DEFAULT_ARM,
  mmrLambda: DEFAULT_MMR_LAMBDA, exploreShare: DEFAULT_EXPLORE_SHARE, modelVersion: undefined,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unitInterval(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${path} must be a number in [0, 1], got ${JSON.stringify(v)}`);
  return v;
}

function armParams(v: unknown, path: string): ArmParams {
  if (v === undefined) return {};
  if (!isRecord(v)) throw new Error(`${path} must be an object like { "mmrLambda": 0.7, "exploreShare": 0.2, "modelVersion": "v3" }`);
  const out: ArmParams = {};
  const mmrLambda = unitInterval(v.mmrLambda, `${path}.mmrLambda`);
  const exploreShare = unitInterval(v.exploreShare, `${path}.exploreShare`);
  if (mmrLambda !== undefined) out.mmrLambda = mmrLambda;
  if (exploreShare !== undefined) out.exploreShare = exploreShare;
  if (v.modelVersion !== undefined) {
    if (typeof v.modelVersion !== 'string' || v.modelVersion === '') throw new Error(`${path}.modelVersion must be a non-empty string`);
    out.modelVersion = v.modelVersion;
  }
  return out;
}

/** Reads the EXPERIMENTS JSON; throws an Error that says what to fix. */
export function parseExperiments(text: string): ParsedExperiments {
  let json: unknown;
  try {
    json = text.trim() === '' ? [] : JSON.parse(text);
  } catch (e) {
    throw new Error(`EXPERIMENTS is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(json)) throw new Error('EXPERIMENTS must be a JSON array of experiments ([] for none)');
  const params = new Map<string, ArmParams>();
  const experiments = json.map((e: unknown, i): CompiledExperiment => {
    if (!isRecord(e) || !Array.isArray(e.arms)) throw new Error(`EXPERIMENTS[${i}] must be an object with "id" and "arms"`);
    const compiled = compileExperiment(e as unknown as Experiment);
    compiled.experiment.arms.forEach((arm, j) => {
      params.set(`${compiled.experiment.id}\u0000${arm.name}`, armParams(arm.params, `EXPERIMENTS[${i}].arms[${j}].params`));
    });
    return compiled;
  });
  return { experiments, params };
}

// The var is the same for every request of an isolate: parse it once per distinct text.
let memo: { text: string; parsed: ParsedExperiments | Error } | undefined;

function parsedOnce(text: string): ParsedExperiments | Error {
  if (memo?.text !== text) {
    let parsed: ParsedExperiments | Error;
    try {
      parsed = parseExperiments(text);
    } catch (e) {
      parsed = e instanceof Error ? e : new Error(String(e));
    }
    memo = { text, parsed };
  }
  return memo.parsed;
}

/** The arm `userId` is in under the EXPERIMENTS config `text`, with its re-rank settings. */
export function chooseArm(userId: string, text: string | undefined): ArmChoice {
  const parsed = parsedOnce(text ?? '');
  if (parsed instanceof Error) return { ...DEFAULT_CHOICE, warning: `${parsed.message}; serving arm '${DEFAULT_ARM}'` };
  const first = parsed.experiments[0];
  if (first === undefined) return DEFAULT_CHOICE;
  const assignment = assignCompiled(userId, first);
  // Holdout users get the defaults even when an arm happens to be named like the holdout.
  const params = assignment.inExperiment ? parsed.params.get(`${assignment.experimentId}\u0000${assignment.arm}`) ?? {} : {};
  return {
    arm: assignment.arm,
    experimentId: assignment.experimentId,
    cacheKey: `${assignment.experimentId}/${assignment.inExperiment ? assignment.arm : '~holdout'}`,
    mmrLambda: params.mmrLambda ?? DEFAULT_MMR_LAMBDA,
    exploreShare: params.exploreShare ?? DEFAULT_EXPLORE_SHARE,
    modelVersion: params.modelVersion,
  };
}

/** Entry of the CONFIG namespace that, when present, holds the experiments instead of the var. */
export const EXPERIMENTS_ENTRY = 'experiments';
/** How long an isolate uses the experiments it read from KV before it reads them again. */
export const EXPERIMENTS_CACHE_MS = 30_000;

export interface ExperimentsSource {
  /** The experiments JSON in force: the KV entry's, else the var's. */
  text: string;
  from: 'kv' | 'var';
  /** Set when KV could not be read, so the var's experiments were used. */
  warning?: string;
}

let kvMemo: { text: string | null; at: number } | undefined;

/** The experiments JSON in force for `env`: the CONFIG entry if set, else EXPERIMENTS. */
export async function experimentsSource(env: Env, now: number): Promise<ExperimentsSource> {
  const fromVar = (warning?: string): ExperimentsSource => ({ text: env.EXPERIMENTS ?? '', from: 'var', ...(warning === undefined ? {} : { warning }) });
  if (kvMemo === undefined || now - kvMemo.at >= EXPERIMENTS_CACHE_MS) {
    try {
      kvMemo = { text: await env.CONFIG.get(EXPERIMENTS_ENTRY, 'text'), at: now };
    } catch (err) {
      // Keep serving the last text read, if any, rather than flipping users back to the var's arms.
      if (kvMemo !== undefined) return kvMemo.text === null ? fromVar() : { text: kvMemo.text, from: 'kv' };
      return fromVar(`experiments could not be read from KV (${err instanceof Error ? err.message : String(err)}); using the EXPERIMENTS var`);
    }
  }
  return kvMemo.text === null ? fromVar() : { text: kvMemo.text, from: 'kv' };
}

/** Forgets the experiments read from KV, so the next request reads them again (tests). */
export function forgetExperiments(): void {
  kvMemo = undefined;
}
