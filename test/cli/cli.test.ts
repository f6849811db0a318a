import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SERVED_RETENTION_DAYS, servingConfig } from '../../cli/commands/serve.ts';
import { main } from '../../cli/main.ts';
import { captureConsole } from '../support/console.ts';



afterEach(() => vi.restoreAllMocks());

describe('kestrel CLI', () => {
  it('lists its commands with --help', async () => {
    const io = captureConsole();
    expect(await main(['--help'])).toBe(0);
    for (const name of ['start', 'infra', 'doctor']) expect(io.out()).toMatch(new RegExp(`^  ${name} `, 'm'));
  });

  it.each(['start', 'infra', 'doctor'])('prints usage for `kestrel %s --help` and exits 0', async (name) => {
    const io = captureConsole();
    expect(await main([name, '--help'])).toBe(0);
    expect(io.out()).toContain(`Usage: kestrel ${name}`);
  });

  it('rejects an unknown command with exit 2 and the list of commands', async () => {
    const io = captureConsole();
    expect(await main(['trian'])).toBe(2);
    expect(io.err()).toContain("unknown command 'trian'");
    expect(io.err()).toContain('Commands:');
  });

  it('names the unknown service and the valid ones for `infra up`', async () => {
    const io = captureConsole();
    expect(await main(['infra', 'up', 'postgres'])).toBe(2);
    expect(io.err()).toContain("unknown service 'postgres'; choose from webgpu, milvus, kafka");
  });

  it('names a bad port and the accepted range', async () => {
    const io = captureConsole();
    expect(await main(['start', '--core-port', 'eighty'])).toBe(2);
    expect(io.err()).toContain("--core-port must be a port number 1-65535, got 'eighty'");
  });

  it('names a bad --engine-threads and the accepted range, before opening anything', async () => {
    const io = captureConsole();
    expect(await main(['serve', '--models', 'no-such-registry', '--engine-threads', 'two'])).toBe(2);
    expect(io.err()).toContain("--engine-threads must be a whole number from 0 to 64, not 'two'");
  });

  it('names a bad --served-retention-days, and one given without a model registry', async () => {
    const io = captureConsole();
    expect(await main(['serve', '--models', 'no-such-registry', '--served-retention-days', 'a week'])).toBe(2);
    expect(io.err()).toContain("--served-retention-days must be a whole number of days (0 keeps the log for ever), not 'a week'");
    const dir = mkdtempSync(join(tmpdir(), 'kestrel-cli-retention-'));
    try {
      expect(await main(['serve', '--data', dir, '--served-retention-days', '3'])).toBe(2);
      expect(io.err()).toContain('--served-retention-days need a model registry: pass --models DIR');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a week of the served-features log unless told otherwise; 0 keeps it for ever', () => {
    const models = mkdtempSync(join(tmpdir(), 'kestrel-cli-models-'));
    try {
      const retention = (days?: string) => servingConfig({ port: 0, host: '127.0.0.1', models, ...(days === undefined ? {} : { servedRetentionDays: days }) }).serving?.featureLogRetentionDays;
      expect(retention()).toBe(DEFAULT_SERVED_RETENTION_DAYS);
      expect(DEFAULT_SERVED_RETENTION_DAYS).toBe(7);
      expect(retention('30')).toBe(30);
      expect(retention('0')).toBeUndefined();
    } finally {
      rmSync(models, { recursive: true, force: true });
    }
  });

  it('rejects an unknown flag', async () => {
    const io = captureConsole();
    expect(await main(['doctor', '--fix-everything'])).toBe(2);
    expect(io.err()).toContain('--fix-everything');
  });

  it('doctor reports every prerequisite, with a fix under anything missing, and exits 1 only then', async () => {
    const io = captureConsole();
    const code = await main(['doctor']);
    const lines = io.out().split('\n');
    for (const what of ['Node.js', 'SQLite (better-sqlite3)', 'embedded HNSW (hnswlib-node)', 'WASM kernels']) {
      expect(lines.find((l) => l.includes(what))).toMatch(/^ok /);
    }
    for (const what of ['Java 17+ (Kafka)', 'Maven', 'Vulkan loader', 'milvus running', 'kafka running']) {
      expect(lines.some((l) => l.includes(what))).toBe(true);
    }
    const missing = lines.flatMap((l, i) => (l.startsWith('MISSING') ? [i] : []));
    for (const i of missing) expect(lines[i + 1]).toMatch(/fix: \S/);
    expect(code).toBe(missing.length > 0 ? 1 : 0);
  }, 30_000);
});
