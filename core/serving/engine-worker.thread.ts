// An engine thread of engine-pool.ts: a follower ServingHost (host.ts) on its own catalog
// connection, answering the recommendation and slate requests the main thread posts to it.
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteCatalog } from '../catalog/index.ts';
import { encodeRecommendation } from './engine.ts';
import type { StageTimer } from './engine.ts';
import type { EngineThreadOptions, FromThread, TimerEvent, ToThread } from './engine-pool.ts';
import { ServingHost } from './host.ts';

if (parentPort === null) throw new Error('engine-worker.thread.ts runs as a worker thread: use EnginePool');
const port = parentPort;
const options = workerData as EngineThreadOptions;
const post = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

// Timer calls gathered between answers; each answer carries those made since the last one.
let timings: TimerEvent[] = [];
const timer: StageTimer = {
  stage: (stage, seconds) => timings.push(['stage', stage, seconds]),
  candidates: (source, count) => timings.push(['candidates', source, count]),
  sourceError: (source) => timings.push(['error', source, 1]),
};
const taken = (): TimerEvent[] => {
  const out = timings;
  timings = [];
  return out;
};

// Erasures may arrive while the host is still opening: kept and applied once it is open.
const erasures: { userId: string; at: number }[] = [];
let host: ServingHost | undefined;
const catalog = openSqliteCatalog(options.catalogPath);
let shown: string | undefined;

async function answer(message: Extract<ToThread, { type: 'recommend' | 'candidates' }>): Promise<void> {
  try {
    const engine = host?.engine;
    if (engine === undefined) throw new Error('this engine thread has no model loaded');
    const value = message.type === 'recommend'
      ? encodeRecommendation(await engine.track(() => engine.recommend(message.userId, message.request)))
      : await engine.track(() => engine.candidates(message.userId, message.request));
    // A recommendation's served-features line moves to the main thread instead of being copied.
    post({ type: 'answer', id: message.id, value, timings: taken() }, 'served' in value ? [value.served.bytes.buffer as ArrayBuffer] : []);
  } catch (error) {
    post({ type: 'failed', id: message.id, message: error instanceof Error ? error.message : String(error), timings: taken() });
  }
}

let closing: Promise<void> | undefined;
async function close(): Promise<void> {
  clearInterval(watch);
  await host?.close();
  catalog.close();
  post({ type: 'closed' });
  port.close();
}

port.on('message', (message: ToThread) => {
  switch (message.type) {
    case 'recommend':
    case 'candidates':
      void answer(message);
      return;
    case 'erase':
      if (host === undefined) erasures.push(message);
      else host.eraseUser(message.userId, message.at);
      return;
    case 'close':
      closing ??= close();
      return;
    default:
      return;
  }
});

// Tells the pool which version this thread serves whenever it changes (a load or a swap).
const watch = setInterval(() => {
  const version = host?.engine?.version;
  if (version !== shown) {
    shown = version;
    post({ type: 'ready', version });
  }
}, 100);

host = await ServingHost.open({
  registryRoot: options.registryRoot, dataDir: options.dataDir, interactions: catalog.interactions, eventTypes: options.eventTypes,
  ranker: options.ranker, index: options.index, config: options.config, timer, follower: true,
  log: (line) => post({ type: 'log', line: line.replace('kestrel core:', 'kestrel core (engine thread):') }),
  ...(options.modelPollMs !== undefined ? { modelPollMs: options.modelPollMs } : {}),
  ...(options.refreshMs !== undefined ? { refreshMs: options.refreshMs } : {}),
});
for (const { userId, at } of erasures.splice(0)) host.eraseUser(userId, at);
if (closing !== undefined) await host.close();
