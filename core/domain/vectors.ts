// Plain TypeScript vector math: the reference the WASM and WGSL kernels are measured and tested
// against, and the fallback where neither is available. Typed arrays in, typed arrays out.

/** out[i] = dot(query, items[i*dim .. (i+1)*dim]); items are row-major. */
export function scoreDot(query: Float32Array, items: Float32Array, dim: number, out = new Float32Array(items.length / dim)): Float32Array {
  if (query.length !== dim) throw new RangeError(`query has ${query.length} dims, expected ${dim}`);
  const n = out.length;
  for (let i = 0, row = 0; i < n; i++, row += dim) {
    let acc = 0;
    for (let k = 0; k < dim; k++) acc += (query[k] as number) * (items[row + k] as number);
    out[i] = acc;
  }
  return out;
}

/** Scales `v` in place to unit L2 norm; a zero vector stays zero. */
export function l2Normalize(v: Float32Array): Float32Array {
  let norm = 0;
  for (let k = 0; k < v.length; k++) norm += (v[k] as number) ** 2;
  if (norm === 0) return v;
  const inv = 1 / Math.sqrt(norm);
  for (let k = 0; k < v.length; k++) v[k] = (v[k] as number) * inv;
  return v;
}
