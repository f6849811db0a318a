// Starts the real servers the suites talk to (the WebGPU driver, Milvus, Kafka) when they are not
// already running, and stops at the end only what it started. KESTREL_NO_INFRA=1 skips all of it,
// for running one suite against servers you manage yourself.
import { infraServices, serviceStatus, startService, stopService } from '../../scripts/infra.ts';
import type { InfraService } from '../../scripts/infra.ts';

const started: InfraService[] = [];

export async function setup(): Promise<void> {
  if (process.env.KESTREL_NO_INFRA === '1') return;
  await Promise.all(infraServices.map(async (service) => {
    if ((await serviceStatus(service)).running) return;
    await startService(service, (line) => process.stderr.write(`[infra] ${line}\n`));
    started.push(service);
  }));
}

export async function teardown(): Promise<void> {
  for (const service of started.reverse()) {
    await stopService(service, (line) => process.stderr.write(`[infra] ${line}\n`));
  }
}
