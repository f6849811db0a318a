// The ranker's retrieval blend: the weight chosen on validation lists, and the exact linear path
// that carries it into the exported network.
import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from '../../../core/domain/random.ts';
import { forwardNetwork } from '../../../training/models/forward.ts';
import type { DenseLayerSpec, NetworkSpec } from '../../../training/models/spec.ts';
import { chooseBlendWeight, withLinearSkip } from '../../../training/ranker/blend.ts';

const CLICK_ONLY = { click: 1, engagement: 0 };

function randomLayers(widths: readonly number[], rng: Xoshiro128): DenseLayerSpec[] {
  return widths.slice(1).map((outputs, l) => ({
    inputs: widths[l] ?? 1, outputs,
    weight: Float32Array.from({ length: (widths[l] ?? 1) * outputs }, () => rng.next() - 0.5),
    bias: Float32Array.from({ length: outputs }, () => rng.next() - 0.5),
    activation: l + 2 < widths.length ? 'relu' : 'none',
  }));
}

describe('withLinearSkip', () => {
  it.each([[[6, 2]], [[6, 5, 2]], [[6, 8, 4, 2]]])('adds weight · x[input] to one output of %j layers, exactly', (widths) => {
    const rng = new Xoshiro128(3);
    const layers = randomLayers(widths, rng);
    const batch = 9;
    const dense = Float32Array.from({ length: batch * 6 }, () => 4 * (rng.next() - 0.5));
    const net = (l: DenseLayerSpec[]): NetworkSpec => ({ bags: [], dense: { name: 'dense', size: 6 }, layers: l, output: 'none', outputName: 'out' });
    const before = forwardNetwork(net(layers), { batch, bags: {}, dense });
    const after = forwardNetwork(net(withLinearSkip(layers, 4, 0, 1.5)), { batch, bags: {}, dense });
    for (let b = 0; b < batch; b++) {
      expect(after[b * 2]).toBeCloseTo((before[b * 2] ?? 0) + 1.5 * (dense[b * 6 + 4] ?? 0), 5);
      expect(after[b * 2 + 1]).toBeCloseTo(before[b * 2 + 1] ?? 0, 6);
    }
    expect(withLinearSkip(layers, 4, 0, 0)).toEqual(layers);
  });
});

describe('chooseBlendWeight', () => {
  // Two lists of four rows (click logit, engagement logit); feature 1 of two dense features is the retrieval score.
  const group = Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1);
  const dense = Float32Array.of(0, -1, 0, 2, 0, 0, 0, 0, 0, -1, 0, 2, 0, 0, 0, 0);

  it('takes the weight that ranks the lists best', () => {
    // The ranker puts row 0 first, the retrieval score row 1; row 1 is the positive.
    const click = Uint8Array.of(0, 1, 0, 0, 0, 1, 0, 0);
    const logits = Float32Array.of(1, 0, 0, 0, 0.5, 0, 0.2, 0, 1, 0, 0, 0, 0.5, 0, 0.2, 0);
    const choice = chooseBlendWeight({ click, group, dense }, 0, 8, logits, 1, 2, CLICK_ONLY, 1, [0, 0.25, 1, 4]);
    expect(choice.weight).toBe(1);
    expect(choice.lists).toBe(2);
    expect(choice.validNdcg['0']).toBe(0);
    expect(choice.validNdcg['1']).toBe(1);
  });

  it('keeps 0 when the ranker alone is best, and skips lists without a positive', () => {
    const click = Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0);
    const logits = Float32Array.of(1, 0, 0, 0, 0.5, 0, 0.2, 0, 1, 0, 0, 0, 0.5, 0, 0.2, 0);
    const choice = chooseBlendWeight({ click, group, dense }, 0, 8, logits, 1, 2, CLICK_ONLY, 1, [0, 0.25, 1, 4]);
    expect(choice.weight).toBe(0);
    expect(choice.lists).toBe(1);
  });
});
