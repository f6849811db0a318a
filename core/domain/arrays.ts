// Where a computation takes typed arrays that its answer holds: new ones by default, or the core's
// per-request scratch (core/serving/scratch.ts), which hands out memory kept between requests.
// Pure: no runtime imports.

/**
 * Zero-filled typed arrays of the length asked, one per name, not shared with anything else
 * while the answer that holds them is in use.
 */
export interface ArraySource {
  float32(name: string, length: number): Float32Array;
  float64(name: string, length: number): Float64Array;
  int32(name: string, length: number): Int32Array;
}

/** A new array for every call. */
export const NEW_ARRAYS: ArraySource = {
  float32: (_name, length) => new Float32Array(length),
  float64: (_name, length) => new Float64Array(length),
  int32: (_name, length) => new Int32Array(length),
};
