// A worker for test/core/threads.test.ts: says it started, then spins for the milliseconds each
// message asks and answers with what it computed (a thread whose CPU time the test can read).
import { parentPort } from 'node:worker_threads';

if (parentPort === null) throw new Error('spin.thread.ts runs as a worker thread');
const port = parentPort;
port.on('message', (ms: number) => {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  port.postMessage(x);
});
port.postMessage('started');
