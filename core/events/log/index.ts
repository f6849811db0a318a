export { logSource, openLogBus } from './bus.ts';
export type { LogBusOptions } from './bus.ts';
export { SegmentLog, frame, frameTexts, HEADER_BYTES, MAX_RECORD_BYTES, DEFAULT_SEGMENT_BYTES } from './segment-log.ts';
export type { LogRecord, RecoveryReport, SegmentLogOptions } from './segment-log.ts';
export { crc32, crc32Table } from './crc32.ts';
export { acquireLogLock, LOCK_FILE, LogLockedError } from './lock.ts';
export type { LogLock } from './lock.ts';
