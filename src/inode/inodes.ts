import { BTree } from '../btree/index.ts';
import type { Volume } from '../headhunter/index.ts';
import { DATA_RECORD_BYTES_MAX, RecordType, type Loc } from '../segment/index.ts';
import {
  FsError,
  S_IFDIR,
  S_IFMT,
  assert,
  copyOut,
  metrics,
  releaseAll,
  systemClock,
  type Borrowed,
  type Clock,
} from '../util/index.ts';
import {
  JournalOp,
  decodeInode,
  dirKey,
  dirValue,
  encodeInode,
  extentValue,
  nameHash,
  offsetKey,
  type DirKey,
  type DirValue,
  type Extent,
} from '../headhunter/index.ts';
import { Inode } from './inode.ts';

export interface InodeLayerOptions {
  /** The time-based flusher commits dirty state at least this often (0 disables it). */
  flushIntervalMs: number;
  /** Clean, unused inodes kept in memory at most. */
  inodeCacheMax: number;
  /** A sequential run longer than this streams into data segments instead of the commit segment. */
  largeRunBytes: number;
  /** Loaded tree nodes kept per tree after a commit (clean ones beyond are unloaded). */
  treeNodesMax: number;
  clock: Clock;
}

export const defaultInodeLayerOptions: InodeLayerOptions = {
  flushIntervalMs: 1000,
  inodeCacheMax: 50_000,
  largeRunBytes: 1024 * 1024,
  treeNodesMax: 4096,
  clock: systemClock,
};

export const ROOT_INO = 1;

/** Quiet flusher intervals after a delta commit before the flusher makes a checkpoint. */
const CHECKPOINT_IDLE_INTERVALS = 5;

/** A piece of a read: zeros (a hole) or bytes [skip, skip+n) of a data record. */
export type ReadPiece = { zero: number } | { ext: Extent; from: number; n: number };

/**
 * How far (bytes) a read may start from where the last one ended and still continue a sequential
 * run: the kernel sends several reads at once, and they arrive out of order.
 */
const READ_SEQUENTIAL_SLACK_BYTES = 2 * 1024 * 1024;
/** Read-ahead keeps this many of the segment reader's windows requested ahead of a sequential reader. */
const READ_AHEAD_WINDOWS = 3;

/** Shared zeros for holes (never modified: read replies only copy from it). */
const ZEROS = new Uint8Array(1024 * 1024);
function zeros(n: number): Uint8Array {
  return n <= ZEROS.length ? ZEROS.subarray(0, n) : new Uint8Array(n);
}

/** Bytes [from, from + n) of a record payload held as pieces, as views. */
function slice(parts: readonly Uint8Array[], from: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  for (const p of parts) {
    const a = Math.max(from, pos);
    const b = Math.min(from + n, pos + p.length);
    if (a < b) out.push(p.subarray(a - pos, b - pos));
    pos += p.length;
  }
  let got = 0;
  for (const p of out) got += p.length;
  assert(got === n, 'extent points past its record');
  return out;
}

/** Readdir cookies: 1 and 2 follow "." and ".."; an entry's cookie is its name hash + 3. */
const COOKIE_DOT = 1n;
const COOKIE_DOTDOT = 2n;

export interface DirListing {
  name: Uint8Array;
  value: DirValue;
  cookie: bigint;
}

/**
 * The inode layer: a bounded cache of inodes over the volume's inode table, file extent maps,
 * directories, and the time-based flusher. Every method expects the caller to hold the volume
 * lock, except `fetch` (reads record bytes) and `start`/`stop`.
 */
export class Inodes {
  private readonly cache = new Map<number, Inode>();
  /** Inodes changed since the last commit: their attributes go into the next delta's journal. */
  private readonly changedSinceCommit = new Set<Inode>();
  /** Inodes changed since the last checkpoint: held in memory, written at the next one. */
  private readonly changedSinceCheckpoint = new Set<Inode>();
  /** Inodes the next checkpoint removes from the inode table. */
  private readonly tableDeletes = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  readonly opts: InodeLayerOptions;

  constructor(
    readonly volume: Volume,
    opts: Partial<InodeLayerOptions> = {},
  ) {
    this.opts = { ...defaultInodeLayerOptions, ...opts };
    volume.setCommitHook((kind) => this.commitHook(kind));
  }

  /** mkfs: the root directory (under the lock, before the first commit). */
  static async mkfs(volume: Volume, uid = 0, gid = 0): Promise<void> {
    const layer = new Inodes(volume);
    const root = new Inode(ROOT_INO);
    const now = layer.nowNs();
    root.mode = S_IFDIR | 0o755;
    root.uid = uid;
    root.gid = gid;
    root.nlink = 2;
    root.parent = ROOT_INO;
    root.atimeNs = root.mtimeNs = root.ctimeNs = root.crtimeNs = now;
    layer.cache.set(ROOT_INO, root);
    volume.inodeCount = 1;
    layer.markDirty(root);
  }

  nowNs(): bigint {
    return BigInt(this.opts.clock.nowMs()) * 1_000_000n;
  }

  /**
   * Start the time-based flusher: commit changes at least every flushIntervalMs, and once the
   * volume has been quiet for CHECKPOINT_IDLE_INTERVALS intervals after delta commits, a checkpoint
   * (so recovery has nothing to replay and space that deltas freed can be reclaimed).
   */
  start(): void {
    if (this.opts.flushIntervalMs <= 0 || this.timer) return;
    let quiet = 0;
    const warn = (what: string) => (err: unknown) =>
      this.volume.log.warn(`${what} failed; will retry`, { err: err instanceof Error ? err.message : String(err) });
    this.timer = setInterval(() => {
      if (this.volume.fenced) return;
      if (this.volume.hasUncommittedChanges) {
        quiet = 0;
        this.volume.sync().catch(warn('periodic commit'));
      } else if (this.volume.checkpointPending && ++quiet >= CHECKPOINT_IDLE_INTERVALS) {
        quiet = 0;
        this.volume.checkpoint().catch(warn('idle checkpoint'));
      }
    }, this.opts.flushIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get cachedInodes(): number {
    return this.cache.size;
  }
  get dirtyInodes(): number {
    return this.changedSinceCheckpoint.size;
  }

  // ------------------------------------------------------------------ inode lifecycle

  /** The inode, loaded if needed. ENOENT if it does not exist (or was freed). */
  async get(ino: number): Promise<Inode> {
    const hit = this.cache.get(ino);
    if (hit) {
      this.cache.delete(ino);
      this.cache.set(ino, hit);
      metrics.inodeCacheHits.inc();
      return hit;
    }
    metrics.inodeCacheMisses.inc();
    if (this.tableDeletes.has(ino)) throw new FsError('ENOENT', `inode ${ino} no longer exists`);
    const raw = await this.volume.inodeTable.get(ino);
    if (!raw) throw new FsError('ENOENT', `inode ${ino} does not exist`);
    // Another caller may have loaded it while we waited.
    const again = this.cache.get(ino);
    if (again) return again;
    const inode = new Inode(ino);
    inode.assign(decodeInode(raw, ino));
    inode.inTable = true;
    this.cache.set(ino, inode);
    return inode;
  }

  /** A new inode with one link (two for directories), not yet in any directory. */
  create(mode: number, uid: number, gid: number, rdev = 0, symlinkTarget?: string): Inode {
    const inode = new Inode(this.volume.allocNonce());
    const now = this.nowNs();
    inode.mode = mode;
    inode.uid = uid;
    inode.gid = gid;
    inode.rdev = rdev;
    inode.nlink = (mode & S_IFMT) === S_IFDIR ? 2 : 1;
    inode.atimeNs = inode.mtimeNs = inode.ctimeNs = inode.crtimeNs = now;
    inode.symlinkTarget = symlinkTarget;
    if (symlinkTarget !== undefined) inode.size = Buffer.byteLength(symlinkTarget);
    this.cache.set(inode.ino, inode);
    this.volume.inodeCount++;
    this.markDirty(inode);
    return inode;
  }

  /** Record that an inode changed: the next commit journals it, the next checkpoint writes it. */
  markDirty(inode: Inode): void {
    inode.dirty = true;
    inode.generation++;
    this.changedSinceCommit.add(inode);
    this.changedSinceCheckpoint.add(inode);
    // Changed inodes stay in memory until a checkpoint writes them: bound how many.
    if (this.changedSinceCheckpoint.size > this.opts.inodeCacheMax / 2) this.volume.requestCheckpoint();
    this.volume.markChanged();
  }

  touchCtime(inode: Inode): void {
    inode.ctimeNs = this.nowNs();
    this.markDirty(inode);
  }

  /** One link fewer; an inode with no links is removed from the table and freed once unused. */
  async dropLink(inode: Inode): Promise<void> {
    assert(inode.nlink > 0, `dropLink of inode ${inode.ino} with nlink 0`);
    inode.nlink--;
    if (inode.isDir && inode.nlink === 1) inode.nlink = 0; // "." goes with the last name
    inode.ctimeNs = this.nowNs();
    this.markDirty(inode);
    if (inode.nlink === 0) {
      this.volume.journal.mark(JournalOp.UNLINK, inode.ino);
      if (inode.inTable) this.tableDeletes.add(inode.ino);
      await this.maybeFree(inode);
    }
  }

  /** Free an unlinked inode's space once no front end uses it. */
  async maybeFree(inode: Inode): Promise<void> {
    if (inode.nlink > 0 || inode.busy) return;
    if (!this.cache.has(inode.ino)) return; // already freed
    // All-or-nothing: every store read (extent leaves, tree nodes) happens before any live-byte
    // delta is recorded, so a failed read leaves the accounting untouched. The table delete of
    // the inode is already pending, though, and would leak its extents' bytes: stop committing.
    const freed: Extent[] = [];
    try {
      if (inode.isFile) for await (const [, e] of this.extentsOf(inode).entries()) freed.push(e);
      const tree = inode.isDir ? this.dirTreeOf(inode) : inode.isFile ? this.extentsOf(inode) : null;
      if (tree) await tree.destroy();
    } catch (err) {
      this.volume.halt(err);
      throw err;
    }
    for (const e of freed) this.volume.addLive(e.rec.seg, -e.n);
    this.volume.journal.mark(JournalOp.FREE, inode.ino);
    inode.dirTree = null;
    inode.extents = null;
    this.changedSinceCommit.delete(inode);
    this.changedSinceCheckpoint.delete(inode);
    this.cache.delete(inode.ino);
    this.volume.inodeCount--;
    this.volume.markChanged();
  }

  pin(inode: Inode): void {
    inode.pins++;
  }
  async unpin(inode: Inode): Promise<void> {
    if (inode.pins > 0) inode.pins--;
    await this.maybeFree(inode);
  }

  // ------------------------------------------------------------------ commit

  /**
   * A delta commit journals the attributes of every inode changed since the last commit (its tree
   * changes were journaled as they happened). A checkpoint writes every inode changed since the
   * last checkpoint into the inode table, trees flushed.
   */
  private async commitHook(kind: 'checkpoint' | 'delta'): Promise<Array<[number, Uint8Array]>> {
    const journal: Array<[number, Uint8Array]> = [];
    if (kind === 'delta') {
      for (const inode of this.changedSinceCommit) {
        if (inode.nlink > 0) journal.push([inode.ino, encodeInode(inode)]); // unlinked: lives in memory only until freed
      }
      this.changedSinceCommit.clear();
      this.evict();
      return journal;
    }
    for (const inode of this.changedSinceCheckpoint) {
      if (inode.nlink === 0) continue; // unlinked: lives in memory only until freed
      if (inode.dirTree?.dirty) inode.treeRoot = inode.dirTree.flush();
      if (inode.extents?.dirty) inode.treeRoot = inode.extents.flush();
      await this.volume.inodeTable.put(inode.ino, encodeInode(inode));
      inode.inTable = true;
      inode.dirty = false;
    }
    this.changedSinceCheckpoint.clear();
    this.changedSinceCommit.clear();
    for (const ino of this.tableDeletes) await this.volume.inodeTable.delete(ino);
    this.tableDeletes.clear();
    this.evict();
    return journal;
  }

  /** Keep memory bounded: unload clean, unused inodes (LRU first) and clean tree nodes. */
  private evict(): void {
    const max = this.opts.inodeCacheMax;
    if (this.cache.size > max) {
      for (const [ino, inode] of this.cache) {
        if (this.cache.size <= max) break;
        // A changed inode stays until a checkpoint has written it (the table does not have it yet).
        if (ino === ROOT_INO || inode.dirty || inode.busy || inode.nlink === 0) continue;
        this.cache.delete(ino);
      }
    }
    const n = this.opts.treeNodesMax;
    if (this.volume.inodeTable.loadedNodes > n) this.volume.inodeTable.evictClean(n);
  }

  // ------------------------------------------------------------------ directories

  dirTreeOf(dir: Inode): BTree<DirKey, DirValue> {
    assert(dir.isDir, `inode ${dir.ino} is not a directory`);
    if (!dir.dirTree) {
      const journal = this.volume.journal;
      const opts = { owner: dir.ino, onChange: (op: 'put' | 'delete', kv: Uint8Array) => journal.tree(op === 'put' ? JournalOp.DIR_PUT : JournalOp.DIR_DEL, dir.ino, kv) };
      dir.dirTree = dir.treeRoot ? BTree.open(this.volume.nodeStore, dirKey, dirValue, dir.treeRoot, opts) : BTree.create(this.volume.nodeStore, dirKey, dirValue, opts);
    }
    return dir.dirTree;
  }

  async dirLookup(dir: Inode, name: Uint8Array): Promise<DirValue | undefined> {
    return this.dirTreeOf(dir).get({ h: nameHash(name), name });
  }

  /** Add or replace an entry. Caller has checked the name and existence rules. */
  async dirSet(dir: Inode, name: Uint8Array, value: DirValue): Promise<void> {
    const t = this.dirTreeOf(dir);
    const key = { h: nameHash(name), name };
    const had = (await t.get(key)) !== undefined;
    await t.put(key, value);
    if (!had) dir.size++;
    dir.mtimeNs = dir.ctimeNs = this.nowNs();
    this.markDirty(dir);
  }

  async dirRemove(dir: Inode, name: Uint8Array): Promise<boolean> {
    const removed = await this.dirTreeOf(dir).delete({ h: nameHash(name), name });
    if (removed) {
      dir.size--;
      dir.mtimeNs = dir.ctimeNs = this.nowNs();
      this.markDirty(dir);
    }
    return removed;
  }

  async dirIsEmpty(dir: Inode): Promise<boolean> {
    return this.dirTreeOf(dir).isEmpty();
  }

  /**
   * Entries after `cookie` ("." and ".." first, as cookies 1 and 2), at most `limit`. Cookies are
   * stable: a listing resumed after any changes never repeats an entry and never skips one that
   * existed throughout.
   */
  async dirList(dir: Inode, parentIno: number, cookie: bigint, limit: number): Promise<DirListing[]> {
    const out: DirListing[] = [];
    if (limit <= 0) return out;
    if (cookie < COOKIE_DOT) {
      out.push({ name: Buffer.from('.'), value: { ino: dir.ino, type: S_IFDIR }, cookie: COOKIE_DOT });
      if (out.length >= limit) return out;
    }
    if (cookie < COOKIE_DOTDOT) {
      out.push({ name: Buffer.from('..'), value: { ino: parentIno, type: S_IFDIR }, cookie: COOKIE_DOTDOT });
      if (out.length >= limit) return out;
    }
    const from: DirKey = { h: cookie <= COOKIE_DOTDOT ? 0 : Number(cookie - 3n) + 1, name: new Uint8Array(0) };
    for await (const [k, v] of this.dirTreeOf(dir).entries({ from })) {
      out.push({ name: k.name, value: v, cookie: BigInt(k.h) + 3n });
      if (out.length >= limit) break;
    }
    return out;
  }

  // ------------------------------------------------------------------ files

  extentsOf(file: Inode): BTree<number, Extent> {
    assert(file.isFile, `inode ${file.ino} is not a regular file`);
    if (!file.extents) {
      const journal = this.volume.journal;
      const opts = { owner: file.ino, onChange: (op: 'put' | 'delete', kv: Uint8Array) => journal.tree(op === 'put' ? JournalOp.EXT_PUT : JournalOp.EXT_DEL, file.ino, kv) };
      file.extents = file.treeRoot ? BTree.open(this.volume.nodeStore, offsetKey, extentValue, file.treeRoot, opts) : BTree.create(this.volume.nodeStore, offsetKey, extentValue, opts);
    }
    return file.extents;
  }

  /** Write bytes at offset: append data records to the log, then point the extent map at them. */
  async write(file: Inode, offset: number, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    file.sequentialRun = offset === file.lastWriteEnd ? file.sequentialRun + data.length : data.length;
    file.lastWriteEnd = offset + data.length;
    const large = file.sequentialRun > this.opts.largeRunBytes;
    const t = this.extentsOf(file);
    await this.clearRange(file, t, offset, offset + data.length);
    for (let pos = 0; pos < data.length; pos += DATA_RECORD_BYTES_MAX) {
      const chunk = data.subarray(pos, Math.min(data.length, pos + DATA_RECORD_BYTES_MAX));
      const rec = this.volume.writer.appendData(file.ino, offset + pos, chunk, large);
      this.volume.addLive(rec.seg, chunk.length);
      await t.put(offset + pos, { rec, skip: 0, n: chunk.length });
      file.allocated += chunk.length;
    }
    if (offset + data.length > file.size) file.size = offset + data.length;
    file.mtimeNs = file.ctimeNs = this.nowNs();
    this.markDirty(file);
  }

  /** Remove every extent byte in [a, b), splitting extents that straddle the edges. */
  private async clearRange(file: Inode, t: BTree<number, Extent>, a: number, b: number): Promise<void> {
    const release = (e: Extent, n: number): void => {
      this.volume.addLive(e.rec.seg, -n);
      file.allocated -= n;
    };
    const f = await t.floor(a);
    if (f && f[0] < a && f[0] + f[1].n > a) {
      const [k, e] = f;
      const end = k + e.n;
      await t.put(k, { ...e, n: a - k });
      if (end > b) {
        await t.put(b, { rec: e.rec, skip: e.skip + (b - k), n: end - b });
        release(e, b - a);
        return;
      }
      release(e, end - a);
    }
    const inside: Array<[number, Extent]> = [];
    for await (const [k, e] of t.entries({ from: a })) {
      if (k >= b) break;
      inside.push([k, e]);
    }
    for (const [k, e] of inside) {
      await t.delete(k);
      if (k + e.n <= b) release(e, e.n);
      else {
        await t.put(b, { rec: e.rec, skip: e.skip + (b - k), n: k + e.n - b });
        release(e, b - k);
      }
    }
  }

  /** Set the size: shrinking drops the extents past the end; growing leaves a hole. */
  async truncate(file: Inode, size: number): Promise<void> {
    if (size < file.size) await this.clearRange(file, this.extentsOf(file), size, file.size);
    file.size = size;
    file.mtimeNs = file.ctimeNs = this.nowNs();
    this.markDirty(file);
  }

  /** Deallocate [offset, offset+length) inside the file, keeping its size. */
  async punchHole(file: Inode, offset: number, length: number): Promise<void> {
    const end = Math.min(file.size, offset + length);
    if (end > offset) await this.clearRange(file, this.extentsOf(file), offset, end);
    file.mtimeNs = file.ctimeNs = this.nowNs();
    this.markDirty(file);
  }

  /**
   * Move every extent of `src` into `dst` at `dstOffset`: src's bytes [0, src.size) become dst's
   * bytes [dstOffset, dstOffset + src.size), holes included, without copying data. The extent map
   * entries are re-pointed at the same data records, so each record stays referenced exactly as
   * many times as before and no segment's live bytes change; what dst held in that range is
   * released (as a write over it would), and src's extent map nodes are released. `src` is left
   * empty (size 0, no extents); the caller drops its links, which frees it.
   *
   * The records keep naming `src` and its offsets in their segment summaries: the cleaner cannot
   * find their new owner from that, so it leaves them in place (their segments live until the
   * bytes die); fsck and reads do not depend on a record's stated owner.
   */
  async moveExtents(dst: Inode, src: Inode, dstOffset: number): Promise<number> {
    assert(dst.isFile && src.isFile, `moveExtents: inodes ${dst.ino} and ${src.ino} must be regular files`);
    assert(dst !== src, `moveExtents: inode ${src.ino} into itself`);
    assert(Number.isSafeInteger(dstOffset) && dstOffset >= 0, `moveExtents: bad offset ${dstOffset}`);
    const len = src.size;
    if (len === 0) return 0;
    const from = this.extentsOf(src);
    const to = this.extentsOf(dst);
    await this.clearRange(dst, to, dstOffset, dstOffset + len);
    let moved = 0;
    for await (const [k, e] of from.entries()) {
      assert(k + e.n <= len, `moveExtents: inode ${src.ino} has an extent past its size`);
      await to.put(dstOffset + k, e);
      moved += e.n;
    }
    assert(moved === src.allocated, `moveExtents: inode ${src.ino} allocated ${src.allocated}, extents hold ${moved}`);
    // The references now belong to dst: drop src's map without releasing the data it named.
    await from.destroy();
    this.volume.journal.mark(JournalOp.TREE_DROP, src.ino);
    src.extents = null;
    src.treeRoot = undefined;
    src.allocated = 0;
    src.size = 0;
    src.lastWriteEnd = -1;
    src.sequentialRun = 0;
    dst.allocated += moved;
    if (dstOffset + len > dst.size) dst.size = dstOffset + len;
    const now = this.nowNs();
    src.mtimeNs = src.ctimeNs = now;
    dst.mtimeNs = dst.ctimeNs = now;
    this.markDirty(src);
    this.markDirty(dst);
    return moved;
  }

  /** The pieces of [offset, offset+length) clipped to the file size (under the lock). */
  async readPieces(file: Inode, offset: number, length: number): Promise<ReadPiece[]> {
    const end = Math.min(file.size, offset + length);
    const pieces: ReadPiece[] = [];
    if (end <= offset) return pieces;
    const t = this.extentsOf(file);
    let pos = offset;
    const f = await t.floor(offset);
    for await (const [k, e] of t.entries({ from: f ? f[0] : offset })) {
      if (k >= end) break;
      if (k + e.n <= pos) continue;
      if (k > pos) {
        pieces.push({ zero: k - pos });
        pos = k;
      }
      const n = Math.min(k + e.n, end) - pos;
      pieces.push({ ext: e, from: e.skip + (pos - k), n });
      pos += n;
      if (pos >= end) break;
    }
    if (pos < end) pieces.push({ zero: end - pos });
    await this.readAhead(file, offset, end);
    return pieces;
  }

  /**
   * Read-ahead driven by the extent map (under the lock): once reads of a file look sequential
   * (each starts near where the last ended), keep READ_AHEAD_WINDOWS windows of the segment
   * reader's window size requested ahead of the reader. The extent map names the records the
   * reader will want next, in whatever segments they are (a file's data spans many), so read-ahead
   * crosses segment boundaries and never guesses at an object.
   */
  private async readAhead(file: Inode, offset: number, end: number): Promise<void> {
    const reader = this.volume.reader;
    const window = reader.readAheadWindowBytes;
    if (window <= 0) return;
    const sequential = offset === 0 || (file.lastReadEnd >= 0 && Math.abs(offset - file.lastReadEnd) <= READ_SEQUENTIAL_SLACK_BYTES);
    file.lastReadEnd = sequential ? Math.max(file.lastReadEnd, end) : end;
    if (!sequential) {
      file.readRun = 1;
      file.readAheadTo = end;
      return;
    }
    file.readRun++;
    if (file.readRun < 2 && offset !== 0) return;
    if (file.readAheadTo < file.lastReadEnd) file.readAheadTo = file.lastReadEnd;
    const target = Math.min(file.size, file.lastReadEnd + window * READ_AHEAD_WINDOWS);
    // Ask in whole windows: each request becomes one GET per segment it touches.
    if (target - file.readAheadTo < Math.min(window, target - file.lastReadEnd) || target <= file.readAheadTo) return;
    const locs: Loc[] = [];
    const ends: number[] = [];
    const t = this.extentsOf(file);
    const from = file.readAheadTo;
    const f = await t.floor(from);
    for await (const [k, e] of t.entries({ from: f ? f[0] : from })) {
      if (k >= target) break;
      if (k + e.n <= from) continue;
      locs.push(e.rec);
      ends.push(k + e.n);
    }
    if (locs.length === 0) {
      file.readAheadTo = target; // a hole: nothing to fetch
      return;
    }
    const accepted = reader.readAhead(locs);
    if (accepted > 0) file.readAheadTo = Math.min(target, ends[accepted - 1]!);
  }

  /** Assemble the bytes of read pieces (outside the lock: record reads may go to the store). */
  async fetch(pieces: ReadPiece[]): Promise<Uint8Array> {
    return copyOut(await this.fetchv(pieces));
  }

  /**
   * The bytes of read pieces, borrowed (outside the lock): views of cached record payloads and
   * shared zeros, nothing copied. Write them out, then release them (segment/reader.ts: slabs).
   */
  async fetchv(pieces: ReadPiece[]): Promise<Borrowed> {
    // One ranged GET for a run of records rather than one per record, then each record from the cache.
    const exts = pieces.filter((p): p is Extract<ReadPiece, { ext: Extent }> => 'ext' in p);
    if (exts.length > 1) await this.volume.reader.prefetchMany(exts.map((p) => p.ext.rec));
    const out = new Array<Uint8Array[]>(pieces.length);
    const loans: Borrowed[] = [];
    const reads: Promise<void>[] = [];
    pieces.forEach((p, i) => {
      if ('zero' in p) {
        out[i] = [zeros(p.zero)];
        return;
      }
      reads.push(
        this.volume.reader.readParts(p.ext.rec, RecordType.DATA).then((loan) => {
          loans.push(loan);
          out[i] = slice(loan.parts, p.from, p.n);
        }),
      );
    });
    const release = releaseAll(loans);
    try {
      await Promise.all(reads);
    } catch (err) {
      // Reads still in flight take loans after this: give those back as they arrive.
      await Promise.allSettled(reads);
      release();
      throw err;
    }
    return { parts: out.flat(), release };
  }

  /** lseek SEEK_DATA (data=true) / SEEK_HOLE; ENXIO past the end or when no data follows. */
  async seek(file: Inode, offset: number, data: boolean): Promise<number> {
    if (offset >= file.size) throw new FsError('ENXIO', `offset ${offset} is at or past the end of the file`);
    const t = this.extentsOf(file);
    const f = await t.floor(offset);
    let pos = offset;
    for await (const [k, e] of t.entries({ from: f ? f[0] : offset })) {
      if (k + e.n <= pos) continue;
      if (data) return Math.max(k, offset);
      if (k > pos) return pos;
      pos = k + e.n;
      if (pos >= file.size) break;
    }
    if (data) throw new FsError('ENXIO', `no data at or after offset ${offset}`);
    return Math.min(pos, file.size);
  }
}
