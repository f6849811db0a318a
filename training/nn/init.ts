// Seeded initialisation: every draw comes from one `Xoshiro128` stream (core/domain/random.ts), so
// the same seed and the same construction order give the same weights, bit for bit.
import { normalVariate } from '../../core/domain/random.ts';
import type { Xoshiro128 } from '../../core/domain/random.ts';

/** Fills `out` with N(0, std²) draws. */
export function fillNormal(out: Float32Array, std: number, rng: Xoshiro128): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = std * normalVariate(rng);
  return out;
}

/** Fills `out` with U(−limit, limit) draws. */
export function fillUniform(out: Float32Array, limit: number, rng: Xoshiro128): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = limit * (2 * rng.next() - 1);
  return out;
}

/** Glorot & Bengio (2010) uniform: keeps activation variance through linear/tanh layers. */
export function glorotUniform(inputs: number, outputs: number, rng: Xoshiro128): Float32Array {
  return fillUniform(new Float32Array(inputs * outputs), Math.sqrt(6 / (inputs + outputs)), rng);
}

/** He et al. (2015) normal, std √(2 / fan-in): keeps activation variance through ReLU layers. */
export function heNormal(inputs: number, outputs: number, rng: Xoshiro128): Float32Array {
  return fillNormal(new Float32Array(inputs * outputs), Math.sqrt(2 / inputs), rng);
}
