/**
 * util: the bottom of the stack, importable by every layer. Holds no state: errors, assertions,
 * checksums, the injected clock and PRNG, an async mutex and a logger interface.
 */
export * from './errors.ts';
export * from './assert.ts';
export * from './clock.ts';
export * from './mutex.ts';
export * from './log.ts';
export * from './crc.ts';
export * from './bytes.ts';
export * from './borrowed.ts';
export * from './failpoints.ts';
export * from './posix.ts';
export * from './metrics.ts';
