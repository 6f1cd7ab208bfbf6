import { ByteReader, ByteWriter, CorruptionError } from '../util/index.ts';
import type { Loc } from '../segment/index.ts';

/** A named, retained commit: its roots stay alive (snapshots; issue 8). */
export interface SnapshotRef {
  name: string;
  seq: number;
  createdMs: number;
  inodeTableRoot: Loc;
}

/** The commit record at the end of a commit segment: the durable state of the whole volume. */
export interface CommitRecord {
  version: number;
  /** 16 random bytes chosen at mkfs, hex. Guards against mixing volumes. */
  volumeId: string;
  seq: number;
  /** Sequence of the commit this one was built on (0 for the first). */
  prevSeq: number;
  timeMs: number;
  /** Every nonce (inode number, data segment number) below this was possibly used. */
  nonceNext: number;
  inodeTableRoot: Loc;
  segmentTableRoot: Loc;
  /** Counts kept for `silt stat` without a tree walk. */
  inodeCount: number;
  snapshots: SnapshotRef[];
}

export const COMMIT_VERSION = 1;

function writeLoc(w: ByteWriter, l: Loc): void {
  w.u64(l.seg).u32(l.off).u32(l.len);
}
function readLoc(r: ByteReader): Loc {
  return { seg: r.u64(), off: r.u32(), len: r.u32() };
}

export function encodeCommit(c: CommitRecord): Uint8Array {
  const w = new ByteWriter(256);
  w.u16(c.version);
  w.bytes(Buffer.from(c.volumeId, 'hex'));
  w.u64(c.seq).u64(c.prevSeq).u64(c.timeMs).u64(c.nonceNext);
  writeLoc(w, c.inodeTableRoot);
  writeLoc(w, c.segmentTableRoot);
  w.u64(c.inodeCount);
  w.u16(c.snapshots.length);
  for (const s of c.snapshots) {
    w.str(s.name).u64(s.seq).u64(s.createdMs);
    writeLoc(w, s.inodeTableRoot);
  }
  return w.finish();
}

export function decodeCommit(payload: Uint8Array, what: string): CommitRecord {
  const r = new ByteReader(payload, what);
  const version = r.u16();
  if (version !== COMMIT_VERSION) throw new CorruptionError(`${what}: unsupported commit version ${version}`);
  const volumeId = Buffer.from(r.bytes(16)).toString('hex');
  const seq = r.u64();
  const prevSeq = r.u64();
  const timeMs = r.u64();
  const nonceNext = r.u64();
  const inodeTableRoot = readLoc(r);
  const segmentTableRoot = readLoc(r);
  const inodeCount = r.u64();
  const n = r.u16();
  const snapshots: SnapshotRef[] = [];
  for (let i = 0; i < n; i++) {
    snapshots.push({ name: r.str(), seq: r.u64(), createdMs: r.u64(), inodeTableRoot: readLoc(r) });
  }
  r.expectEnd();
  if (prevSeq >= seq) throw new CorruptionError(`${what}: commit ${seq} claims predecessor ${prevSeq}`);
  return { version, volumeId, seq, prevSeq, timeMs, nonceNext, inodeTableRoot, segmentTableRoot, inodeCount, snapshots };
}
