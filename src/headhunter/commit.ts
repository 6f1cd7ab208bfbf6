import { ByteReader, ByteWriter, CorruptionError } from '../util/index.ts';
import type { Loc } from '../segment/index.ts';

/** A named, retained commit: its roots stay alive (snapshots; issue 8). */
export interface SnapshotRef {
  name: string;
  seq: number;
  createdMs: number;
  inodeTableRoot: Loc;
}

/**
 * The commit record at the end of a commit segment: the durable state of the whole volume.
 *
 * A *checkpoint* names the roots of trees written in full. A *delta* commit builds on the newest
 * checkpoint before it: its state is that checkpoint's trees with the journals of every commit
 * after the checkpoint, up to and including this one, replayed in order (journal.ts). Both carry
 * the volume-wide counters as of their own commit.
 */
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
  /** 'checkpoint': the roots above are this commit's trees. 'delta': they are the checkpoint's. */
  kind: 'checkpoint' | 'delta';
  /** The checkpoint this commit builds on (its own sequence for a checkpoint). */
  checkpointSeq: number;
  /** nonceNext of that checkpoint: data segments from it on may be named by journals only (gc). */
  checkpointNonceNext: number;
  /** A delta commit's journal (encoded); empty for a checkpoint. */
  journal: Uint8Array;
}

/** Version 2 added delta commits (kind, checkpoint, journal); version 1 records are checkpoints. */
export const COMMIT_VERSION = 2;

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
  w.u8(c.kind === 'checkpoint' ? KIND_CHECKPOINT : KIND_DELTA).u64(c.checkpointSeq).u64(c.checkpointNonceNext).blob(c.journal);
  return w.finish();
}

const KIND_CHECKPOINT = 1;
const KIND_DELTA = 2;

export function decodeCommit(payload: Uint8Array, what: string): CommitRecord {
  const r = new ByteReader(payload, what);
  const version = r.u16();
  if (version !== 1 && version !== COMMIT_VERSION) throw new CorruptionError(`${what}: unsupported commit version ${version}`);
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
  let kind: CommitRecord['kind'] = 'checkpoint';
  let checkpointSeq = seq;
  let checkpointNonceNext = nonceNext;
  let journal: Uint8Array = new Uint8Array(0);
  if (version >= 2) {
    const k = r.u8();
    if (k !== KIND_CHECKPOINT && k !== KIND_DELTA) throw new CorruptionError(`${what}: unknown commit kind ${k}`);
    kind = k === KIND_CHECKPOINT ? 'checkpoint' : 'delta';
    checkpointSeq = r.u64();
    checkpointNonceNext = r.u64();
    journal = Uint8Array.from(r.blob());
  }
  r.expectEnd();
  if (prevSeq >= seq) throw new CorruptionError(`${what}: commit ${seq} claims predecessor ${prevSeq}`);
  if (kind === 'checkpoint' ? checkpointSeq !== seq || journal.length !== 0 : checkpointSeq >= seq || checkpointSeq < 1) {
    throw new CorruptionError(`${what}: ${kind} commit ${seq} names checkpoint ${checkpointSeq}`);
  }
  if (checkpointNonceNext > nonceNext) throw new CorruptionError(`${what}: checkpoint nonce ${checkpointNonceNext} above the commit's ${nonceNext}`);
  return { version, volumeId, seq, prevSeq, timeMs, nonceNext, inodeTableRoot, segmentTableRoot, inodeCount, snapshots, kind, checkpointSeq, checkpointNonceNext, journal };
}
