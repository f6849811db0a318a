import { existsSync, readdirSync } from 'node:fs';
import { formatTable, makeReport, writeReport } from './harness.ts';
import type { BenchSuite } from './harness.ts';

const suitesDir = new URL('./suites/', import.meta.url);
const resultsDir = new URL('./results/', import.meta.url);

function available(): string[] {
  return readdirSync(suitesDir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();
}

export async function main(argv: string[]): Promise<number> {
  const [name] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(`Usage: npm run bench -- <suite>\n\nRuns a benchmark suite, prints its table and writes bench/results/<suite>.json\n(scale-serve with KESTREL_SCALE_SERVE_ITEMS other than 1000000: scale-serve-<N>k.json).\n\nSuites: ${available().join(', ')}`);
    return name === undefined ? 2 : 0;
  }
  if (!/^[a-z0-9-]+$/.test(name) || !existsSync(new URL(`${name}.ts`, suitesDir))) {
    console.error(`bench: no suite '${name}'; choose from ${available().join(', ')}`);
    return 2;
  }
  const { suite } = (await import(new URL(`${name}.ts`, suitesDir).href)) as { suite: BenchSuite };
  console.log(`bench ${name}: ${suite.description}`);
  const notes: Record<string, string | number> = {};
  const rows = await suite.run(notes);
  const report = makeReport(name, rows, notes);
  console.log(`\n${formatTable(rows)}\n`);
  for (const [k, v] of Object.entries(notes)) console.log(`  ${k}: ${v}`);
  console.log(`\nwrote ${writeReport(report, resultsDir, suite.resultName)}`);
  return 0;
}
