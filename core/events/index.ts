export { commitPositions, decodeEvent, encodeEvent } from './bus.ts';
export type { BatchHandler, Delivery, EventBus, SubscribeOptions, Subscription } from './bus.ts';
export { openLogBus } from './log/index.ts';
export type { LogBusOptions } from './log/index.ts';
export { openKafkaBus } from './kafka.ts';
export type { KafkaBus, KafkaBusOptions } from './kafka.ts';
