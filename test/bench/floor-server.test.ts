// The serve bench's reference server (bench/floor-server.ts): it answers like a recommendations
// endpoint, and each request costs about the CPU it was asked to spend.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpuSeconds, startServerProcess } from '../../bench/core-process.ts';
import { answerBody, unitsPerCpuMs } from '../../bench/floor-server.ts';

const FLOOR = fileURLToPath(new URL('../../bench/floor-server.ts', import.meta.url));

describe('floor server', () => {
  it('makes an answer of 20 items, padded to the size asked', () => {
    for (const bytes of [1200, 2600, 9000]) {
      const body = answerBody(bytes);
      expect(body.length).toBe(bytes);
      expect((JSON.parse(body) as { items: unknown[] }).items).toHaveLength(20);
    }
  });

  it('calibrates a positive amount of work per millisecond of CPU', () => {
    expect(unitsPerCpuMs(50)).toBeGreaterThan(0);
  });

  it('answers every request, each costing at least about the CPU asked', async () => {
    const workMs = 5;
    const server = await startServerProcess('the floor server', ['--import', 'tsx', FLOOR, '--work-ms', String(workMs), '--bytes', '2600'],
      async (url) => (await fetch(url)).ok, 60_000);
    try {
      const requests = 60;
      const before = cpuSeconds(server.child.pid) ?? 0;
      const answers = await Promise.all(Array.from({ length: requests }, async (_, i) => {
        const res = await fetch(`${server.url}/v1/recommendations/${i}?n=20`);
        return { status: res.status, body: await res.text() };
      }));
      const cpuMs = ((cpuSeconds(server.child.pid) ?? 0) - before) * 1000;
      expect(answers.every((a) => a.status === 200 && a.body === answerBody(2600))).toBe(true);
      // Fixed work can only cost more CPU under contention, never much less than calibrated.
      expect(cpuMs / requests).toBeGreaterThan(workMs * 0.5);
    } finally {
      await server.stop();
    }
  }, 90_000);
});
