// The `Ranker` port of core ranking: scores candidate rows with the ranker network (ranker.onnx,
// a NetworkSpec written by training/onnx/network.ts) and hands back its logits. Three adapters
// read the same bytes: ONNX Runtime on the CPU (./onnx-ranker.ts), the WGSL forward pass on
// WebGPU (./webgpu-ranker.ts) and the spec on the WASM SIMD GEMM (./wasm-ranker.ts);
// test/kernels/ranker-parity.test.ts holds them equal to each other and to
// training/models/forward.ts. Each adapter is imported lazily, so opening one never loads
// another's runtime (onnxruntime-node, or Dawn).
import type { NetworkInputs } from '../../training/models/spec.ts';

export type RankerKind = 'onnx' | 'webgpu' | 'wasm';

export interface Ranker {
  readonly kind: RankerKind;
  /** Logit columns per row (2 for the Wide&Deep ranker: click, engagement). */
  readonly outputs: number;
  /** Row-major [inputs.batch × outputs] logits. Concurrent calls are allowed (serialised internally if needed). */
  score(inputs: NetworkInputs): Promise<Float32Array>;
  /** Frees the runtime's memory; the ranker cannot score afterwards. */
  close(): Promise<void>;
}

export interface RankerOptions {
  /** onnx: threads one run may use (default 1, see onnx-session.ts). Ignored by webgpu. */
  intraOpThreads?: number;
}

export const RANKER_KINDS: readonly RankerKind[] = ['onnx', 'webgpu', 'wasm'];

/** Opens a ranker of `kind` on the bytes of a model written by `exportNetwork` (ranker.onnx, or a tower). */
export async function openRanker(kind: RankerKind, ranker: Uint8Array, options: RankerOptions = {}): Promise<Ranker> {
  switch (kind) {
    case 'onnx': {
      const { openOnnxRanker } = await import('./onnx-ranker.ts');
      return openOnnxRanker(ranker, options);
    }
    case 'webgpu': {
      const { openWebGpuRanker } = await import('./webgpu-ranker.ts');
      return openWebGpuRanker(ranker);
    }
    case 'wasm': {
      const { openWasmRanker } = await import('./wasm-ranker.ts');
      return openWasmRanker(ranker);
    }
    default:
      throw new RangeError(`unknown ranker kind '${String(kind)}'; choose one of ${RANKER_KINDS.join(', ')}`);
  }
}
