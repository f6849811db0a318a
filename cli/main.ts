import { doctorCommand } from './commands/doctor.ts';
import { edgeCommand } from './commands/edge.ts';
import { exportCommand } from './commands/export.ts';
import { generateCommand } from './commands/generate.ts';
import { importCommand } from './commands/import.ts';
import { infraCommand } from './commands/infra.ts';
import { serveCommand } from './commands/serve.ts';
import { startCommand } from './commands/start.ts';
import { trainCommand } from './commands/train.ts';
import { recommendCommand } from './commands/recommend.ts';
import { evaluateCommand } from './commands/evaluate.ts';
import { servedJoinCommand } from './commands/served-join.ts';
import { UsageError } from './command.ts';
import type { Command } from './command.ts';

const commands: Command[] = [startCommand, serveCommand, edgeCommand, infraCommand, doctorCommand, generateCommand, importCommand, exportCommand, trainCommand, servedJoinCommand, evaluateCommand, recommendCommand];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: kestrel <command> [options]',
    '',
    'Kestrel: a two-stage recommendation engine (two-tower retrieval + Wide&Deep ranking)',
    'with an edge tier on Cloudflare Workers and a regional core.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `kestrel <command> --help` for a command\'s options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`kestrel: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`kestrel ${name}: ${err.message}\n\n${command.help}`);
      return 2;
    }
    console.error(`kestrel ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
