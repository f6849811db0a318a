// Program descriptor for shaders/score.wgsl. Runtime-free on purpose: it names the WGSL file by
// URL and the host (core/gpu) reads it, so nothing here imports from `node:`.

/** What a host needs to build and bind one compute program. */
export interface ComputeProgram {
  /** Pipeline cache key: everything that changes the compiled pipeline is in it. */
  readonly key: string;
  readonly label: string;
  /** The .wgsl file, resolved next to this module. */
  readonly source: URL;
  readonly entryPoint: string;
  readonly workgroupSize: number;
  /** Values for the WGSL `override` declarations. */
  readonly constants: Readonly<Record<string, number>>;
  readonly bindings: readonly ProgramBinding[];
}

export interface ProgramBinding {
  readonly binding: number;
  readonly name: string;
  readonly type: GPUBufferBindingType;
}

/** Invocations per workgroup; one item row per invocation. 256 is the WebGPU default limit. */
export const SCORE_WORKGROUP_SIZE = 256;
/** Byte size of the `Params` uniform in score.wgsl: rows, dim, dim4, padding. */
export const SCORE_PARAMS_BYTES = 16;

export const SCORE_BINDINGS: readonly ProgramBinding[] = [
  { binding: 0, name: 'params', type: 'uniform' },
  { binding: 1, name: 'query', type: 'read-only-storage' },
  { binding: 2, name: 'items', type: 'read-only-storage' },
  { binding: 3, name: 'scores', type: 'storage' },
];

const SOURCE = new URL('./score.wgsl', import.meta.url);

function variant(entryPoint: 'score_vec4' | 'score_scalar'): ComputeProgram {
  return {
    key: `score/${entryPoint}/wg${SCORE_WORKGROUP_SIZE}`,
    label: `kestrel.score.${entryPoint}`,
    source: SOURCE,
    entryPoint,
    workgroupSize: SCORE_WORKGROUP_SIZE,
    constants: { WORKGROUP_SIZE: SCORE_WORKGROUP_SIZE },
    bindings: SCORE_BINDINGS,
  };
}

/** 16-byte loads; rows must be 16-byte aligned, so dim % 4 == 0. */
export const SCORE_VEC4 = variant('score_vec4');
/** Any dim, one float at a time. */
export const SCORE_SCALAR = variant('score_scalar');

/** The program for item vectors of `dim` floats: vec4 loads when rows are 16-byte aligned. */
export function scoreProgram(dim: number): ComputeProgram {
  if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`);
  return dim % 4 === 0 ? SCORE_VEC4 : SCORE_SCALAR;
}
