// The weights of a trained network as plain typed arrays: what training produces, what the ONNX
// exporter writes, and what the WASM/WGSL serving paths read. One shape for the two towers of the
// retrieval model (Covington 2016; Yi 2019) and for the Wide&Deep ranker (Cheng 2016).
//
// A network = embedding bags (each pooled by mean or sum over a padded list of ids) and an optional
// dense float input, concatenated in that order → dense layers → an output transform; plus, for
// Wide&Deep, a wide part (a sum-pooled bag of dimension `outputs`) added to the last layer's output.

/** An embedding table read as a bag of ids. Ids ≥ rows are out of range and must not be fed. */
export interface BagSpec {
  /** Input name in the ONNX model: `<name>` int64 [batch, L] and `<name>_mask` float [batch, L]. */
  name: string;
  rows: number;
  dim: number;
  /** mean: Σ mask·E[id] / max(Σ mask, 1); sum: Σ mask·E[id]. The mask is 0/1 (padding) or a per-id weight. */
  mode: 'mean' | 'sum';
  /** Row-major [rows × dim]. */
  table: Float32Array;
}

export interface DenseLayerSpec {
  inputs: number;
  outputs: number;
  /** Row-major [inputs × outputs]: y = x · W + b. */
  weight: Float32Array;
  bias: Float32Array;
  activation: 'relu' | 'none';
}

export interface NetworkSpec {
  bags: BagSpec[];
  /** Dense float input `<name>` [batch, size], concatenated after the bags. */
  dense?: { name: string; size: number };
  layers: DenseLayerSpec[];
  /** Wide part (Cheng 2016): a sum bag whose dim equals the last layer's outputs, added before `output`. */
  wide?: BagSpec;
  /** l2: rows scaled to unit length (a tower's embedding); none: raw outputs (ranker logits). */
  output: 'l2' | 'none';
  /** Output name in the ONNX model. */
  outputName: string;
}

/** Inputs of one forward pass: per bag, ids and mask [batch × L] row-major; the dense input [batch × size]. */
export interface NetworkInputs {
  batch: number;
  bags: Record<string, { ids: Int32Array; mask: Float32Array; length: number }>;
  dense?: Float32Array;
}
