// The listwise click loss of the ranker (softmax over each list of candidates): its gradient
// against finite differences, and lists without a positive or rows of no list left alone.
import { describe, expect, it } from 'vitest';
import { listwiseClick } from '../../../training/ranker/train.ts';

describe('listwise click loss', () => {
  // Two objectives per row; the click logit is at 2k. Rows 0–3 are list 7, rows 4–5 list 9 (no
  // positive), row 6 belongs to no list.
  const order = Int32Array.from([0, 1, 2, 3, 4, 5, 6]);
  const group = Int32Array.from([7, 7, 7, 7, 9, 9, -1]);
  const click = Uint8Array.from([0, 1, 0, 1, 0, 0, 1]);
  const logits = Float32Array.from([0.3, 9, -1.2, 9, 0.8, 9, 2.0, 9, 0.1, 9, -0.4, 9, 1.5, 9]);

  it('is −Σ_pos log softmax / n_pos per list, averaged over the rows', () => {
    const grad = new Float32Array(logits.length);
    const loss = listwiseClick(logits, click, order, group, 0, 7, 1, grad);
    const z = [0.3, -1.2, 0.8, 2.0];
    const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    const expected = -((-1.2 - lse) + (2.0 - lse)) / 2 / 7;
    expect(loss).toBeCloseTo(expected, 6);
  });

  it('has the gradient finite differences give, and none for other lists, rows or logits', () => {
    const grad = new Float32Array(logits.length);
    listwiseClick(logits, click, order, group, 0, 7, 1, grad);
    const eps = 1e-3;
    for (let k = 0; k < 4; k++) {
      const plus = Float64Array.from(logits);
      const minus = Float64Array.from(logits);
      plus[2 * k] = (plus[2 * k] ?? 0) + eps;
      minus[2 * k] = (minus[2 * k] ?? 0) - eps;
      const f = (l: Float64Array) => listwiseClick(Float32Array.from(l), click, order, group, 0, 7, 1, new Float32Array(l.length));
      const numeric = (f(plus) - f(minus)) / (2 * eps);
      expect(Math.abs((grad[2 * k] ?? 0) - numeric)).toBeLessThan(1e-4);
    }
    for (const k of [4, 5, 6]) expect(grad[2 * k]).toBe(0);
    for (let k = 0; k < 7; k++) expect(grad[2 * k + 1]).toBe(0);
  });
});
