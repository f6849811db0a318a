export * from './score.ts';
export * from './matmul.ts';
