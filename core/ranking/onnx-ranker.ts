// The `Ranker` port (./ranker.ts) on onnxruntime-node: the CPU path of core ranking. The spec is
// read back from the model's metadata; ONNX Runtime runs the model's dense layers, and the
// embedding bags are pooled in TypeScript from the model's own tables (training/models/forward.ts,
// `networkInput` and `networkOutput`), the same arithmetic as the graph's Gather and pooling MatMul.
//
// Why not the whole graph: on 1,000 candidates of the ml-100k ranker, ORT's Gathers and batched
// pooling MatMuls took ~1.4 ms of a ~1.9 ms run (its own profile), and building its int64 feeds
// another ~0.25 ms, while the three dense layers took ~0.2 ms. The layers alone, as an ONNX model
// cut from the same weights at open time, run in ~0.16 ms; the pooling here takes ~0.5 ms on the
// same inputs (~0.75 ms inside a serving request, the tables colder in cache).
import { networkInput, networkInputWidth, networkOutput, networkOutputWidth } from '../../training/models/forward.ts';
import type { NetworkInputs } from '../../training/models/spec.ts';
import { exportNetwork, readNetwork } from '../../training/onnx/network.ts';
import { createNodeSession } from './onnx-session.ts';
import type { Ranker, RankerOptions } from './ranker.ts';

/** The dense layers' input in the cut model: the pooled bags and dense features, [batch × width]. */
const POOLED_INPUT = 'pooled';

export async function openOnnxRanker(bytes: Uint8Array, options: RankerOptions = {}): Promise<Ranker> {
  const spec = readNetwork(bytes);
  const outputs = networkOutputWidth(spec);
  const width = networkInputWidth(spec);
  const layers = exportNetwork({ bags: [], dense: { name: POOLED_INPUT, size: width }, layers: spec.layers, output: 'none', outputName: spec.outputName });
  const session = await createNodeSession(layers, options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads });
  let closed = false;
  return {
    kind: 'onnx',
    outputs,
    async score(inputs: NetworkInputs): Promise<Float32Array> {
      if (closed) throw new Error('the onnx ranker is closed');
      const { batch } = inputs;
      if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`batch must be a non-negative integer, got ${batch}`);
      // ORT rejects zero-sized feeds on some ops; an empty batch has an empty answer.
      if (batch === 0) return new Float32Array(0);
      // A network with no bags (the factored ranker, ./factored.ts) takes its dense input as it is.
      const dense = inputs.dense;
      const pooled = spec.bags.length === 0 && dense !== undefined && dense.length === batch * width ? dense : networkInput(spec, inputs);
      // ORT sessions accept concurrent runs, so calls need no queue here.
      const result = await session.run({ [POOLED_INPUT]: { data: pooled, dims: [batch, width] } });
      const logits = result[spec.outputName];
      if (logits === undefined) throw new Error(`the model gave no output '${spec.outputName}'`);
      if (logits.length !== batch * outputs) {
        throw new Error(`output '${spec.outputName}' has ${logits.length} values, expected batch × outputs = ${batch * outputs}`);
      }
      return networkOutput(spec, inputs, logits);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}
