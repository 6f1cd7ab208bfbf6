import { decodeNode, u64Key, type NodeLoc } from '../btree/index.ts';
import { listAll } from '../objstore/index.ts';
import { commitSegmentId, dataSegmentId, isCommitSegment } from '../segment/index.ts';
import type { CommitRecord } from './commit.ts';
import { readCommit, segStatsValue, type Volume } from './volume.ts';
import { CorruptionError, assert, metrics } from '../util/index.ts';

export interface GcOptions {
  /** The newest commits are always kept (fallback if the newest turns out damaged). Default 2. */
  keepCommits?: number;
  /** List what would be deleted without deleting. */
  dryRun?: boolean;
  /**
   * Only delete objects that were already unreferenced at a pass at least this long ago (readers
   * that looked up extents before a commit may still fetch from them). The first pass in a
   * process only marks. 0 deletes at once (offline gc, nobody else reading).
   */
  graceMs?: number;
  onProgress?: (p: { phase: 'scan' | 'delete'; done: number; total?: number }) => void;
}

/** Failpoints gc hits (crash tests arm them): before the first delete, and before each delete. */
export const GC_FAILPOINTS = ['gc-before-delete', 'gc-mid-delete'] as const;

export interface GcReport {
  objectsScanned: number;
  bytesScanned: number;
  /** Unreferenced objects found (deleted unless dryRun or still in their grace period). */
  candidates: number;
  /** Bytes of the candidates that are due for deletion now (what a dry run would free). */
  candidateBytes: number;
  deleted: number;
  bytesFreed: number;
  /** Candidates left for a later pass (grace period). */
  waiting: number;
  /** Data segments no commit references any more, or ever did (left by a crash, or all data overwritten). */
  orphanDataSegments: number;
  /**
   * Objects under the volume's `log/` and `seg/` that are not named as Silt names segments (a
   * stray copy, a tool's leftover): no commit can reference them. Counted in `candidates` and
   * deleted like any other unreferenced object, after the grace period.
   */
  strayObjects: number;
  /** Live bytes / stored bytes of what remains. */
  utilization: number;
  liveBytes: number;
}

/** How Silt names segment objects: 16 lowercase hex digits (segment/format.ts). */
const SEGMENT_NAME = /^[0-9a-f]{16}$/;

/** Per-volume memory of candidates between passes (for the grace period). */
const firstSeen = new WeakMap<Volume, Map<string, number>>();

/**
 * Reclaim space: delete every segment object of the volume that the newest durable commit does not
 * reference. What is protected:
 * - segments with live bytes in the commit's segment table (file data and tree nodes),
 * - segments holding the segment table's own nodes,
 * - the newest `keepCommits` commits, and every commit at or after the `head` hint (recovery starts
 *   there),
 * - data segments numbered at or above the commit's nonce high-water mark and commits after it
 *   (they may belong to a commit still in flight, here or in a server using the volume),
 * - for delta commits, every commit from their checkpoint on and every data segment numbered at
 *   or above the checkpoint's nonce high-water mark (their journals may name them),
 * - anything still in memory in this process.
 * Unreferenced data segments below the high-water mark are garbage by construction: every data
 * segment allocated before a commit was sealed is either referenced by it or dead.
 * - everything a snapshot references (its retained commit's segment table).
 * The orphan sweep is the same rule: a segment object no kept commit references (its commit never
 * landed, or everything in it died) and any stray object under `log/` or `seg/` that is not named
 * like a segment are deleted, after the grace period, and counted in the report.
 */
export async function collectGarbage(vol: Volume, opts: GcOptions = {}): Promise<GcReport> {
  // A snapshot view sees an old commit: collecting from it would delete what newer commits use.
  assert(vol.readOnlySnapshot === undefined, 'gc on a snapshot view');
  const keep = opts.keepCommits ?? 2;
  const grace = opts.graceMs ?? 0;
  await vol.updateHead();
  // Move the horizon: a fallback commit (one of the newest `keep`) that is a delta after an older
  // checkpoint keeps alive everything its chain names, including what died since. On an idle
  // volume no later checkpoint would ever come; a checkpoint with nothing new is one small PUT, and
  // after at most two of them the fallbacks are checkpoints. A dry run reports as if it had moved.
  if (!opts.dryRun && !vol.fenced) {
    for (let i = 0; i < 2 && (await oldFallbackChain(vol, keep)); i++) {
      await vol.checkpoint();
      await vol.updateHead();
    }
  }
  const commit = vol.lastCommit;
  const headSeq = vol.headHintSeq;
  const protectedSegs = new Set<number>();
  // A delta commit's segment table is its checkpoint's: what its journals added since lies in the
  // commit segments from the checkpoint on and in data segments numbered from the checkpoint's
  // nonce high-water mark on, and both are kept below.
  let oldestCheckpoint = commit.checkpointSeq;
  let oldestCheckpointNonce = commit.checkpointNonceNext;
  const protectCommit = async (c: CommitRecord, recoverable = true): Promise<number> => {
    if (recoverable) {
      oldestCheckpoint = Math.min(oldestCheckpoint, c.checkpointSeq);
      oldestCheckpointNonce = Math.min(oldestCheckpointNonce, c.checkpointNonceNext);
    }
    let live = 0;
    for (const [seg, n] of await segmentsReferencedBy(vol, c)) {
      protectedSegs.add(seg);
      live += n;
    }
    return live;
  };
  const liveBytes = await protectCommit(commit);
  // The commits recovery could fall back to keep what they reference too (a dry run skips those a
  // real run would have made obsolete by moving the horizon).
  for (let seq = commit.seq - 1; seq > commit.seq - keep && seq >= 1; seq--) {
    try {
      const c = await readCommit(vol.store, vol.prefix, seq);
      if (opts.dryRun && c.kind === 'delta' && c.checkpointSeq < commit.checkpointSeq) continue;
      await protectCommit(c);
    } catch (err) {
      if (!(err instanceof CorruptionError)) throw err; // a missing or damaged old commit protects nothing
    }
  }
  // A snapshot is a retained commit: its segment table names exactly the segments it references.
  for (const s of commit.snapshots) {
    protectedSegs.add(commitSegmentId(s.seq));
    await protectCommit(await readCommit(vol.store, vol.prefix, s.seq), false);
  }
  const minCommitKept = Math.min(headSeq, commit.seq - keep + 1, oldestCheckpoint);
  const snapshotSeqs = new Set(commit.snapshots.map((s) => s.seq));
  const report: GcReport = {
    objectsScanned: 0,
    bytesScanned: 0,
    candidates: 0,
    candidateBytes: 0,
    deleted: 0,
    bytesFreed: 0,
    waiting: 0,
    orphanDataSegments: 0,
    strayObjects: 0,
    utilization: 1,
    liveBytes,
  };
  const seen = firstSeen.get(vol) ?? new Map<string, number>();
  firstSeen.set(vol, seen);
  const now = Date.now();
  const victims: Array<{ key: string; size: number }> = [];
  const stillCandidates = new Set<string>();
  let storedBytes = 0;
  for (const kind of ['log/', 'seg/'] as const) {
    for await (const o of listAll(vol.store, `${vol.prefix}${kind}`)) {
      report.objectsScanned++;
      report.bytesScanned += o.size;
      if (!opts.dryRun) metrics.gcObjectsScanned.inc();
      if (report.objectsScanned % 500 === 0) opts.onProgress?.({ phase: 'scan', done: report.objectsScanned });
      const name = o.key.slice(vol.prefix.length + kind.length);
      const stray = !SEGMENT_NAME.test(name);
      if (!stray) {
        const n = parseInt(name, 16);
        const id = kind === 'log/' ? commitSegmentId(n) : dataSegmentId(n);
        const keepIt =
          protectedSegs.has(id) ||
          vol.writer.isInMemory(id) ||
          (isCommitSegment(id) ? n >= minCommitKept || snapshotSeqs.has(n) : n >= oldestCheckpointNonce);
        if (keepIt) {
          storedBytes += o.size;
          continue;
        }
        if (!isCommitSegment(id)) report.orphanDataSegments++;
      } else report.strayObjects++;
      report.candidates++;
      stillCandidates.add(o.key);
      const first = seen.get(o.key);
      if (grace > 0 && (first === undefined || now - first < grace)) {
        if (first === undefined) seen.set(o.key, now);
        report.waiting++;
        storedBytes += o.size;
        continue;
      }
      victims.push({ key: o.key, size: o.size });
      report.candidateBytes += o.size;
    }
  }
  for (const k of [...seen.keys()]) if (!stillCandidates.has(k)) seen.delete(k);
  if (!opts.dryRun) {
    let done = 0;
    if (victims.length > 0) vol.failpoints.hit('gc-before-delete');
    for (const v of victims) {
      vol.failpoints.hit('gc-mid-delete');
      await vol.store.delete(v.key);
      seen.delete(v.key);
      report.deleted++;
      report.bytesFreed += v.size;
      metrics.gcDeletedObjects.inc();
      metrics.gcBytesFreed.inc(v.size);
      done++;
      if (done % 50 === 0) opts.onProgress?.({ phase: 'delete', done, total: victims.length });
    }
  } else {
    for (const v of victims) storedBytes += v.size;
  }
  report.utilization = storedBytes > 0 ? Math.min(1, liveBytes / storedBytes) : 1;
  if (!opts.dryRun) {
    metrics.gcPasses.inc();
    metrics.gcLastPassTimestamp.set(Date.now() / 1000);
    metrics.gcLastPassSeconds.set((Date.now() - now) / 1000);
    metrics.segmentObjects.set(report.objectsScanned - report.deleted);
    metrics.liveBytes.set(liveBytes);
    metrics.storedBytes.set(storedBytes);
  }
  return report;
}

/** The newest commit is a delta, or a fallback (among the newest `keep`) is a delta after an older checkpoint. */
async function oldFallbackChain(vol: Volume, keep: number): Promise<boolean> {
  const newest = vol.lastCommit;
  for (let seq = newest.seq - 1; seq > newest.seq - keep && seq >= 1; seq--) {
    try {
      const c = await readCommit(vol.store, vol.prefix, seq);
      if (c.kind === 'delta' && c.checkpointSeq < newest.checkpointSeq) return true;
    } catch (err) {
      if (!(err instanceof CorruptionError)) throw err;
    }
  }
  return newest.kind === 'delta';
}

/**
 * Every segment a commit references, with its live bytes (0 for segments that only hold the
 * segment table's own nodes): the commit's segment table, walked from its root.
 */
export async function segmentsReferencedBy(vol: Volume, c: CommitRecord): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (c.segmentTableRoot.len === 0) return out;
  const stack: NodeLoc[] = [c.segmentTableRoot];
  while (stack.length) {
    const loc = stack.pop()!;
    if (!out.has(loc.seg)) out.set(loc.seg, 0);
    const node = decodeNode(await vol.nodeStore.readNode(loc), u64Key, segStatsValue);
    if (node.kind === 'internal') for (const ch of node.children) stack.push(ch as NodeLoc);
    else
      for (let i = 0; i < node.keys.length; i++) {
        const live = node.vals[i]!.liveBytes;
        if (live > 0) out.set(node.keys[i]!, (out.get(node.keys[i]!) ?? 0) + live);
      }
  }
  return out;
}
