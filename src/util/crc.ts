import zlib from 'node:zlib';

/** CRC-32 (IEEE) of bytes, optionally continuing from `initial`. zlib.crc32 is native in Node 20.15+. */
export function crc32(data: Uint8Array, initial = 0): number {
  return zlib.crc32(data, initial) >>> 0;
}
