// `connectVia` is checked when the bus opens, with a message that says what to write.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../core/events/kafka-client.ts';
import { openKafkaBus } from '../../core/events/kafka.ts';

describe('connectVia', () => {
  it('reads host:port, IPv6 in brackets included', () => {
    expect(parseAddress('127.0.0.1:19092', 'connectVia')).toEqual({ host: '127.0.0.1', port: 19092 });
    expect(parseAddress('kafka.internal:9092', 'connectVia')).toEqual({ host: 'kafka.internal', port: 9092 });
    expect(parseAddress('[::1]:9092', 'connectVia')).toEqual({ host: '::1', port: 9092 });
  });

  it.each(['localhost', ':9092', 'host:', 'host:0', 'host:70000', 'host:nine'])('refuses %j, saying what to write', (address) => {
    expect(() => parseAddress(address, 'connectVia')).toThrow(`connectVia '${address}' is not host:port (for example 127.0.0.1:19092)`);
  });

  it('stops openKafkaBus before it touches the spool or the network', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kestrel-connect-via-'));
    try {
      await expect(openKafkaBus({ brokers: ['127.0.0.1:1'], spoolDir: join(dir, 'spool'), connectVia: 'nowhere' }))
        .rejects.toThrow(/connectVia 'nowhere' is not host:port/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
