import { describe, expect, it } from 'vitest';
import { RequestScratch, ScratchPool } from '../../core/serving/scratch.ts';

describe('a request\'s scratch arrays', () => {
  it('are zero-filled at the length asked, the same memory for the same name', () => {
    const scratch = new RequestScratch();
    const a = scratch.float32('rows', 10);
    expect(a).toHaveLength(10);
    a.fill(7);
    const again = scratch.float32('rows', 8);
    expect(again).toHaveLength(8);
    expect([...again]).toEqual(new Array(8).fill(0));
    expect(again.buffer).toBe(a.buffer);
    // Another name, or another element type, is other memory.
    const other = scratch.float32('embeddings', 10);
    expect(other.buffer).not.toBe(a.buffer);
    const ints = scratch.int32('rows', 10);
    ints.fill(3);
    expect([...scratch.float32('rows', 10)]).toEqual(new Array(10).fill(0));
    expect([...scratch.int32('rows', 10)]).toEqual(new Array(10).fill(0));
    expect(scratch.float64('scores', 5)).toBeInstanceOf(Float64Array);
  });

  it('grow when a request asks for more, and keep room for a little more', () => {
    const scratch = new RequestScratch();
    const small = scratch.int32('slots', 4);
    const big = scratch.int32('slots', 1_000);
    expect(big).toHaveLength(1_000);
    expect(big.buffer).not.toBe(small.buffer);
    expect(scratch.int32('slots', 1_100).buffer).toBe(big.buffer);
  });

  it('refuse a length that is not a whole number ≥ 0', () => {
    const scratch = new RequestScratch();
    expect(() => scratch.float32('rows', -1)).toThrow(/scratch array 'rows' needs a whole length ≥ 0, got -1/);
    expect(() => scratch.float64('rows', 1.5)).toThrow(RangeError);
  });
});

describe('the pool of scratches', () => {
  it('gives each request in flight its own, and a returned one to the next', () => {
    const pool = new ScratchPool();
    const first = pool.take();
    const second = pool.take();
    expect(second).not.toBe(first);
    pool.give(first);
    pool.give(first);
    expect(pool.free).toBe(1);
    expect(pool.take()).toBe(first);
    expect(pool.take()).not.toBe(second);
  });

  it('keeps at most eight between requests', () => {
    const pool = new ScratchPool();
    const taken = Array.from({ length: 12 }, () => pool.take());
    for (const scratch of taken) pool.give(scratch);
    expect(pool.free).toBe(8);
  });
});
