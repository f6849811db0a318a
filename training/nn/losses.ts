// Losses that return their value and write dLoss/dlogits in one pass, in closed form
// (softmax − one-hot; sigmoid − label), computed stably: log-sum-exp after subtracting the row
// maximum, and softplus written as max(z, 0) + log1p(e^−|z|).

export interface SoftmaxCrossEntropyInput {
  /** [batch × classes] row-major. */
  logits: Float32Array;
  classes: number;
  /** The target class of each row. */
  targets: Int32Array;
  /** Per-row weight (default 1). */
  weights?: Float32Array;
}

/**
 * Loss = (1/batch) Σ_i w_i · (logsumexp_c z_ic − z_i,target); writes dLoss/dz into `grad`
 * (same length as logits). Returns the loss.
 */
export function softmaxCrossEntropy(input: SoftmaxCrossEntropyInput, grad: Float32Array): number {
  const { logits, classes, targets, weights } = input;
  const batch = targets.length;
  if (logits.length !== batch * classes || grad.length !== logits.length) {
    throw new RangeError(`logits and grad must be ${batch} targets × ${classes} classes; got ${logits.length} and ${grad.length}`);
  }
  if (weights !== undefined && weights.length !== batch) throw new RangeError(`weights has ${weights.length} entries for ${batch} rows`);
  let total = 0;
  for (let i = 0; i < batch; i++) {
    const target = targets[i] as number;
    if (!(target >= 0 && target < classes)) throw new RangeError(`row ${i} has target ${target}, outside [0, ${classes})`);
    const row = i * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[row + c] as number);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp((logits[row + c] as number) - max);
    const lse = max + Math.log(sum);
    const w = weights === undefined ? 1 : (weights[i] as number);
    total += w * (lse - (logits[row + target] as number));
    const scale = w / batch;
    for (let c = 0; c < classes; c++) {
      const p = Math.exp((logits[row + c] as number) - lse);
      grad[row + c] = scale * (c === target ? p - 1 : p);
    }
  }
  return total / batch;
}

export interface SigmoidCrossEntropyInput {
  /** Any shape, e.g. [batch × objectives]. */
  logits: Float32Array;
  /** Same length as logits, each in [0, 1]. */
  labels: Float32Array;
  /** Same length as logits (default 1): e.g. 0 for an objective a row has no label for. */
  weights?: Float32Array;
}

/**
 * Loss = (1/N) Σ w · (softplus(z) − y·z), the binary cross-entropy of σ(z) against y over all N
 * logits; writes dLoss/dz = w·(σ(z) − y)/N into `grad`. Returns the loss.
 */
export function sigmoidCrossEntropy(input: SigmoidCrossEntropyInput, grad: Float32Array): number {
  const { logits, labels, weights } = input;
  const n = logits.length;
  if (labels.length !== n || grad.length !== n || (weights !== undefined && weights.length !== n)) {
    throw new RangeError(`logits, labels, grad and weights must have one entry per logit (${n})`);
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const z = logits[i] as number;
    const y = labels[i] as number;
    const w = weights === undefined ? 1 : (weights[i] as number);
    const e = Math.exp(-Math.abs(z));
    total += w * (Math.max(z, 0) + Math.log1p(e) - y * z);
    // σ(z) from e = e^−|z| without overflow on either side.
    const sigmoid = z >= 0 ? 1 / (1 + e) : e / (1 + e);
    grad[i] = (w * (sigmoid - y)) / n;
  }
  return total / n;
}
