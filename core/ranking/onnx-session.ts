// Run an ONNX model on onnxruntime-node (native CPU) or onnxruntime-web (WebAssembly) behind one
// port. Each runtime is imported lazily, so using one never loads the other.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface FeedTensor {
  readonly data: Float32Array | BigInt64Array;
  readonly dims: readonly number[];
}

export type Feeds = Readonly<Record<string, FeedTensor>>;

export interface OnnxSession {
  readonly runtime: 'onnxruntime-node' | 'onnxruntime-web';
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model; every output must be float32. */
  run(feeds: Feeds): Promise<Record<string, Float32Array>>;
  /** Frees native/wasm memory. Call once per session; a released session cannot run. */
  release(): Promise<void>;
}

export interface NodeSessionOptions {
  /**
   * Threads one run may use. Default 1: the core serves many requests at once, and a run per
   * request on one thread each beats contending for a shared pool.
   */
  readonly intraOpThreads?: number;
}

export interface WebSessionOptions {
  /**
   * WebAssembly threads (worker_threads in Node; no cross-origin isolation is needed there).
   * onnxruntime-web starts its wasm module once per process, so every web session must agree.
   */
  readonly numThreads?: number;
}

type Tensorish = { readonly type: string; readonly data: unknown };

function float32Outputs(outputs: Readonly<Record<string, Tensorish>>): Record<string, Float32Array> {
  const result: Record<string, Float32Array> = {};
  for (const [name, tensor] of Object.entries(outputs)) {
    if (!(tensor.data instanceof Float32Array)) {
      throw new TypeError(`output '${name}' is ${tensor.type}; OnnxSession.run returns float32 outputs only`);
    }
    result[name] = tensor.data;
  }
  return result;
}

/** The part of an ORT InferenceSession both runtimes share, as far as OnnxSession needs it. */
interface OrtSession<T> {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, T>): Promise<Readonly<Record<string, Tensorish>>>;
  release(): Promise<void>;
}

function wrapSession<T>(runtime: OnnxSession['runtime'], session: OrtSession<T>, tensor: (f: FeedTensor) => T): OnnxSession {
  return {
    runtime,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const tensors: Record<string, T> = {};
      for (const [name, f] of Object.entries(feeds)) tensors[name] = tensor(f);
      return float32Outputs(await session.run(tensors));
    },
    release: () => session.release(),
  };
}

function checkThreads(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${n}`);
}

/**
 * onnxruntime-node's native session (its `dist/binding.js`, "a simple synchronized inference
 * session object wrap"): `run` computes on the calling thread and returns the outputs.
 */
interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  readonly inputMetadata: readonly { name: string }[];
  readonly outputMetadata: readonly { name: string }[];
  run(feeds: Record<string, unknown>, fetches: Record<string, null>, options: object): Record<string, Tensorish>;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

/**
 * A session on onnxruntime-node. Its public `InferenceSession.run` defers the (synchronous) native
 * run to a `setImmediate`, so a request waiting on it resumes only after every callback the event
 * loop has queued meanwhile: under load, other requests' work runs between a request's features
 * and its ranking. Here `run` calls the native session directly, on the calling thread, and the
 * promise it returns is already settled.
 */
export async function createNodeSession(model: Uint8Array, options: NodeSessionOptions = {}): Promise<OnnxSession> {
  const intraOpThreads = options.intraOpThreads ?? 1;
  checkThreads('intraOpThreads', intraOpThreads);
  const ort = await import('onnxruntime-node');
  const { binding, initOrt } = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as NativeBinding;
  initOrt();
  const session = new binding.InferenceSession();
  session.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
  });
  const inputNames = session.inputMetadata.map((m) => m.name);
  const outputNames = session.outputMetadata.map((m) => m.name);
  const fetches: Record<string, null> = Object.fromEntries(outputNames.map((name) => [name, null]));
  let released = false;
  return {
    runtime: 'onnxruntime-node',
    inputNames,
    outputNames,
    async run(feeds) {
      if (released) throw new Error('the onnxruntime-node session is released');
      const tensors: Record<string, unknown> = {};
      for (const [name, f] of Object.entries(feeds)) tensors[name] = new ort.Tensor(f.data, f.dims);
      return float32Outputs(session.run(tensors, fetches, {}));
    },
    async release() {
      if (released) return;
      released = true;
      session.dispose();
    },
  };
}

let webThreads: number | undefined;

/** The folder holding ort-wasm-simd-threaded.{mjs,wasm}, as a file URL ending in '/'. */
function ortWebDistUrl(): string {
  // Resolves to <pkg>/dist/ort.node.min.js; the wasm files sit beside it.
  const entry = createRequire(import.meta.url).resolve('onnxruntime-web');
  return `${pathToFileURL(dirname(entry)).href}/`;
}

export async function createWebSession(model: Uint8Array, options: WebSessionOptions = {}): Promise<OnnxSession> {
  const numThreads = options.numThreads ?? 1;
  checkThreads('numThreads', numThreads);
  if (webThreads !== undefined && webThreads !== numThreads) {
    throw new Error(
      `onnxruntime-web is already running with numThreads ${webThreads}; create every web session with that value`,
    );
  }
  const ort = await import('onnxruntime-web');
  if (webThreads === undefined) {
    // Without wasmPaths the runtime guesses a location relative to its own script, which a bundler
    // or test transform may have moved; point it at the package on disk instead.
    ort.env.wasm.wasmPaths = ortWebDistUrl();
    ort.env.wasm.numThreads = numThreads;
    ort.env.wasm.simd = true;
    ort.env.wasm.proxy = false;
    webThreads = numThreads;
  }
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  return wrapSession('onnxruntime-web', session, (f) => new ort.Tensor(f.data, f.dims));
}
