// Row-wise layers without weights. Each keeps what its backward needs and owns its output buffers
// (valid until its next forward), so a training step allocates only when the batch size changes.

/** A float32 array's bits, to select whole floats with integer masks instead of branches. */
function bitsOf(x: Float32Array): Int32Array {
  return new Int32Array(x.buffer, x.byteOffset, x.length);
}

export class Relu {
  private y = new Float32Array(0);
  private yBits: Int32Array = new Int32Array(0);
  private dx = new Float32Array(0);
  private dxBits: Int32Array = new Int32Array(0);

  /**
   * y = x where x > 0, else +0 (NaN included). Branchless: x's bits ANDed with −[x > 0], since a
   * branch on the sign of activations is mispredicted about half the time.
   */
  forward(x: Float32Array): Float32Array {
    if (this.y.length !== x.length) {
      this.y = new Float32Array(x.length);
      this.yBits = bitsOf(this.y);
    }
    const yBits = this.yBits;
    const xBits = bitsOf(x);
    const n = x.length;
    for (let i = 0; i < n; i++) yBits[i] = (xBits[i] as number) & -Number((x[i] as number) > 0);
    return this.y;
  }

  /**
   * dx = dy where the output was positive (the subgradient 0 at x = 0). y is +0 or a positive
   * float, so y > 0 is its bits > 0 as an integer; dy's bits are masked as in forward.
   */
  backward(dy: Float32Array): Float32Array {
    const yBits = this.yBits;
    if (dy.length !== yBits.length) throw new RangeError(`dy has ${dy.length} floats, the forward output had ${yBits.length}`);
    if (this.dx.length !== dy.length) {
      this.dx = new Float32Array(dy.length);
      this.dxBits = bitsOf(this.dx);
    }
    const dxBits = this.dxBits;
    const dyBits = bitsOf(dy);
    const n = dy.length;
    for (let i = 0; i < n; i++) dxBits[i] = (dyBits[i] as number) & -Number((yBits[i] as number) > 0);
    return this.dx;
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
      const out = this.out;
      for (let b = 0; b < batch; b++) {
        const from = b * width;
        const to = b * total + offset;
        for (let c = 0; c < width; c++) out[to + c] = part[from + c] as number;
      }
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
      for (let b = 0; b < batch; b++) {
        const from = b * total + offset;
        const to = b * width;
        for (let c = 0; c < width; c++) grad[to + c] = dOut[from + c] as number;
      }
      offset += width;
    }
    return this.grads.slice(0, widths.length);
  }
}
