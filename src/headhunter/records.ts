import { createHash } from 'node:crypto';
import type { KeyCodec, ValueCodec } from '../btree/index.ts';
import type { Loc } from '../segment/index.ts';
import { ByteReader, ByteWriter, CorruptionError } from '../util/index.ts';

/** One piece of a file: bytes [skip, skip+n) of the data record at `rec` hold file bytes [key, key+n). */
export interface Extent {
  rec: Loc;
  skip: number;
  n: number;
}

export const extentValue: ValueCodec<Extent> = {
  encode: (e, w) => void w.u64(e.rec.seg).u32(e.rec.off).u32(e.rec.len).u32(e.skip).u32(e.n),
  decode: (r) => ({ rec: { seg: r.u64(), off: r.u32(), len: r.u32() }, skip: r.u32(), n: r.u32() }),
};

export const offsetKey: KeyCodec<number> = {
  compare: (a, b) => a - b,
  encode: (k, w) => void w.u64(k),
  decode: (r) => r.u64(),
};

/**
 * Directory keys sort by a 52-bit hash of the name, then the name bytes. The hash is the readdir
 * cookie, so a listing resumes at the right place however the directory changes in between
 * (entries are never renumbered). Two names sharing a 52-bit hash would share a cookie; with
 * n entries that has probability about n^2 / 2^53.
 */
export interface DirKey {
  h: number;
  name: Uint8Array;
}
export interface DirValue {
  ino: number;
  /** mode & S_IFMT */
  type: number;
}

export function nameHash(name: Uint8Array): number {
  const d = createHash('sha1').update(name).digest();
  // 52 bits: a safe integer, and cookie = h + 3 stays safe too
  return d.readUIntBE(0, 6) * 16 + (d[6]! >> 4);
}

export const dirKey: KeyCodec<DirKey> = {
  compare: (a, b) => (a.h !== b.h ? a.h - b.h : Buffer.compare(a.name, b.name)),
  encode: (k, w) => void w.u64(k.h).u16(k.name.length).bytes(k.name),
  decode: (r) => {
    const h = r.u64();
    return { h, name: Uint8Array.from(r.bytes(r.u16())) };
  },
};
export const dirValue: ValueCodec<DirValue> = {
  encode: (v, w) => void w.u64(v.ino).u32(v.type),
  decode: (r) => ({ ino: r.u64(), type: r.u32() }),
};

/** The stored form of an inode (a value in the inode table). */
export interface InodeRecord {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: number;
  size: number;
  /** Payload bytes referenced by extents (for st_blocks). */
  allocated: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  crtimeNs: bigint;
  generation: number;
  /** Directories: the inode of the directory holding this one (the root names itself). 0 otherwise. */
  parent: number;
  /** Root of the directory tree or extent map; undefined when empty/none. */
  treeRoot: Loc | undefined;
  symlinkTarget: string | undefined;
  xattrs: Map<string, Uint8Array>;
}

const INODE_RECORD_VERSION = 1;

export function encodeInode(i: InodeRecord): Uint8Array {
  const w = new ByteWriter(128);
  w.u8(INODE_RECORD_VERSION);
  w.u32(i.mode).u32(i.uid).u32(i.gid).u32(i.nlink).u32(i.rdev).u64(i.size).u64(i.allocated);
  w.i64(i.atimeNs).i64(i.mtimeNs).i64(i.ctimeNs).i64(i.crtimeNs).u64(i.generation).u64(i.parent);
  if (i.treeRoot) w.u8(1).u64(i.treeRoot.seg).u32(i.treeRoot.off).u32(i.treeRoot.len);
  else w.u8(0);
  if (i.symlinkTarget !== undefined) w.u8(1).blob(Buffer.from(i.symlinkTarget, 'utf8'));
  else w.u8(0);
  w.u16(i.xattrs.size);
  for (const [k, v] of i.xattrs) w.str(k).blob(v);
  return w.finish();
}

export function decodeInode(b: Uint8Array, ino: number): InodeRecord {
  const r = new ByteReader(b, `inode ${ino}`);
  const version = r.u8();
  if (version !== INODE_RECORD_VERSION) throw new CorruptionError(`inode ${ino}: unknown record version ${version}`);
  const mode = r.u32();
  const uid = r.u32();
  const gid = r.u32();
  const nlink = r.u32();
  const rdev = r.u32();
  const size = r.u64();
  const allocated = r.u64();
  const atimeNs = r.i64();
  const mtimeNs = r.i64();
  const ctimeNs = r.i64();
  const crtimeNs = r.i64();
  const generation = r.u64();
  const parent = r.u64();
  const treeRoot = r.u8() ? { seg: r.u64(), off: r.u32(), len: r.u32() } : undefined;
  const symlinkTarget = r.u8() ? Buffer.from(r.blob()).toString('utf8') : undefined;
  const n = r.u16();
  const xattrs = new Map<string, Uint8Array>();
  for (let k = 0; k < n; k++) xattrs.set(r.str(), Uint8Array.from(r.blob()));
  r.expectEnd();
  return { mode, uid, gid, nlink, rdev, size, allocated, atimeNs, mtimeNs, ctimeNs, crtimeNs, generation, parent, treeRoot, symlinkTarget, xattrs };
}
