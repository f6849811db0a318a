import { readFile } from 'node:fs/promises';
import { instantiateKernels, instantiateKernelsSync, WasmFirstLayer, WasmMatmul, WasmRowSums, WasmScorer } from '../../wasm/index.ts';

export type WasmBuild = 'release' | 'debug';

/** Compiles wasm/build/<build>.wasm (made by `npm run build:wasm`) without instantiating it. */
export async function compileWasmKernels(build: WasmBuild = 'release'): Promise<WebAssembly.Module> {
  const url = new URL(`../../wasm/build/${build}.wasm`, import.meta.url);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(await readFile(url));
  } catch {
    throw new Error(`${url.pathname} is missing: run \`npm run build:wasm\``);
  }
  return WebAssembly.compile(bytes);
}

/** Compiles and instantiates wasm/build/<build>.wasm. */
export async function loadWasmKernels(build: WasmBuild = 'release') {
  return instantiateKernels(await compileWasmKernels(build));
}

/** The factored ranker's first-layer kernel on a fresh instance of a compiled module, synchronously (one per table). */
export function createWasmFirstLayer(module: WebAssembly.Module): WasmFirstLayer {
  return new WasmFirstLayer(instantiateKernelsSync(module));
}

export async function createWasmScorer(build: WasmBuild = 'release'): Promise<WasmScorer> {
  return new WasmScorer(await loadWasmKernels(build));
}

/** The SIMD GEMM kernel on its own instance (it owns that instance's memory above heapBase). */
export async function createWasmMatmul(build: WasmBuild = 'release'): Promise<WasmMatmul> {
  return new WasmMatmul(await loadWasmKernels(build));
}

/** The row-sum kernel on its own instance, for one resident matrix (WasmRowSums.setMatrix). */
export async function createWasmRowSums(build: WasmBuild = 'release'): Promise<WasmRowSums> {
  return new WasmRowSums(await loadWasmKernels(build));
}
