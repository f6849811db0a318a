#!/usr/bin/env node
// `npm run bench -- <suite>`: runs bench/suites/<suite>.ts through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../bench/run.ts');
process.exitCode = await main(process.argv.slice(2));
