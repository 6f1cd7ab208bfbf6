/**
 * headhunter: the volume — nonce, inode table, segment table, commits, recovery.
 *
 * Invariants:
 * - A commit references only records that are durable before its own PUT lands (the segment
 *   writer orders data segments, then the commit segment), so every commit is self-consistent.
 * - Commit sequences are dense and each is created with a conditional PUT: two servers can never
 *   both commit sequence N; the loser is fenced and stops writing.
 * - Recovery reads the newest commit that verifies; a corrupt newest commit falls back to the one
 *   before it and says so.
 * - A commit is a checkpoint (whole trees) or a delta (a journal of changes since the commit
 *   before). A delta's state is its checkpoint's trees with every journal from there on replayed
 *   in order; a commit is a checkpoint whenever the previous attempt at one did not seal, so no
 *   change folded into the trees is ever left out of both a checkpoint and a journal. Snapshots
 *   and cleanly closed volumes are checkpoints.
 * - Nonces never repeat within the durable history: each commit records the next unused nonce.
 * - With the (opt-in) owner lease, a second writer is refused before it opens the volume while the
 *   owner's heartbeat is fresh; a takeover commits once at once, fencing the old owner (lease.ts).
 */
export {
  Volume,
  defaultVolumeOptions,
  readCommit,
  validateVolumeName,
  validateSnapshotName,
  segStatsValue,
  SEGMENT_TABLE_OWNER,
  type VolumeOptions,
  type SegmentStats,
  type CommitHook,
  type OwnershipGuard,
} from './volume.ts';
export { encodeCommit, decodeCommit, COMMIT_VERSION, type CommitRecord, type SnapshotRef } from './commit.ts';
export { JournalOp, JournalWriter, decodeJournal, type JournalEntry } from './journal.ts';
export { type ReplayReport } from './replay.ts';
export {
  nameHash,
  decodeInode,
  encodeInode,
  dirKey,
  dirValue,
  extentValue,
  offsetKey,
  type Extent,
  type InodeRecord,
  type DirKey,
  type DirValue,
} from './records.ts';
export { collectGarbage, segmentsReferencedBy, GC_FAILPOINTS, type GcOptions, type GcReport } from './gc.ts';
export {
  VolumeLease,
  LeaseHeldError,
  readLease,
  readOwnerSummary,
  describeHolder,
  DEFAULT_LEASE_INTERVAL_MS,
  DEFAULT_LEASE_STALE_INTERVALS,
  type LeaseOptions,
  type LeaseRecord,
  type LeaseState,
  type LeaseView,
  type OwnerSummary,
} from './lease.ts';
