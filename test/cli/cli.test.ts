import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  return { out: () => out.join('\n'), err: () => err.join('\n') };
}

afterEach(() => vi.restoreAllMocks());

describe('kestrel CLI', () => {
  it('lists its commands with --help', async () => {
    const io = capture();
    expect(await main(['--help'])).toBe(0);
    for (const name of ['start', 'infra', 'doctor']) expect(io.out()).toMatch(new RegExp(`^  ${name} `, 'm'));
  });

  it.each(['start', 'infra', 'doctor'])('prints usage for `kestrel %s --help` and exits 0', async (name) => {
    const io = capture();
    expect(await main([name, '--help'])).toBe(0);
    expect(io.out()).toContain(`Usage: kestrel ${name}`);
  });

  it('rejects an unknown command with exit 2 and the list of commands', async () => {
    const io = capture();
    expect(await main(['trian'])).toBe(2);
    expect(io.err()).toContain("unknown command 'trian'");
    expect(io.err()).toContain('Commands:');
  });

  it('names the unknown service and the valid ones for `infra up`', async () => {
    const io = capture();
    expect(await main(['infra', 'up', 'postgres'])).toBe(2);
    expect(io.err()).toContain("unknown service 'postgres'; choose from webgpu, milvus, kafka");
  });

  it('names a bad port and the accepted range', async () => {
    const io = capture();
    expect(await main(['start', '--core-port', 'eighty'])).toBe(2);
    expect(io.err()).toContain("--core-port must be a port number 1-65535, got 'eighty'");
  });

  it('rejects an unknown flag', async () => {
    const io = capture();
    expect(await main(['doctor', '--fix-everything'])).toBe(2);
    expect(io.err()).toContain('--fix-everything');
  });
});
