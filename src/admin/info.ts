/**
 * What the pages show, as plain JSON-ready objects: the same object is rendered as HTML and sent
 * as the page's JSON endpoint, so a script sees exactly what a person sees.
 */
import { hostname } from 'node:os';
import { O_RDONLY, rootIdentity, type Attr, type SiltFileSystem } from '../fs/index.ts';
import { readOwnerSummary, type OwnerSummary } from '../headhunter/index.ts';
import { listAll } from '../objstore/index.ts';
import { isCommitSegment, segmentKey } from '../segment/index.ts';
import { FsError, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../util/index.ts';

/** The owner lease of the volume, as `silt stat --json` shows it ('unknown' when there is none). */
export type OwnerLeaseView = OwnerSummary;

/**
 * Fields of `silt stat --json`, with the same names and meanings (stat's per-type inode counts
 * and fileBytes walk the whole inode table, so the overview leaves them to fsck's report).
 */
export interface VolumeStatView {
  volume: string;
  store: string;
  volumeId: string;
  commitSeq: number;
  commitTimeMs: number;
  commitAgeMs: number;
  inodes: number;
  segments: number;
  liveBytes: number;
  storedObjects: number;
  storedBytes: number;
  utilization: number;
  snapshots: SnapshotView[];
  owner: OwnerLeaseView | 'unknown';
}

/** This server process (the one serving the pages). */
export interface ServerView {
  pid: number;
  host: string;
  startedMs: number;
  uptimeMs: number;
  /** Other doors this server opened (JSON-RPC address, object API URL), as given by the CLI. */
  endpoints: Record<string, string>;
  /** Null while the server may commit; why not otherwise (fenced by another server, halted). */
  fenced: string | null;
}

export interface OverviewView extends VolumeStatView {
  server: ServerView;
  /** Bytes held in memory that are not yet durable. */
  dirtyBytes: number;
  uncommittedChanges: boolean;
  /** Inodes the server holds now (the commit's count plus creations since, minus removals). */
  inodesNow: number;
  cachedInodes: number;
  /** When the store listing behind storedObjects/storedBytes was taken. */
  listedMs: number;
}

export interface StoreListing {
  commitSeq: number;
  timeMs: number;
  objects: number;
  bytes: number;
  owner: OwnerLeaseView | 'unknown';
}

export interface OverviewSource {
  fs: SiltFileSystem;
  volume: string;
  startedMs: number;
  endpoints: Record<string, string>;
  nowMs: () => number;
  /** A store listing is reused while the commit is the same and it is younger than this. */
  listingMaxAgeMs: number;
}

/** Live counts from the server's own volume; the store listing is cached (it costs LIST requests). */
export class OverviewCollector {
  private listing: StoreListing | undefined;
  private listingInFlight: Promise<StoreListing> | undefined;
  private segSums: { seq: number; segments: number; liveBytes: number } | undefined;

  constructor(private readonly src: OverviewSource) {}

  /** Forget the cached listing (after gc or a snapshot change). */
  invalidate(): void {
    this.listing = undefined;
    this.segSums = undefined;
  }

  private async storeListing(seq: number): Promise<StoreListing> {
    const now = this.src.nowMs();
    const l = this.listing;
    if (l && l.commitSeq === seq && now - l.timeMs < this.src.listingMaxAgeMs) return l;
    this.listingInFlight ??= (async () => {
      const vol = this.src.fs.volume;
      let objects = 0;
      let bytes = 0;
      for await (const o of listAll(vol.store, vol.prefix)) {
        objects++;
        bytes += o.size;
      }
      const owner = await readOwnerSummary(vol.store, this.src.volume).catch(() => 'unknown' as const);
      const fresh = { commitSeq: seq, timeMs: this.src.nowMs(), objects, bytes, owner };
      this.listing = fresh;
      return fresh;
    })().finally(() => {
      this.listingInFlight = undefined;
    });
    return this.listingInFlight;
  }

  async overview(): Promise<OverviewView> {
    const fs = this.src.fs;
    const vol = fs.volume;
    // The segment table as of the newest commit (commits change it under the lock). Walking it
    // holds the lock, so it is walked once per commit, not once per page refresh.
    const { seq, segments, liveBytes, commit } = await vol.lock.run(async () => {
      const commit = vol.lastCommit;
      const cached = this.segSums;
      if (cached && cached.seq === commit.seq) return { ...cached, commit };
      let segments = 0;
      let liveBytes = 0;
      for await (const [, s] of vol.segments()) {
        segments++;
        liveBytes += s.liveBytes;
      }
      this.segSums = { seq: commit.seq, segments, liveBytes };
      return { seq: commit.seq, segments, liveBytes, commit };
    });
    const listing = await this.storeListing(seq);
    const now = this.src.nowMs();
    return {
      volume: this.src.volume,
      store: vol.store.capabilities.description,
      volumeId: vol.volumeId,
      commitSeq: commit.seq,
      commitTimeMs: commit.timeMs,
      commitAgeMs: now - commit.timeMs,
      inodes: commit.inodeCount,
      segments,
      liveBytes,
      storedObjects: listing.objects,
      storedBytes: listing.bytes,
      utilization: listing.bytes > 0 ? liveBytes / listing.bytes : 1,
      snapshots: listSnapshots(fs),
      owner: listing.owner,
      server: {
        pid: process.pid,
        host: hostname(),
        startedMs: this.src.startedMs,
        uptimeMs: now - this.src.startedMs,
        endpoints: { ...this.src.endpoints },
        fenced: vol.fenced ? vol.fenced.message : null,
      },
      dirtyBytes: vol.writer.bufferedBytes,
      uncommittedChanges: vol.hasUncommittedChanges,
      inodesNow: vol.inodeCount,
      cachedInodes: fs.inodes.cachedInodes,
      listedMs: listing.timeMs,
    };
  }
}

// ---------------------------------------------------------------------------------------- browse

export interface AttrView {
  ino: number;
  type: 'file' | 'directory' | 'symlink' | 'other';
  /** Permission bits in octal, e.g. "0644". */
  mode: string;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  crtimeMs: number;
  generation: number;
}

export function typeName(mode: number): AttrView['type'] {
  const t = mode & S_IFMT;
  return t === S_IFREG ? 'file' : t === S_IFDIR ? 'directory' : t === S_IFLNK ? 'symlink' : 'other';
}

export function attrView(a: Attr): AttrView {
  const ms = (ns: bigint): number => Number(ns / 1_000_000n);
  return {
    ino: a.ino,
    type: typeName(a.mode),
    mode: (a.mode & 0o7777).toString(8).padStart(4, '0'),
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    blocks: a.blocks,
    atimeMs: ms(a.atimeNs),
    mtimeMs: ms(a.mtimeNs),
    ctimeMs: ms(a.ctimeNs),
    crtimeMs: ms(a.crtimeNs),
    generation: a.generation,
  };
}

export interface EntryView {
  name: string;
  /** Path from the root, '/'-separated, starting with '/'. */
  path: string;
  ino: number;
  type: AttrView['type'];
  size: number;
  mtimeMs: number;
  mode: string;
}

export interface ExtentView {
  /** Byte offset in the file. */
  offset: number;
  length: number;
  /** Segment id (even: a commit segment, odd: a data segment) and the object holding it. */
  segment: number;
  object: string;
  segmentKind: 'commit' | 'data';
  /** Where the data record starts in that object, and how far into its payload the extent begins. */
  recordOffset: number;
  skip: number;
}

export interface SegmentUseView {
  segment: number;
  object: string;
  segmentKind: 'commit' | 'data';
  extents: number;
  bytes: number;
}

export interface BrowseView {
  path: string;
  attr: AttrView;
  /** Directories: entries after `cookie` ("." and ".." left out), at most `limit`. */
  entries?: EntryView[];
  /** Directories: pass as `cookie` to see the next page; null at the end. */
  nextCookie?: string | null;
  /** Files: extents from `offset`, at most `limit`, and which segments hold them. */
  extents?: ExtentView[];
  extentsTruncated?: boolean;
  segments?: SegmentUseView[];
  /** Symlinks. */
  target?: string;
  xattrs?: string[];
}

/** A normalized absolute path ("/a/b"); EINVAL for '.'/'..' components or NUL. */
export function normalizePath(p: string | null | undefined): string {
  const parts = (p ?? '/').split('/').filter((s) => s !== '' && s !== '.');
  for (const s of parts) {
    if (s === '..') throw new FsError('EINVAL', 'paths may not contain ".."');
    if (s.includes('\0')) throw new FsError('EINVAL', 'paths may not contain NUL');
  }
  return '/' + parts.join('/');
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export async function browse(fs: SiltFileSystem, rawPath: string, o: { cookie?: string; limit: number }): Promise<BrowseView> {
  const path = normalizePath(rawPath);
  const a = await fs.lookupPath(rootIdentity, path);
  const attr = attrView(a);
  const xattrs = await fs.listxattr(rootIdentity, a.ino);
  if (attr.type === 'directory') {
    let cookie = 2n; // after "." and ".."
    if (o.cookie !== undefined && o.cookie !== '') {
      if (!/^\d{1,20}$/.test(o.cookie)) throw new FsError('EINVAL', `bad cookie ${JSON.stringify(o.cookie)}`);
      cookie = BigInt(o.cookie);
    }
    const list = await fs.readdirplus(rootIdentity, a.ino, cookie, o.limit + 1);
    const entries = list
      .filter((e) => e.name !== '.' && e.name !== '..')
      .map((e) => ({
        name: e.name,
        path: joinPath(path, e.name),
        ino: e.ino,
        type: typeName(e.attr.mode),
        size: e.attr.size,
        mtimeMs: Number(e.attr.mtimeNs / 1_000_000n),
        mode: (e.attr.mode & 0o7777).toString(8).padStart(4, '0'),
      }));
    const page = entries.slice(0, o.limit);
    const more = list.length > o.limit && page.length > 0;
    const lastCookie = more ? list.find((e) => e.name === page[page.length - 1]!.name)?.cookie : undefined;
    page.sort((x, y) => (x.type === 'directory' ? 0 : 1) - (y.type === 'directory' ? 0 : 1) || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    return { path, attr, entries: page, nextCookie: lastCookie !== undefined ? lastCookie.toString() : null, xattrs };
  }
  if (attr.type === 'symlink') return { path, attr, target: await fs.readlink(rootIdentity, a.ino), xattrs };
  if (attr.type === 'file') {
    const { extents, truncated } = await fileExtents(fs, a.ino, 0, o.limit);
    return { path, attr, extents, extentsTruncated: truncated, segments: segmentUse(extents), xattrs };
  }
  return { path, attr, xattrs };
}

/**
 * A file's extents from `offset` on, at most `limit`, with the segment holding each: read under
 * the volume lock through the inode layer's extent map, changing nothing.
 */
export async function fileExtents(fs: SiltFileSystem, ino: number, offset: number, limit: number): Promise<{ extents: ExtentView[]; truncated: boolean }> {
  const vol = fs.volume;
  return vol.lock.run(async () => {
    const file = await fs.inodes.get(ino);
    if (!file.isFile) throw new FsError('EINVAL', `inode ${ino} is not a regular file`);
    const out: ExtentView[] = [];
    let truncated = false;
    const t = fs.inodes.extentsOf(file);
    const f = await t.floor(offset);
    for await (const [k, e] of t.entries({ from: f ? f[0] : offset })) {
      if (k + e.n <= offset) continue;
      if (out.length >= limit) {
        truncated = true;
        break;
      }
      out.push({
        offset: k,
        length: e.n,
        segment: e.rec.seg,
        object: segmentKey(vol.prefix, e.rec.seg),
        segmentKind: isCommitSegment(e.rec.seg) ? 'commit' : 'data',
        recordOffset: e.rec.off,
        skip: e.skip,
      });
    }
    return { extents: out, truncated };
  });
}

export function segmentUse(extents: readonly ExtentView[]): SegmentUseView[] {
  const by = new Map<number, SegmentUseView>();
  for (const e of extents) {
    const s = by.get(e.segment) ?? { segment: e.segment, object: e.object, segmentKind: e.segmentKind, extents: 0, bytes: 0 };
    s.extents++;
    s.bytes += e.length;
    by.set(e.segment, s);
  }
  return [...by.values()].sort((a, b) => b.bytes - a.bytes);
}

/** Open a file for download: its size and a reader of chunks; `close` gives the open back. */
export async function openForDownload(fs: SiltFileSystem, rawPath: string): Promise<{ path: string; size: number; read: (off: number, n: number) => Promise<Uint8Array>; close: () => Promise<void> }> {
  const path = normalizePath(rawPath);
  const a = await fs.lookupPath(rootIdentity, path);
  if (typeName(a.mode) !== 'file') throw new FsError(typeName(a.mode) === 'directory' ? 'EISDIR' : 'EINVAL', `${path} is not a regular file`);
  // Held open, so the bytes stay readable even if the file is unlinked mid-download.
  const opened = await fs.open(rootIdentity, a.ino, O_RDONLY);
  let released = false;
  return {
    path,
    size: opened.size,
    read: (off, n) => fs.read(rootIdentity, a.ino, off, n),
    close: async () => {
      if (released) return;
      released = true;
      await fs.release(a.ino, false);
    },
  };
}

// ------------------------------------------------------------------------------------ snapshots

export interface SnapshotView {
  name: string;
  /** The commit it retains. */
  commitSeq: number;
  createdMs: number;
}

export function listSnapshots(fs: SiltFileSystem): SnapshotView[] {
  return fs.volume.snapshots.map((s) => ({ name: s.name, commitSeq: s.seq, createdMs: s.createdMs }));
}
