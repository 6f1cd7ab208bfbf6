/**
 * ETags: the MD5 of a file's content, kept in the xattr `user.silt.md5` together with the inode
 * generation (and size and mtime) it belongs to. The fs layer bumps the generation on every change,
 * so a stamp whose generation is not the file's current one is stale and the MD5 is computed again.
 *
 * A stamp is itself a setxattr, which bumps the generation by one: a stamp written at generation g
 * records g + 1 (plus what the caller knows it will do next, e.g. the rename that publishes a PUT).
 * Nothing here can make a stale MD5 look current: generations only grow, so a change that slips in
 * between the check and the stamp leaves the stamp one or more generations behind.
 */
import { createHash } from 'node:crypto';
import { FsError, type Logger } from '../util/index.ts';
import type { Attr, FileSystem, Identity } from '../fs/index.ts';
import type { Gate } from './gate.ts';

export const MD5_XATTR = 'user.silt.md5';
export const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
/** Bytes per fs.read while hashing or serving, and reads in flight at once. */
export const READ_CHUNK_BYTES = 1024 * 1024;
export const READ_DEPTH = 4;

interface Stamp {
  md5: string;
  generation: number;
  size: number;
  mtimeNs: bigint;
}

export function encodeStamp(s: Stamp): Uint8Array {
  return Buffer.from(`${s.md5} ${s.generation} ${s.size} ${s.mtimeNs}`, 'ascii');
}

function decodeStamp(v: Uint8Array): Stamp | undefined {
  const m = /^([0-9a-f]{32}) (\d{1,16}) (\d{1,16}) (-?\d{1,24})$/.exec(Buffer.from(v).toString('ascii'));
  if (!m) return undefined;
  return { md5: m[1]!, generation: Number(m[2]), size: Number(m[3]), mtimeNs: BigInt(m[4]!) };
}

/** Does this stamp describe the file as it is now? */
function current(s: Stamp, a: Attr): boolean {
  return s.generation === a.generation && s.size === a.size && s.mtimeNs === a.mtimeNs;
}

/**
 * Read [start, end) of a file as a stream of chunks, with up to `depth` reads in flight (the
 * segment layer serves concurrent reads of one file much faster than one at a time). A file
 * that shrinks under the reader ends the stream early (the caller compares lengths).
 */
export async function* readRange(
  fs: FileSystem,
  who: Identity,
  ino: number,
  start: number,
  end: number,
  chunkBytes = READ_CHUNK_BYTES,
  depth = READ_DEPTH,
): AsyncGenerator<Uint8Array> {
  let off = start;
  const queue: Array<{ want: number; p: Promise<Uint8Array> }> = [];
  const fill = (): void => {
    while (queue.length < depth && off < end) {
      const want = Math.min(chunkBytes, end - off);
      const p = fs.read(who, ino, off, want);
      p.catch(() => {}); // awaited below; a reader that stops early must not leave it unhandled
      queue.push({ want, p });
      off += want;
    }
  };
  fill();
  while (queue.length > 0) {
    const { want, p } = queue.shift()!;
    const cur = await p;
    if (cur.length > 0) yield cur;
    if (cur.length < want) return; // end of file
    fill();
  }
}

export class EtagCache {
  /** MD5s computed by reading a file (not taken from a stamp or a PUT stream). */
  computed = 0;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly fs: FileSystem,
    private readonly log: Logger,
    private readonly gate: Gate,
  ) {}

  /** The stamp on a file if it is current. */
  async cached(who: Identity, a: Attr): Promise<string | undefined> {
    let v: Uint8Array;
    try {
      v = await this.fs.getxattr(who, a.ino, MD5_XATTR);
    } catch (err) {
      if (err instanceof FsError && (err.errno === 'ENODATA' || err.errno === 'EACCES' || err.errno === 'EPERM')) return undefined;
      throw err;
    }
    const s = decodeStamp(v);
    return s && current(s, a) ? s.md5 : undefined;
  }

  /**
   * The MD5 of a regular file's content as of `a` (its current attributes). Computed and stamped
   * when no current stamp exists; concurrent requests for the same generation share one read.
   * A file that keeps changing while it is read gets EAGAIN (503) after a few tries.
   */
  async etag(who: Identity, a: Attr): Promise<string> {
    if (a.size === 0) return EMPTY_MD5;
    const hit = await this.cached(who, a);
    if (hit) return hit;
    const k = `${a.ino}:${a.generation}`;
    let p = this.inflight.get(k);
    if (!p) {
      p = this.gate.run(() => this.compute(who, a)).finally(() => this.inflight.delete(k));
      this.inflight.set(k, p);
    }
    return p;
  }

  private async compute(who: Identity, first: Attr): Promise<string> {
    let a = first;
    for (let attempt = 0; attempt < 3; attempt++) {
      const h = createHash('md5');
      let n = 0;
      for await (const c of readRange(this.fs, who, a.ino, 0, a.size)) {
        h.update(c);
        n += c.length;
      }
      this.computed++;
      const md5 = h.digest('hex');
      const after = await this.fs.getattr(who, a.ino);
      if (after.generation === a.generation && n === a.size) {
        await this.stamp(who, after, md5, 1);
        return md5;
      }
      a = after; // changed while we read it: again, at the new generation
      if (a.size === 0) return EMPTY_MD5;
    }
    throw new FsError('EAGAIN', `inode ${first.ino} kept changing while its MD5 was computed`);
  }

  /**
   * Record that the content of the file described by `a` has this MD5, valid `bumps` generations
   * later (the stamp's own setxattr is one; a rename that follows is another). Best effort: a file
   * we may not write keeps no stamp and is hashed again next time.
   */
  async stamp(who: Identity, a: Attr, md5: string, bumps: number): Promise<void> {
    try {
      await this.fs.setxattr(who, a.ino, MD5_XATTR, encodeStamp({ md5, generation: a.generation + bumps, size: a.size, mtimeNs: a.mtimeNs }));
    } catch (err) {
      this.log.debug('objapi: cannot stamp an MD5', { ino: a.ino, err: String(err) });
    }
  }
}
