import kernelModule from '../wasm/build/release.wasm';
import { instantiateKernels } from '../wasm/index.ts';

type Kernels = Awaited<ReturnType<typeof instantiateKernels>>;

let kernels: Promise<Kernels> | undefined;

/** The WASM kernels, instantiated once per isolate and shared by its requests. */
export function edgeKernels(): Promise<Kernels> {
  kernels ??= instantiateKernels(kernelModule);
  return kernels;
}
