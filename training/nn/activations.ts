// Row-wise layers without weights. Each keeps what its backward needs and owns its output buffers
// (valid until its next forward), so a training step allocates only when the batch size changes.

export class Relu {
  private y = new Float32Array(0);
  private dx = new Float32Array(0);

  forward(x: Float32Array): Float32Array {
    if (this.y.length !== x.length) this.y = new Float32Array(x.length);
    const y = this.y;
    for (let i = 0; i < x.length; i++) {
      const v = x[i] as number;
      y[i] = v > 0 ? v : 0;
    }
    return y;
  }

  /** dx = dy where the output was positive (the subgradient 0 at x = 0). */
  backward(dy: Float32Array): Float32Array {
    const y = this.y;
    if (dy.length !== y.length) throw new RangeError(`dy has ${dy.length} floats, the forward output had ${y.length}`);
    if (this.dx.length !== dy.length) this.dx = new Float32Array(dy.length);
    const dx = this.dx;
    for (let i = 0; i < dy.length; i++) dx[i] = (y[i] as number) > 0 ? (dy[i] as number) : 0;
    return dx;
  }
}

/** Below this norm a row is divided by NORM_FLOOR instead, as torch.nn.functional.normalize does. */
const NORM_FLOOR = 1e-12;

/** Scales each row of [batch × dim] to unit L2 norm: a tower's output embedding. */
export class L2Normalize {
  private y = new Float32Array(0);
  private norms = new Float32Array(0);
  private dx = new Float32Array(0);
  private dim = 0;

  forward(x: Float32Array, dim: number): Float32Array {
    if (x.length % dim !== 0) throw new RangeError(`x has ${x.length} floats, not a multiple of dim ${dim}`);
    const rows = x.length / dim;
    if (this.y.length !== x.length) this.y = new Float32Array(x.length);
    if (this.norms.length !== rows) this.norms = new Float32Array(rows);
    const y = this.y;
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let d = 0; d < dim; d++) sum += (x[r * dim + d] as number) ** 2;
      const norm = Math.max(Math.sqrt(sum), NORM_FLOOR);
      this.norms[r] = norm;
      for (let d = 0; d < dim; d++) y[r * dim + d] = (x[r * dim + d] as number) / norm;
    }
    this.dim = dim;
    return y;
  }

  /** dx = (dy − y·⟨y, dy⟩) / ‖x‖: the Jacobian of x/‖x‖ is (I − y·yᵀ)/‖x‖. */
  backward(dy: Float32Array): Float32Array {
    const { y, dim } = this;
    if (dy.length !== y.length) throw new RangeError(`dy has ${dy.length} floats, the forward output had ${y.length}`);
    if (this.dx.length !== dy.length) this.dx = new Float32Array(dy.length);
    const dx = this.dx;
    const rows = y.length / dim;
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += (y[r * dim + d] as number) * (dy[r * dim + d] as number);
      const inv = 1 / (this.norms[r] as number);
      for (let d = 0; d < dim; d++) {
        dx[r * dim + d] = ((dy[r * dim + d] as number) - (y[r * dim + d] as number) * dot) * inv;
      }
    }
    return dx;
  }
}

/**
 * Concatenates row blocks side by side: parts [batch × width_i] → [batch × Σ width_i], the
 * "bags, then dense input" order of NetworkSpec. Backward splits the gradient back into parts.
 */
export class Concat {
  private out = new Float32Array(0);
  private grads: Float32Array[] = [];
  private widths: number[] = [];
  private batch = 0;

  forward(parts: readonly Float32Array[], widths: readonly number[], batch: number): Float32Array {
    if (parts.length !== widths.length) throw new RangeError(`${parts.length} parts but ${widths.length} widths`);
    const total = widths.reduce((s, w) => s + w, 0);
    if (this.out.length !== batch * total) this.out = new Float32Array(batch * total);
    let offset = 0;
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p] as Float32Array;
      const width = widths[p] as number;
      if (part.length !== batch * width) {
        throw new RangeError(`part ${p} has ${part.length} floats, expected batch ${batch} × width ${width}`);
      }
      for (let b = 0; b < batch; b++) this.out.set(part.subarray(b * width, (b + 1) * width), b * total + offset);
      offset += width;
    }
    this.widths = [...widths];
    this.batch = batch;
    return this.out;
  }

  /** The gradient of each part, in forward order. */
  backward(dOut: Float32Array): Float32Array[] {
    const { widths, batch } = this;
    const total = widths.reduce((s, w) => s + w, 0);
    if (dOut.length !== batch * total) throw new RangeError(`dOut has ${dOut.length} floats, expected ${batch} × ${total}`);
    let offset = 0;
    for (let p = 0; p < widths.length; p++) {
      const width = widths[p] as number;
      let grad = this.grads[p];
      if (grad === undefined || grad.length !== batch * width) {
        grad = new Float32Array(batch * width);
        this.grads[p] = grad;
      }
      for (let b = 0; b < batch; b++) grad.set(dOut.subarray(b * total + offset, b * total + offset + width), b * width);
      offset += width;
    }
    return this.grads.slice(0, widths.length);
  }
}
