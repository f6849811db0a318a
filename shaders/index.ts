export * from './score.ts';
export * from './matmul.ts';
export * from './wide-deep.ts';
