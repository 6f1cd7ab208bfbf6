import { decodeNode, u64Key, bytesValue, type NodeLoc } from '../btree/index.ts';
import {
  SEGMENT_TABLE_OWNER,
  dirKey,
  dirValue,
  extentValue,
  offsetKey,
  readCommit,
  segmentsReferencedBy,
  type Volume,
} from '../headhunter/index.ts';
import { listAll } from '../objstore/index.ts';
import { RECORD_HEADER_BYTES, RecordType, commitSegmentId, dataSegmentId, isCommitSegment } from '../segment/index.ts';
import { FsError, metrics } from '../util/index.ts';
import type { Inodes } from './inodes.ts';

export interface CleanOptions {
  /** Segments whose live bytes are below this fraction of their size are rewritten. Default 0.5. */
  utilizationMax?: number;
  /** At most this many segments per pass (the rate limit). Default 16. */
  segmentsMax?: number;
  /** Leave the newest commits alone (they are about to be superseded anyway). Default 2. */
  keepCommits?: number;
  onProgress?: (p: { segmentsDone: number; segmentsTotal: number }) => void;
}

export interface CleanReport {
  segmentsExamined: number;
  segmentsCleaned: number;
  recordsMoved: number;
  bytesMoved: number;
}

/** Failpoints the cleaner hits (crash tests arm them): after each record moved, and before its commit. */
export const CLEANER_FAILPOINTS = ['cleaner-after-move', 'cleaner-before-commit'] as const;

interface Victim {
  seg: number;
  size: number;
  live: number;
}

/**
 * Segments worth cleaning: durable, not recent, not held by a snapshot, and mostly dead. Sorted
 * emptiest first. (Wholly dead segments are left to gc, which deletes them without reading.)
 */
export async function pickVictims(vol: Volume, opts: CleanOptions = {}): Promise<{ victims: Victim[]; examined: number }> {
  const umax = opts.utilizationMax ?? 0.5;
  const keep = opts.keepCommits ?? 2;
  const commit = vol.lastCommit;
  const live = await segmentsReferencedBy(vol, commit);
  const held = new Set<number>();
  for (const s of commit.snapshots) {
    held.add(commitSegmentId(s.seq));
    for (const seg of (await segmentsReferencedBy(vol, await readCommit(vol.store, vol.prefix, s.seq))).keys()) held.add(seg);
  }
  const victims: Victim[] = [];
  let examined = 0;
  for (const kind of ['log/', 'seg/'] as const) {
    for await (const o of listAll(vol.store, `${vol.prefix}${kind}`)) {
      const n = parseInt(o.key.slice(vol.prefix.length + kind.length), 16);
      if (!Number.isSafeInteger(n)) continue;
      const seg = kind === 'log/' ? commitSegmentId(n) : dataSegmentId(n);
      const l = live.get(seg);
      if (l === undefined || l === 0) continue; // dead (gc's job) or only segment-table nodes
      examined++;
      if (held.has(seg) || vol.writer.isInMemory(seg)) continue;
      if (isCommitSegment(seg) ? n > commit.seq - keep || n >= commit.checkpointSeq : n >= commit.checkpointNonceNext) continue;
      if (l / o.size < umax) victims.push({ seg, size: o.size, live: l });
    }
  }
  victims.sort((a, b) => a.live / a.size - b.live / b.size);
  return { victims: victims.slice(0, opts.segmentsMax ?? 16), examined };
}

/**
 * The cleaner: copy the live records of mostly-dead segments into the log, then commit. Afterwards
 * nothing references those segments and gc deletes them. File data is copied record by record
 * (content, times and sizes unchanged); tree nodes are copied by marking them dirty, so the
 * commit writes them anew. Each record moves under the volume lock, so it is atomic like any
 * other update, and a crash at any point leaves either the old or the new reference.
 */
export async function cleanSegments(inodes: Inodes, opts: CleanOptions = {}): Promise<CleanReport> {
  const vol = inodes.volume;
  // Live counts come from the segment table, which only checkpoints bring up to date.
  if (vol.checkpointPending) await vol.checkpoint();
  const { victims, examined } = await pickVictims(vol, opts);
  const report: CleanReport = { segmentsExamined: examined, segmentsCleaned: 0, recordsMoved: 0, bytesMoved: 0 };
  for (const v of victims) {
    const summary = await vol.reader.readSummary(v.seg);
    for (const e of summary) {
      const loc: NodeLoc = { seg: v.seg, off: e.off, len: e.len };
      await vol.lock.run(async () => {
        vol.checkWritable();
        const moved = e.type === RecordType.DATA ? await moveData(inodes, loc, e.owner, e.key) : e.type === RecordType.NODE ? await moveNode(inodes, loc, e.owner) : 0;
        if (moved > 0) {
          report.recordsMoved++;
          report.bytesMoved += moved;
          metrics.cleanerBytesMoved.inc(moved);
          vol.failpoints.hit('cleaner-after-move');
        }
      });
    }
    report.segmentsCleaned++;
    metrics.cleanerSegmentsCleaned.inc();
    opts.onProgress?.({ segmentsDone: report.segmentsCleaned, segmentsTotal: victims.length });
  }
  if (report.recordsMoved > 0) {
    vol.failpoints.hit('cleaner-before-commit');
    // A checkpoint: moved tree nodes are rewritten only when the trees are written whole.
    await vol.checkpoint();
  }
  return report;
}

/** Re-append the live parts of one data record; returns the bytes moved (0 if it was dead). */
async function moveData(inodes: Inodes, loc: NodeLoc, owner: number, fileOffset: number): Promise<number> {
  const inode = await inodes.get(owner).catch((err: unknown) => {
    if (err instanceof FsError && err.errno === 'ENOENT') return undefined;
    throw err;
  });
  if (!inode || !inode.isFile || inode.nlink === 0) return 0;
  const t = inodes.extentsOf(inode);
  const end = fileOffset + (loc.len - RECORD_HEADER_BYTES);
  const hits: Array<[number, { skip: number; n: number }]> = [];
  const f = await t.floor(fileOffset);
  for await (const [k, e] of t.entries({ from: f ? f[0] : fileOffset })) {
    if (k >= end) break;
    if (e.rec.seg === loc.seg && e.rec.off === loc.off) hits.push([k, { skip: e.skip, n: e.n }]);
  }
  if (hits.length === 0) return 0;
  const payload = await inodes.volume.reader.read(loc, RecordType.DATA);
  // Before the first put: should a later one fail, the commit still writes the tree that the
  // moves before it changed (and accounted).
  inodes.markDirty(inode);
  let moved = 0;
  for (const [k, e] of hits) {
    const rec = inodes.volume.writer.appendData(owner, k, payload.subarray(e.skip, e.skip + e.n), true);
    // Account only once the extent points at the copy: a put that fails (this runs outside the
    // file system's halt-on-failure) leaves the accounting as it was, the copy merely dead.
    await t.put(k, { rec, skip: 0, n: e.n });
    inodes.volume.addLive(rec.seg, e.n);
    inodes.volume.addLive(loc.seg, -e.n);
    moved += e.n;
  }
  return moved;
}

/** Have the owning tree rewrite one node at the next commit; returns its length if it was live. */
async function moveNode(inodes: Inodes, loc: NodeLoc, owner: number): Promise<number> {
  const vol = inodes.volume;
  const payload = await vol.reader.read(loc, RecordType.NODE);
  if (owner === SEGMENT_TABLE_OWNER) return (await vol.relocateSegmentTableNode(loc, payload)) ? loc.len : 0;
  if (owner === 0) {
    const node = decodeNode(payload, u64Key, bytesValue);
    const moved = await vol.inodeTable.relocate(loc, node.keys[0], node.level);
    if (moved) vol.markChanged();
    return moved ? loc.len : 0;
  }
  const inode = await inodes.get(owner).catch((err: unknown) => {
    if (err instanceof FsError && err.errno === 'ENOENT') return undefined;
    throw err;
  });
  if (!inode || inode.nlink === 0) return 0;
  let moved = false;
  if (inode.isDir) {
    const node = decodeNode(payload, dirKey, dirValue);
    moved = await inodes.dirTreeOf(inode).relocate(loc, node.keys[0], node.level);
  } else if (inode.isFile) {
    const node = decodeNode(payload, offsetKey, extentValue);
    moved = await inodes.extentsOf(inode).relocate(loc, node.keys[0], node.level);
  }
  if (moved) inodes.markDirty(inode);
  return moved ? loc.len : 0;
}
