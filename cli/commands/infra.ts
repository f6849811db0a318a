import { infraDescriptions, infraServices, serviceStatus, startService, stopService } from '../../scripts/infra.ts';
import type { InfraService } from '../../scripts/infra.ts';
import { parseCommandLine, UsageError } from '../command.ts';
import type { Command } from '../command.ts';

const help = `Usage: kestrel infra <up|down|status> [service...]

Starts, stops or reports the real servers Kestrel's adapters and tests use. Each is run by its
own script in scripts/ with data under .infra/ (git-ignored); the scripts install what they need.

Services:
${infraServices.map((s) => `  ${s.padEnd(7)} ${infraDescriptions[s]}`).join('\n')}

With no service named, acts on all of them. 'up' and 'down' are idempotent.

Options:
  -h, --help  Show this help.`;

function pickServices(names: string[]): InfraService[] {
  if (names.length === 0) return [...infraServices];
  return names.map((name) => {
    const service = infraServices.find((s) => s === name);
    if (!service) throw new UsageError(`unknown service '${name}'; choose from ${infraServices.join(', ')}`);
    return service;
  });
}

export const infraCommand: Command = {
  name: 'infra',
  summary: 'Start, stop or report Milvus, Kafka and the WebGPU driver (up|down|status)',
  help,
  async run(argv) {
    const { positionals } = parseCommandLine(argv, {});
    const [verb, ...names] = positionals;
    const services = pickServices(names);
    const log = (line: string) => console.log(line);
    switch (verb) {
      case 'up':
        // One after the other: two cores, and each start prints its own progress.
        for (const s of services) await startService(s, log);
        return 0;
      case 'down':
        for (const s of [...services].reverse()) await stopService(s, log);
        return 0;
      case 'status': {
        const states = await Promise.all(services.map(serviceStatus));
        for (const state of states) console.log(state.line);
        return states.every((s) => s.running) ? 0 : 3;
      }
      default:
        throw new UsageError(verb === undefined ? 'say up, down or status' : `unknown verb '${verb}'; say up, down or status`);
    }
  },
};
