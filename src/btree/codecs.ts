/** Stock codecs for the common key and value shapes. Callers own richer ones (directory keys, extents). */
import type { KeyCodec, ValueCodec } from './types.ts';

/** A non-negative safe integer key, stored as u64. */
export const u64Key: KeyCodec<number> = {
  compare: (a, b) => a - b,
  encode: (k, w) => void w.u64(k),
  decode: (r) => r.u64(),
};

/** Opaque bytes, u32 length-prefixed. Decoding copies, so values never alias a node buffer. */
export const bytesValue: ValueCodec<Uint8Array> = {
  encode: (v, w) => void w.blob(v),
  decode: (r) => r.blob().slice(),
};
