// The EventBus contract against the embedded segment log, in a temporary folder.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openLogBus } from '../../core/events/log/index.ts';
import { runEventBusContract } from './event-bus.case.ts';

const root = await mkdtemp(join(tmpdir(), 'kestrel-bus-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

runEventBusContract({
  name: 'embedded segment log',
  // Small segments, so the cases also cross segment rollovers.
  newBus: (storage) => openLogBus(join(root, storage), { segmentBytes: 256 * 1024 }),
  timeoutMs: 30_000,
});
