// The `Ranker` port (./ranker.ts) on onnxruntime-node: the CPU path of core ranking. The spec read
// back from the model's metadata names the dense input and the output, and gives the output width;
// the feeds are training/onnx/network.ts's `networkFeeds`, the layout the exporter wrote.
import { networkOutputWidth } from '../../training/models/forward.ts';
import type { NetworkInputs } from '../../training/models/spec.ts';
import { networkFeeds, readNetwork } from '../../training/onnx/network.ts';
import { createNodeSession } from './onnx-session.ts';
import type { Ranker, RankerOptions } from './ranker.ts';

export async function openOnnxRanker(bytes: Uint8Array, options: RankerOptions = {}): Promise<Ranker> {
  const spec = readNetwork(bytes);
  const outputs = networkOutputWidth(spec);
  const session = await createNodeSession(bytes, options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads });
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
      // ORT sessions accept concurrent runs, so calls need no queue here.
      const result = await session.run(networkFeeds(inputs, spec.dense));
      const logits = result[spec.outputName];
      if (logits === undefined) throw new Error(`the model gave no output '${spec.outputName}'`);
      if (logits.length !== batch * outputs) {
        throw new Error(`output '${spec.outputName}' has ${logits.length} values, expected batch × outputs = ${batch * outputs}`);
      }
      return logits;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}
