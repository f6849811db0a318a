// Trainable tensors. A dense `Param` carries a gradient as large as its value; an embedding table
// is a `SparseParam`, whose gradient holds only the rows a step touched, so a table of millions of
// rows costs per step only what its used rows cost (the optimizer reads the same touched list).

/** A dense parameter: `value` and `grad` have the same length (row-major when it is a matrix). */
export class Param {
  readonly grad: Float32Array;

  constructor(readonly value: Float32Array) {
    this.grad = new Float32Array(value.length);
  }

  zeroGrad(): void {
    this.grad.fill(0);
  }
}

/** Rows' gradients, keyed by row: only the rows touched since the last `clear`. */
export class SparseRowGrad {
  /** Number of touched rows; `rows[0..count)` are their ids in first-touch order. */
  count = 0;
  rows: Int32Array;
  /** `values[s·dim .. (s+1)·dim)` is the gradient of row `rows[s]`. */
  values: Float32Array;
  /** slotOf[row] = s when the row is touched, else −1: 4 bytes per table row, reset per touched row. */
  private readonly slotOf: Int32Array;

  constructor(readonly tableRows: number, readonly dim: number, initialCapacity = 256) {
    this.slotOf = new Int32Array(tableRows).fill(-1);
    this.rows = new Int32Array(initialCapacity);
    this.values = new Float32Array(initialCapacity * dim);
  }

  /** The slot of `row`'s gradient, claiming a zeroed one on first touch. */
  slot(row: number): number {
    const known = this.slotOf[row] as number;
    if (known >= 0) return known;
    if (this.count === this.rows.length) this.grow();
    const s = this.count++;
    this.slotOf[row] = s;
    this.rows[s] = row;
    this.values.fill(0, s * this.dim, (s + 1) * this.dim);
    return s;
  }

  /** Forgets every touched row: cost proportional to the rows touched, not the table. */
  clear(): void {
    for (let s = 0; s < this.count; s++) this.slotOf[this.rows[s] as number] = -1;
    this.count = 0;
  }

  private grow(): void {
    const rows = new Int32Array(this.rows.length * 2);
    rows.set(this.rows);
    const values = new Float32Array(rows.length * this.dim);
    values.set(this.values);
    this.rows = rows;
    this.values = values;
  }
}

/** An embedding table [rows × dim] row-major, with a row-sparse gradient. */
export class SparseParam {
  readonly grad: SparseRowGrad;

  constructor(readonly value: Float32Array, readonly rows: number, readonly dim: number) {
    if (value.length !== rows * dim) {
      throw new RangeError(`table has ${value.length} floats, expected rows ${rows} × dim ${dim} = ${rows * dim}`);
    }
    this.grad = new SparseRowGrad(rows, dim);
  }

  zeroGrad(): void {
    this.grad.clear();
  }
}
