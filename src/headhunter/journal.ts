import { ByteReader, ByteWriter, CorruptionError, assert } from '../util/index.ts';

/**
 * The journal of a delta commit: a redo log of what changed since the commit before it, so that a
 * durable commit carries the new data and a few bytes per change instead of rewritten B+tree
 * nodes. The trees themselves are written only at checkpoints; recovery opens the newest
 * checkpoint's trees and replays the journals of every delta commit after it, in order
 * (replay.ts). docs/FORMAT.md, "Delta commits and the journal", is the prose version.
 *
 * A commit's journal lists its INODE entries first (the attributes of every inode changed since
 * the commit before, as of this commit), then the tree and lifecycle entries in the order they
 * happened, then the LIVE entries. Entries are tree-level and replay exactly given the
 * checkpoint they follow:
 *   INODE ino record        the inode's attributes (its encoded record; the tree root in it is
 *                           ignored: a tree is whatever the checkpoint and the entries made it)
 *   UNLINK ino              the last link went: the inode leaves the inode table
 *   FREE ino                an unlinked inode was freed: its trees' nodes are released
 *   DIR_PUT ino kv          a directory entry set   (key and value in the directory codecs)
 *   DIR_DEL ino k           a directory entry removed
 *   EXT_PUT ino kv          an extent set           (key and value in the extent codecs)
 *   EXT_DEL ino k           an extent removed
 *   TREE_DROP ino           the file's extent map was emptied without releasing its data
 *                           (its extents moved to another file)
 *   LIVE seg delta          live bytes of data records in a segment changed by delta
 * Live bytes of tree nodes are not journaled: replay re-derives them, since replaying the same
 * tree operations from the same checkpoint supersedes the same nodes.
 */
export const JournalOp = {
  INODE: 1,
  UNLINK: 2,
  FREE: 3,
  DIR_PUT: 4,
  DIR_DEL: 5,
  EXT_PUT: 6,
  EXT_DEL: 7,
  TREE_DROP: 8,
  LIVE: 9,
} as const;
export type JournalOp = (typeof JournalOp)[keyof typeof JournalOp];

export type JournalEntry =
  | { op: typeof JournalOp.INODE; ino: number; record: Uint8Array }
  | { op: typeof JournalOp.UNLINK | typeof JournalOp.FREE | typeof JournalOp.TREE_DROP; ino: number }
  | { op: typeof JournalOp.DIR_PUT | typeof JournalOp.DIR_DEL | typeof JournalOp.EXT_PUT | typeof JournalOp.EXT_DEL; ino: number; kv: Uint8Array }
  | { op: typeof JournalOp.LIVE; seg: number; delta: number };

/**
 * The journal being built for the next commit (appended to under the volume lock): tree and
 * lifecycle entries as they happen; the INODE and LIVE entries are added when the commit is made.
 */
export class JournalWriter {
  private w = new ByteWriter(4096);
  private n = 0;

  /** Entries appended since the last take. */
  get count(): number {
    return this.n;
  }
  /** Encoded bytes appended since the last take. */
  get bytes(): number {
    return this.w.length;
  }

  mark(op: typeof JournalOp.UNLINK | typeof JournalOp.FREE | typeof JournalOp.TREE_DROP, ino: number): void {
    this.w.u8(op).u64(ino);
    this.n++;
  }
  tree(op: typeof JournalOp.DIR_PUT | typeof JournalOp.DIR_DEL | typeof JournalOp.EXT_PUT | typeof JournalOp.EXT_DEL, ino: number, kv: Uint8Array): void {
    this.w.u8(op).u64(ino).blob(kv);
    this.n++;
  }

  /** Forget what was appended (a checkpoint covers it). */
  discard(): void {
    this.w = new ByteWriter(4096);
    this.n = 0;
  }

  /**
   * The encoded journal of a commit: `inodes` (attributes as of the commit), the entries appended
   * since the last take, then `live` (segment -> delta, zeros skipped). Starts a new journal.
   */
  take(inodes: Iterable<[number, Uint8Array]>, live: Iterable<[number, number]>): Uint8Array {
    const head = new ByteWriter(256);
    const tail = new ByteWriter(64);
    let n = this.n;
    for (const [ino, record] of inodes) {
      head.u8(JournalOp.INODE).u64(ino).blob(record);
      n++;
    }
    for (const [seg, delta] of live) {
      if (delta === 0) continue;
      assert(Number.isSafeInteger(delta), `journal: bad live delta ${delta}`);
      tail.u8(JournalOp.LIVE).u64(seg).i64(BigInt(delta));
      n++;
    }
    const out = new ByteWriter(4 + head.length + this.w.length + tail.length);
    out.u32(n).bytes(head.finish()).bytes(this.w.finish()).bytes(tail.finish());
    this.discard();
    return out.finish();
  }
}

/** Decode a journal; anything malformed is a CorruptionError naming `what`. */
export function decodeJournal(bytes: Uint8Array, what: string): JournalEntry[] {
  const r = new ByteReader(bytes, what);
  const n = r.u32();
  const out: JournalEntry[] = [];
  for (let i = 0; i < n; i++) {
    const op = r.u8();
    switch (op) {
      case JournalOp.INODE:
        out.push({ op, ino: r.u64(), record: Uint8Array.from(r.blob()) });
        break;
      case JournalOp.UNLINK:
      case JournalOp.FREE:
      case JournalOp.TREE_DROP:
        out.push({ op, ino: r.u64() });
        break;
      case JournalOp.DIR_PUT:
      case JournalOp.DIR_DEL:
      case JournalOp.EXT_PUT:
      case JournalOp.EXT_DEL:
        out.push({ op, ino: r.u64(), kv: Uint8Array.from(r.blob()) });
        break;
      case JournalOp.LIVE: {
        const seg = r.u64();
        const delta = r.i64();
        if (delta === 0n || delta > BigInt(Number.MAX_SAFE_INTEGER) || delta < -BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new CorruptionError(`${what}: journal entry ${i}: live delta out of range`);
        }
        out.push({ op, seg, delta: Number(delta) });
        break;
      }
      default:
        throw new CorruptionError(`${what}: journal entry ${i}: unknown operation ${op}`);
    }
  }
  r.expectEnd();
  return out;
}
