// A small, typed ONNX model writer on top of onnx-proto's protobufjs classes.
// Models are built as a flat list of nodes in topological order (the order they are added), as
// the ONNX IR requires. Semantics of each operator: the ONNX operator specification (Operators.md).
import onnxProto from 'onnx-proto';
import type { onnx as OnnxNs } from 'onnx-proto';

// onnx-proto is CommonJS with `module.exports = $root`; Node's ESM loader exposes it only as default.
const { onnx } = onnxProto;

/** Element types Kestrel's models use. */
export type ElemType = 'float32' | 'int64';

/** A fixed size, or a symbolic name such as 'batch' that the runtime binds per call. */
export type Dim = number | string;

export type TensorData = Float32Array | BigInt64Array;

export type Attribute =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string };

/** Attribute constructors: JavaScript numbers do not say whether they are INT or FLOAT. */
export const attr = {
  int: (value: number): Attribute => ({ kind: 'int', value }),
  float: (value: number): Attribute => ({ kind: 'float', value }),
  ints: (value: readonly number[]): Attribute => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): Attribute => ({ kind: 'floats', value }),
  string: (value: string): Attribute => ({ kind: 'string', value }),
} as const;

/** Lowest opset the layer helpers are written for (Squeeze/ReduceSum take axes as an input from 13). */
export const MIN_OPSET = 13;
/** Highest opset this writer has been run against on onnxruntime 1.30 (node and web). */
export const MAX_OPSET = 21;
export const DEFAULT_OPSET = 17;

/** Epsilon under the norm in l2Normalize, so that a zero vector maps to zero, not NaN. */
export const L2_NORM_EPSILON = 1e-12;

export interface GraphOptions {
  readonly name?: string;
  /** Opset of the default ('ai.onnx') domain. Helpers emit the operator forms of this opset. */
  readonly opset?: number;
}

export interface ModelOptions {
  readonly producer: string;
  readonly producerVersion?: string;
  readonly docString?: string;
  /** Free-form key/value pairs stored in the model (e.g. model version, feature spec hash). */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface GemmOptions {
  /** B is stored [out, in] (PyTorch's Linear layout) rather than [in, out]. */
  readonly transB?: boolean;
  readonly out?: string;
}

const ELEM_TYPE: Record<ElemType, OnnxNs.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
};

/** ONNX IR version that introduced each opset's release (onnx/docs/Versioning.md). */
function irVersionFor(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function valueInfo(name: string, elemType: ElemType, shape: readonly Dim[]): OnnxNs.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[elemType],
        shape: {
          dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function attributeProto(name: string, a: Attribute): OnnxNs.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
  }
}

/** raw_data is little-endian (onnx.proto); copy through a DataView so big-endian hosts agree. */
function littleEndianBytes(data: TensorData): Uint8Array {
  const bytes = new Uint8Array(data.length * data.BYTES_PER_ELEMENT);
  const view = new DataView(bytes.buffer);
  if (data instanceof Float32Array) {
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] ?? 0, true);
  } else {
    for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, data[i] ?? 0n, true);
  }
  return bytes;
}

export class OnnxGraph {
  readonly opset: number;
  readonly #name: string;
  readonly #inputs: OnnxNs.IValueInfoProto[] = [];
  readonly #outputs: OnnxNs.IValueInfoProto[] = [];
  readonly #initializers: OnnxNs.ITensorProto[] = [];
  readonly #nodes: OnnxNs.INodeProto[] = [];
  /** Every value name defined so far (inputs, initializers, node outputs). */
  readonly #defined = new Set<string>();
  #counter = 0;

  constructor(options: GraphOptions = {}) {
    const opset = options.opset ?? DEFAULT_OPSET;
    if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
      throw new RangeError(`opset ${opset} is outside the supported range ${MIN_OPSET}..${MAX_OPSET}`);
    }
    this.opset = opset;
    this.#name = options.name ?? 'kestrel';
  }

  /** A value name not used yet, e.g. `relu_3`. */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.#counter++}`;
    while (this.#defined.has(name));
    return name;
  }

  input(name: string, elemType: ElemType, shape: readonly Dim[]): string {
    this.#define(name);
    this.#inputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  /** A constant tensor stored in the model (weights, embedding tables, shape vectors). */
  initializer(name: string, data: TensorData, shape: readonly number[]): string {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new RangeError(`initializer '${name}' has ${data.length} values but shape [${shape.join(', ')}] needs ${size}`);
    }
    this.#define(name);
    this.#initializers.push({
      name,
      dims: [...shape],
      dataType: ELEM_TYPE[data instanceof Float32Array ? 'float32' : 'int64'],
      rawData: littleEndianBytes(data),
    });
    return name;
  }

  /** Marks an already defined value as a graph output. */
  output(name: string, elemType: ElemType, shape: readonly Dim[]): string {
    if (!this.#defined.has(name)) throw new Error(`output '${name}' is not produced by any input, initializer or node`);
    this.#outputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  /**
   * Appends one node; its inputs must already be defined ('' marks an omitted optional input).
   * `outputs` is a list of names, or a count of fresh names to generate. Returns the output names.
   */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[] | number = 1,
    attributes: Readonly<Record<string, Attribute>> = {},
  ): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.#defined.has(i)) throw new Error(`${opType} reads '${i}', which is not defined yet`);
    }
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : [...outputs];
    for (const o of outs) this.#define(o);
    this.#nodes.push({
      name: this.fresh(`${opType}_node`),
      opType,
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attributes).map(([k, v]) => attributeProto(k, v)),
    });
    return outs;
  }

  // ---- layer helpers: each returns the name of its output ----

  matMul(a: string, b: string, out?: string): string {
    return this.#single('MatMul', [a, b], out);
  }

  /** Y = X·W + b (or X·Wᵀ + b with transB); X must be 2-D [batch, in]. */
  gemm(x: string, w: string, b: string, options: GemmOptions = {}): string {
    const attributes: Record<string, Attribute> = options.transB ? { transB: attr.int(1) } : {};
    return this.#single('Gemm', [x, w, b], options.out, attributes);
  }

  add(a: string, b: string, out?: string): string {
    return this.#single('Add', [a, b], out);
  }

  mul(a: string, b: string, out?: string): string {
    return this.#single('Mul', [a, b], out);
  }

  relu(x: string, out?: string): string {
    return this.#single('Relu', [x], out);
  }

  sigmoid(x: string, out?: string): string {
    return this.#single('Sigmoid', [x], out);
  }

  /** Embedding lookup: rows of `table` [vocab, dim] at int64 `ids` [...] → [..., dim]. */
  gather(table: string, ids: string, out?: string): string {
    return this.#single('Gather', [table, ids], out, { axis: attr.int(0) });
  }

  concat(xs: readonly string[], axis: number, out?: string): string {
    return this.#single('Concat', xs, out, { axis: attr.int(axis) });
  }

  /** `shape` may hold one -1 (inferred) and 0 (copy the input's dim), as in the Reshape spec. */
  reshape(x: string, shape: readonly number[], out?: string): string {
    const s = this.initializer(this.fresh('shape'), BigInt64Array.from(shape, BigInt), [shape.length]);
    return this.#single('Reshape', [x, s], out);
  }

  squeeze(x: string, axes: readonly number[], out?: string): string {
    return this.#single('Squeeze', [x, this.#axes(axes)], out);
  }

  /** Mean over `axes`; since opset 18 the axes are an input rather than an attribute. */
  reduceMean(x: string, axes: readonly number[], keepDims = true, out?: string): string {
    const keepdims = attr.int(keepDims ? 1 : 0);
    if (this.opset >= 18) return this.#single('ReduceMean', [x, this.#axes(axes)], out, { keepdims });
    return this.#single('ReduceMean', [x], out, { axes: attr.ints(axes), keepdims });
  }

  div(a: string, b: string, out?: string): string {
    return this.#single('Div', [a, b], out);
  }

  /** Element-wise maximum (with broadcasting) of two or more values. */
  max(xs: readonly string[], out?: string): string {
    return this.#single('Max', xs, out);
  }

  /** Inserts size-1 dimensions at `axes` (an input since opset 13). */
  unsqueeze(x: string, axes: readonly number[], out?: string): string {
    return this.#single('Unsqueeze', [x, this.#axes(axes)], out);
  }

  /** Sum over `axes` (an input since opset 13). */
  reduceSum(x: string, axes: readonly number[], keepDims = true, out?: string): string {
    return this.#single('ReduceSum', [x, this.#axes(axes)], out, { keepdims: attr.int(keepDims ? 1 : 0) });
  }

  /** A float32 scalar constant. */
  scalar(value: number, prefix = 'constant'): string {
    return this.initializer(this.fresh(prefix), Float32Array.of(value), []);
  }

  /** x / max(‖x‖₂, ε) along `axis`; a zero vector stays zero. */
  l2Normalize(x: string, axis = -1, out?: string): string {
    const sum = this.reduceSum(this.mul(x, x), [axis]);
    const norm = this.#single('Sqrt', [sum]);
    const safe = this.max([norm, this.scalar(L2_NORM_EPSILON, 'epsilon')]);
    return this.div(x, safe, out);
  }

  /** Serialised ModelProto. */
  toModelBytes(options: ModelOptions): Uint8Array {
    if (this.#outputs.length === 0) throw new Error(`graph '${this.#name}' has no outputs; call output() first`);
    const model = onnx.ModelProto.create({
      irVersion: irVersionFor(this.opset),
      opsetImport: [{ domain: '', version: this.opset }],
      producerName: options.producer,
      producerVersion: options.producerVersion ?? '',
      docString: options.docString ?? '',
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.#name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  #define(name: string): void {
    if (name === '') throw new Error('value names must not be empty');
    if (this.#defined.has(name)) throw new Error(`value '${name}' is already defined`);
    this.#defined.add(name);
  }

  #axes(axes: readonly number[]): string {
    return this.initializer(this.fresh('axes'), BigInt64Array.from(axes, BigInt), [axes.length]);
  }

  #single(
    opType: string,
    inputs: readonly string[],
    out?: string,
    attributes: Readonly<Record<string, Attribute>> = {},
  ): string {
    const [name] = this.node(opType, inputs, out === undefined ? 1 : [out], attributes);
    if (name === undefined) throw new Error(`${opType} produced no output`);
    return name;
  }
}
