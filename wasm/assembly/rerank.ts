// The edge's per-request re-rank of a cached slate, steps 1–2: affinity + shown penalty, then MMR
// (Carbonell & Goldstein 1998). The pipeline is specified in core/domain/rerank.ts, whose
// TypeScript reference this kernel matches exactly: same float64 operations in the same order, the
// same tie rules. Change one file, change the other. Steps 3–4 (Thompson-sampling exploration and
// placement) run on the host (wasm/index.ts `WasmReranker`), with the `sampleBeta` kernel of
// sampling.ts for the draws one candidate at a time.
//
// Every inner product here is Σ_d x[d]·q[d] in float64, summed in dimension order, as mmr.ts does
// it. A sequential sum cannot be split across SIMD lanes without changing its rounding, so the
// kernel vectorises across candidates instead: it first transposes the embeddings to dim-major
// float64 (embT[d·stride + i]; widening once there is cheaper than in each of the k passes), then
// one pass over d updates CANDIDATE_BLOCK running sums side by side, two per f64x2, each still in
// dimension order. (Blocks of 16 measured slower than 8 in Node; f32 storage widened per pass was
// ~20% slower at 500 × 32.)
/** Candidates whose sums advance together: 4 f64x2 accumulators per dim. */
const CANDIDATE_BLOCK: i32 = 8;

@inline
function align16(x: usize): usize {
  return (x + 15) & ~(<usize>15);
}

/** Row stride of the transposed embeddings: n rounded up to a whole block. */
@inline
function stride(n: i32): i32 {
  return (n + CANDIDATE_BLOCK - 1) & ~(CANDIDATE_BLOCK - 1);
}

// Scratch layout, from `scratch` (16-byte aligned), every part 16-byte aligned:
//   embT f64[dim × stride] | dots f64[stride] | maxSim f64[stride] | rel f64[n] | picked u8[n]
@inline
function dotsAt(scratch: usize, n: i32, dim: i32): usize {
  return align16(scratch + ((<usize>dim * <usize>stride(n)) << 3));
}
@inline
function maxSimAt(scratch: usize, n: i32, dim: i32): usize {
  return dotsAt(scratch, n, dim) + (<usize>stride(n) << 3);
}
@inline
function relAt(scratch: usize, n: i32, dim: i32): usize {
  return maxSimAt(scratch, n, dim) + (<usize>stride(n) << 3);
}
@inline
function pickedAt(scratch: usize, n: i32, dim: i32): usize {
  return align16(relAt(scratch, n, dim) + (<usize>n << 3));
}

/** Bytes of scratch `rerank` needs for n candidates of `dim` floats. */
export function rerankScratchBytes(n: i32, dim: i32): usize {
  return align16(pickedAt(0, n, dim) + <usize>n);
}

/**
 * embT[d·stride + i] = emb[i·dim + d], widened to f64 once here rather than in every pass; the
 * padding columns i ∈ [n, stride) are zeroed.
 */
function transpose(emb: usize, n: i32, dim: i32, embT: usize): void {
  const s = stride(n);
  const rowBytes = <usize>s << 3;
  for (let i = 0; i < n; i++) {
    const src = emb + ((<usize>i * <usize>dim) << 2);
    let dst = embT + (<usize>i << 3);
    for (let d = 0; d < dim; d++) {
      store<f64>(dst, <f64>load<f32>(src + (<usize>d << 2)));
      dst += rowBytes;
    }
  }
  if (s > n) {
    for (let d = 0; d < dim; d++) memory.fill(embT + <usize>d * rowBytes + (<usize>n << 3), 0, <usize>(s - n) << 3);
  }
}

/**
 * out[i] = Σ_d embT[d·stride + i] · q[d] for i in [0, stride), each in float64 and dimension order.
 * `q` is `dim` f32 (a row of the untransposed embeddings, or the interest vector).
 */
function dotsTransposed(embT: usize, n: i32, dim: i32, q: usize, out: usize): void {
  const s = stride(n);
  const rowBytes = <usize>s << 3;
  for (let i = 0; i < s; i += CANDIDATE_BLOCK) {
    let a0 = f64x2.splat(0);
    let a1 = f64x2.splat(0);
    let a2 = f64x2.splat(0);
    let a3 = f64x2.splat(0);
    let col = embT + (<usize>i << 3);
    for (let d = 0; d < dim; d++) {
      const qd = f64x2.splat(<f64>load<f32>(q + (<usize>d << 2)));
      a0 = f64x2.add(a0, f64x2.mul(v128.load(col), qd));
      a1 = f64x2.add(a1, f64x2.mul(v128.load(col, 16), qd));
      a2 = f64x2.add(a2, f64x2.mul(v128.load(col, 32), qd));
      a3 = f64x2.add(a3, f64x2.mul(v128.load(col, 48), qd));
      col += rowBytes;
    }
    const o = out + (<usize>i << 3);
    v128.store(o, a0);
    v128.store(o, a1, 16);
    v128.store(o, a2, 32);
    v128.store(o, a3, 48);
  }
}

/**
 * Runs steps 1–2 of core/domain/rerank.ts. Arrays are byte offsets into this memory:
 * coreScore f64[n], emb f32[n·dim] (row-major), shown f64[n], interest f32[dim], scratch =
 * `rerankScratchBytes(n, dim)` bytes, 16-byte aligned; writes the `count` MMR picks, in pick order,
 * to picks i32[count] (count ≤ n: the slots MMR fills, from the host's rerankPlan). Returns -1, or
 * the index of the first candidate whose relevance is not finite (nothing written).
 */
export function rerank(
  n: i32, dim: i32, coreScore: usize, emb: usize, shown: usize, interest: usize,
  affinityWeight: f64, shownPenalty: f64, lambda: f64, count: i32, scratch: usize, picks: usize,
): i32 {
  const embT = scratch;
  const dots = dotsAt(scratch, n, dim);
  const maxSim = maxSimAt(scratch, n, dim);
  const rel = relAt(scratch, n, dim);
  const picked = pickedAt(scratch, n, dim);
  transpose(emb, n, dim, embT);

  // 1. relevance_i = core_i + w·dot(e_i, interest) − p·shown_i, then min-max normalised (mmr.ts).
  dotsTransposed(embT, n, dim, interest, dots);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const off = <usize>i << 3;
    const r = load<f64>(coreScore + off) + affinityWeight * load<f64>(dots + off) - shownPenalty * load<f64>(shown + off);
    if (!isFinite(r)) return i;
    store<f64>(rel + off, r);
    if (r < lo) lo = r;
    if (r > hi) hi = r;
  }
  const range = hi - lo;
  for (let i = 0; i < n; i++) {
    const off = <usize>i << 3;
    store<f64>(rel + off, hi > lo ? (load<f64>(rel + off) - lo) / range : 0);
  }

  // 2. Greedy MMR for `count` picks; maxSim is updated incrementally after each pick.
  memory.fill(picked, 0, <usize>n);
  const redundancy = 1 - lambda;
  for (let step = 0; step < count; step++) {
    let best = -1;
    let bestScore = -Infinity;
    let bestRel: f64 = 0;
    for (let i = 0; i < n; i++) {
      if (load<u8>(picked + <usize>i) != 0) continue;
      const ri = load<f64>(rel + (<usize>i << 3));
      // With nothing picked the redundancy term is 0 for every λ: the first pick is by relevance.
      const score = step == 0 ? ri : lambda * ri - redundancy * load<f64>(maxSim + (<usize>i << 3));
      if (score > bestScore || (score == bestScore && best >= 0 && ri > bestRel)) {
        best = i;
        bestScore = score;
        bestRel = ri;
      }
    }
    store<u8>(picked + <usize>best, 1);
    store<i32>(picks + (<usize>step << 2), best);
    if (step + 1 == count) break;
    dotsTransposed(embT, n, dim, emb + ((<usize>best * <usize>dim) << 2), dots);
    const s = stride(n);
    if (step == 0) {
      memory.copy(maxSim, dots, <usize>s << 3);
    } else {
      for (let i = 0; i < s; i += 2) {
        const off = <usize>i << 3;
        const d = v128.load(dots + off);
        const m = v128.load(maxSim + off);
        // maxSim = dot > maxSim ? dot : maxSim, exactly mmr.ts's update (f64x2.max differs on ±0).
        v128.store(maxSim + off, v128.bitselect(d, m, f64x2.gt(d, m)));
      }
    }
  }

  return -1;
}
