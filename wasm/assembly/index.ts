// Kestrel's WASM kernels. Every kernel works on memory the caller hands in (byte offsets into
// this module's linear memory) and never allocates: the host lays out its arrays above
// `heapBase()` and grows memory itself.
export { scoreDot } from "./score";
export { sampleBeta } from "./sampling";
export { gemm, matmulScratchBytes } from "./matmul";
export { exp64, inBatchSoftmaxRows } from "./softmax";
export { poolRows } from "./embedding";
export { rerank, rerankScratchBytes } from "./rerank";
export { sumRows } from "./rowsum";
export { firstLayerRows } from "./first-layer";

/** First byte the host may use for its own arrays. */
export function heapBase(): usize {
  return __heap_base;
}
