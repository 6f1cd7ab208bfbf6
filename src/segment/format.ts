import { ByteReader, ByteWriter, CorruptionError, crc32 } from '../util/index.ts';

/**
 * Byte layout of a log segment (docs/FORMAT.md has the prose version).
 *
 *   record*            each: 32-byte header + payload
 *   summary record     type SUMMARY: one entry per record above (owner, key, offset, length)
 *   [commit record]    type COMMIT, commit segments only
 *   trailer            64 bytes, fixed, at the very end
 *
 * Every record carries a CRC-32 over its header and payload, and the trailer a CRC over itself, so
 * a reader can verify any record it fetches with one ranged GET, and recovery can verify a commit
 * from the last bytes of an object.
 */

export const FORMAT_VERSION = 1;

export const RECORD_MAGIC = 0x31524c53; // "SLR1" little-endian
export const RECORD_HEADER_BYTES = 32;
/** "SILTSEG1" in ASCII, read as a little-endian u64. */
export const TRAILER_MAGIC = 0x31474553544c4953n;
export const TRAILER_BYTES = 64;
/** Data records are split at this size so a random read verifies at most this many bytes. */
export const DATA_RECORD_BYTES_MAX = 64 * 1024;

export const RecordType = {
  DATA: 1,
  NODE: 2,
  SUMMARY: 8,
  COMMIT: 9,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const SegmentKind = {
  DATA: 1,
  COMMIT: 2,
} as const;
export type SegmentKind = (typeof SegmentKind)[keyof typeof SegmentKind];

export interface RecordHeader {
  type: RecordType;
  /** Inode that owns the record (0 for volume-wide trees). */
  owner: number;
  /** Data: file offset of the payload. Node: tree level. Otherwise 0. */
  key: number;
  payloadLength: number;
  crc: number;
}

/** Encode a header + payload into `out` at `pos`; returns the record length. */
export function encodeRecord(
  out: Uint8Array,
  pos: number,
  type: RecordType,
  owner: number,
  key: number,
  payload: Uint8Array,
): number {
  const view = new DataView(out.buffer, out.byteOffset + pos, RECORD_HEADER_BYTES);
  view.setUint32(0, RECORD_MAGIC, true);
  view.setUint8(4, type);
  view.setUint8(5, 0);
  view.setUint16(6, 0, true);
  view.setBigUint64(8, BigInt(owner), true);
  view.setBigUint64(16, BigInt(key), true);
  view.setUint32(24, payload.length, true);
  out.set(payload, pos + RECORD_HEADER_BYTES);
  const crc = crc32(payload, crc32(out.subarray(pos, pos + 28)));
  view.setUint32(28, crc, true);
  return RECORD_HEADER_BYTES + payload.length;
}

export function decodeRecordHeader(buf: Uint8Array, what: string): RecordHeader {
  if (buf.length < RECORD_HEADER_BYTES) throw new CorruptionError(`${what}: record header truncated`);
  const view = new DataView(buf.buffer, buf.byteOffset, RECORD_HEADER_BYTES);
  if (view.getUint32(0, true) !== RECORD_MAGIC) throw new CorruptionError(`${what}: bad record magic`);
  const type = view.getUint8(4);
  if (type !== RecordType.DATA && type !== RecordType.NODE && type !== RecordType.SUMMARY && type !== RecordType.COMMIT) {
    throw new CorruptionError(`${what}: unknown record type ${type}`);
  }
  const owner = view.getBigUint64(8, true);
  const key = view.getBigUint64(16, true);
  if (owner > BigInt(Number.MAX_SAFE_INTEGER) || key > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CorruptionError(`${what}: record header field out of range`);
  }
  return {
    type,
    owner: Number(owner),
    key: Number(key),
    payloadLength: view.getUint32(24, true),
    crc: view.getUint32(28, true),
  };
}

/**
 * Verify a whole record (header + payload) and return its header and payload view.
 * `expectType` guards against a location that points at the wrong kind of record.
 */
export function decodeRecord(
  rec: Uint8Array,
  what: string,
  expectType?: RecordType,
): { header: RecordHeader; payload: Uint8Array } {
  const header = decodeRecordHeader(rec, what);
  if (RECORD_HEADER_BYTES + header.payloadLength !== rec.length) {
    throw new CorruptionError(
      `${what}: record length ${rec.length} does not match header (${RECORD_HEADER_BYTES + header.payloadLength})`,
    );
  }
  const payload = rec.subarray(RECORD_HEADER_BYTES);
  const crc = crc32(payload, crc32(rec.subarray(0, 28)));
  if (crc !== header.crc) throw new CorruptionError(`${what}: record checksum mismatch`);
  if (expectType !== undefined && header.type !== expectType) {
    throw new CorruptionError(`${what}: expected record type ${expectType}, found ${header.type}`);
  }
  return { header, payload };
}

/** One line of a segment summary: where a record is and who owns it (LFS-style). */
export interface SummaryEntry {
  type: RecordType;
  owner: number;
  key: number;
  off: number;
  len: number;
}

export function encodeSummary(entries: readonly SummaryEntry[]): Uint8Array {
  const w = new ByteWriter(8 + entries.length * 25);
  w.u32(entries.length);
  for (const e of entries) w.u8(e.type).u64(e.owner).u64(e.key).u32(e.off).u32(e.len);
  return w.finish();
}

export function decodeSummary(payload: Uint8Array): SummaryEntry[] {
  const r = new ByteReader(payload, 'segment summary');
  const n = r.u32();
  if (n * 25 > r.remaining) throw new CorruptionError('segment summary: entry count exceeds payload');
  const out: SummaryEntry[] = [];
  for (let i = 0; i < n; i++) {
    const type = r.u8() as RecordType;
    out.push({ type, owner: r.u64(), key: r.u64(), off: r.u32(), len: r.u32() });
  }
  r.expectEnd();
  return out;
}

export interface Trailer {
  version: number;
  kind: SegmentKind;
  segmentId: number;
  summaryOff: number;
  summaryLen: number;
  /** Commit record location (0/0 in data segments). */
  commitOff: number;
  commitLen: number;
  /** Whole object length including the trailer. */
  totalLen: number;
}

export function encodeTrailer(t: Trailer): Uint8Array {
  const out = new Uint8Array(TRAILER_BYTES);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, TRAILER_MAGIC, true);
  v.setUint16(8, t.version, true);
  v.setUint8(10, t.kind);
  v.setUint8(11, 0);
  v.setUint32(12, 0, true);
  v.setBigUint64(16, BigInt(t.segmentId), true);
  v.setUint32(24, t.summaryOff, true);
  v.setUint32(28, t.summaryLen, true);
  v.setUint32(32, t.commitOff, true);
  v.setUint32(36, t.commitLen, true);
  v.setBigUint64(40, BigInt(t.totalLen), true);
  // 48..60 reserved (zero)
  v.setUint32(60, crc32(out.subarray(0, 60)), true);
  return out;
}

export function decodeTrailer(buf: Uint8Array, what: string): Trailer {
  if (buf.length !== TRAILER_BYTES) throw new CorruptionError(`${what}: trailer truncated (${buf.length} bytes)`);
  const v = new DataView(buf.buffer, buf.byteOffset, TRAILER_BYTES);
  if (v.getBigUint64(0, true) !== TRAILER_MAGIC) throw new CorruptionError(`${what}: bad trailer magic`);
  if (v.getUint32(60, true) !== crc32(buf.subarray(0, 60))) throw new CorruptionError(`${what}: trailer checksum mismatch`);
  const version = v.getUint16(8, true);
  if (version !== FORMAT_VERSION) throw new CorruptionError(`${what}: unsupported format version ${version}`);
  const kind = v.getUint8(10);
  if (kind !== SegmentKind.DATA && kind !== SegmentKind.COMMIT) throw new CorruptionError(`${what}: bad segment kind ${kind}`);
  const segmentId64 = v.getBigUint64(16, true);
  const totalLen64 = v.getBigUint64(40, true);
  if (segmentId64 > BigInt(Number.MAX_SAFE_INTEGER) || totalLen64 > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CorruptionError(`${what}: trailer field out of range`);
  }
  const t: Trailer = {
    version,
    kind,
    segmentId: Number(segmentId64),
    summaryOff: v.getUint32(24, true),
    summaryLen: v.getUint32(28, true),
    commitOff: v.getUint32(32, true),
    commitLen: v.getUint32(36, true),
    totalLen: Number(totalLen64),
  };
  const body = t.totalLen - TRAILER_BYTES;
  if (t.summaryOff + t.summaryLen > body || t.commitOff + t.commitLen > body) {
    throw new CorruptionError(`${what}: trailer points outside the segment`);
  }
  return t;
}

/**
 * Segment ids name objects without a lookup: commit segments have even ids (2 * commit sequence)
 * and live at `<volume>/log/<sequence>`, data segments odd ids (2 * number + 1) at
 * `<volume>/seg/<number>`. The commit sequence is dense (recovery probes it); data segment numbers
 * come from the volume's nonce.
 */
export function commitSegmentId(seq: number): number {
  return seq * 2;
}
export function dataSegmentId(n: number): number {
  return n * 2 + 1;
}
export function isCommitSegment(id: number): boolean {
  return id % 2 === 0;
}
export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}
export function segmentKey(volumePrefix: string, id: number): string {
  return isCommitSegment(id) ? `${volumePrefix}log/${hex16(id / 2)}` : `${volumePrefix}seg/${hex16((id - 1) / 2)}`;
}
export function commitKey(volumePrefix: string, seq: number): string {
  return `${volumePrefix}log/${hex16(seq)}`;
}
