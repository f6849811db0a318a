// The `wasm` adapter of the Ranker port: the network spec read back from ranker.onnx, run by
// training/models/forward.ts with its dense layers on the WASM SIMD GEMM (wasm/assembly/matmul.ts)
// and the bag pooling in TypeScript. No native runtime and no thread pool: it runs on the calling
// thread, as fast as onnxruntime-node on one thread within ~10% (1,000 candidates: 3.2 ms against
// 2.9 ms p50, bench/suites/rank.ts), and anywhere WebAssembly runs.
import { createWasmMatmul } from '../kernels/wasm.ts';
import { checkNetworkSpec, forwardNetwork, networkOutputWidth } from '../../training/models/forward.ts';
import { readNetwork } from '../../training/onnx/network.ts';
import type { Ranker } from './ranker.ts';

export async function openWasmRanker(bytes: Uint8Array): Promise<Ranker> {
  const spec = readNetwork(bytes);
  checkNetworkSpec(spec);
  // One instance per ranker: the GEMM owns its instance's memory above the heap base.
  const matmul = await createWasmMatmul();
  let closed = false;
  return {
    kind: 'wasm',
    outputs: networkOutputWidth(spec),
    async score(inputs) {
      if (closed) throw new Error('the wasm ranker is closed');
      return forwardNetwork(spec, inputs, matmul);
    },
    async close() {
      closed = true;
    },
  };
}
