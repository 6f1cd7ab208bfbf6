import { randomBytes } from 'node:crypto';
import { BTree, bytesValue, decodeNode, u64Key, type NodeLoc, type NodeStore, type ValueCodec } from '../btree/index.ts';
import type { ObjectStore } from '../objstore/index.ts';
import {
  LogSegmentWriter,
  RecordType,
  SegmentKind,
  SegmentReader,
  TRAILER_BYTES,
  commitKey,
  hex16,
  commitSegmentId,
  decodeRecord,
  decodeTrailer,
  isCommitSegment,
  type Loc,
} from '../segment/index.ts';
import {
  CorruptionError,
  Failpoints,
  FsError,
  Mutex,
  StoreError,
  assert,
  metrics,
  registerDirtySource,
  nullLogger,
  type Logger,
} from '../util/index.ts';
import { COMMIT_VERSION, decodeCommit, encodeCommit, type CommitRecord, type SnapshotRef } from './commit.ts';
import { JournalWriter, decodeJournal, type JournalEntry } from './journal.ts';
import { replayJournals, type ReplayReport } from './replay.ts';

export interface VolumeOptions {
  /** Data segments close at this size. */
  segmentBytesMax: number;
  /** Data segments PUT concurrently before writers wait. */
  inflightSegmentsMax: number;
  /** Segment reader cache bound. */
  cacheBytesMax: number;
  /** Ranged GET size for sequential reads. */
  readAheadBytes: number;
  /** Commit early when the open commit segment holds this much. */
  commitBytesMax: number;
  /** Rewrite the `head` hint at a checkpoint at least this many commits after the hint. */
  headEveryCommits: number;
  /**
   * A commit is a checkpoint (trees written in full) when this long has passed since the last one;
   * the commits in between are deltas (a journal of what changed: docs/FORMAT.md).
   */
  checkpointIntervalMs: number;
  /** ... or when this many delta commits follow the last checkpoint (bounds what recovery replays). */
  checkpointDeltasMax: number;
  /** ... or when their journals hold this many bytes. */
  checkpointJournalBytesMax: number;
  /** Longest a commit waits for more sync() callers when several were waiting last time (group commit). */
  groupCommitLingerMs: number;
  logger: Logger;
  failpoints: Failpoints;
}

export const defaultVolumeOptions: VolumeOptions = {
  segmentBytesMax: 16 * 1024 * 1024,
  inflightSegmentsMax: 4,
  cacheBytesMax: 64 * 1024 * 1024,
  readAheadBytes: 4 * 1024 * 1024,
  commitBytesMax: 8 * 1024 * 1024,
  headEveryCommits: 16,
  checkpointIntervalMs: 30_000,
  checkpointDeltasMax: 256,
  checkpointJournalBytesMax: 8 * 1024 * 1024,
  groupCommitLingerMs: 3,
  logger: nullLogger,
  failpoints: new Failpoints(),
};

export interface SegmentStats {
  kind: number;
  /** Bytes of records still referenced by the newest tree versions (as of the previous commit). */
  liveBytes: number;
}

/**
 * Owner recorded in the record headers of segment-table nodes (inode-table nodes record 0, other
 * trees their inode), so the cleaner and fsck can tell every node record's tree from its summary.
 */
export const SEGMENT_TABLE_OWNER = Number.MAX_SAFE_INTEGER;

export const segStatsValue: ValueCodec<SegmentStats> = {
  encode: (v, w) => void w.u8(v.kind).i64(BigInt(v.liveBytes)),
  decode: (r) => ({ kind: r.u8(), liveBytes: Number(r.i64()) }),
};

const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validateVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new FsError('EINVAL', `bad volume name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 . _ - (not starting with . _ -)`);
  }
}

export function validateSnapshotName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new FsError('EINVAL', `bad snapshot name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 . _ - (not starting with . _ -)`);
  }
}

interface SuperBlock {
  format: 'silt';
  version: number;
  volumeId: string;
  name: string;
  createdMs: number;
}

/**
 * Called under the volume lock at the start of every commit. For a checkpoint: push every inode
 * changed since the last checkpoint into the inode table (flushing its trees). For a delta: return
 * the encoded records of the inodes changed since the last commit, for the journal.
 */
export type CommitHook = (kind: CommitRecord['kind']) => Promise<Iterable<[number, Uint8Array]>>;

/**
 * What holding the volume's owner lease means to the commit path (lease.ts implements it). While
 * one is set, commits and data segments are created without reading them back (no other writer
 * can race them), no PUT attempt starts unless `mayWrite` passes, and no commit is acknowledged
 * until `ensureHeld` has confirmed the lease after its PUT returned: another owner takes over only
 * once this one can no longer do either.
 */
export interface OwnershipGuard {
  /** Throws (no I/O) unless this process may start writing the volume's objects now. */
  mayWrite(): void;
  /** Resolves once the lease is known held (renewing it if its last check is old); rejects if lost or unknown. */
  ensureHeld(): Promise<void>;
  /** True once another process took the volume over. */
  readonly lost: boolean;
}

/** The checkpoint that delta commits build on. */
interface CheckpointInfo {
  seq: number;
  nonceNext: number;
  inodeTableRoot: Loc;
  segmentTableRoot: Loc;
  timeMs: number;
}

/**
 * A volume: its trees, its log, and its commits (the seed's headhunter).
 *
 * All reads and mutations of the trees run under `lock`. A commit takes the lock only to
 * serialize state into the open commit segment; the PUT runs outside it, so writers continue
 * while a commit is in flight. Commits are PUT strictly in sequence (one at a time), and every
 * `sync()` caller that arrives while one is in flight shares the next one (group commit).
 */
export class Volume {
  readonly lock = new Mutex();
  readonly writer: LogSegmentWriter;
  readonly reader: SegmentReader;
  /** Node storage for every accounted tree (inode table, directories, extent maps). */
  readonly nodeStore: NodeStore;
  /** Node storage for the segment table: the same log, but outside live-byte accounting. */
  private readonly segTableStore: NodeStore;
  inodeTable!: BTree<number, Uint8Array>;
  private segTable!: BTree<number, SegmentStats>;
  private nonce: number;
  /** Live-byte changes not yet in the segment table (data and tree nodes): applied at checkpoints. */
  private liveDelta = new Map<number, number>();
  /** Live-byte changes of data records not yet in any commit's journal. */
  private journalLive = new Map<number, number>();
  /** Tree and lifecycle changes since the last commit (the inode layer appends to it). */
  readonly journal = new JournalWriter();
  private checkpointAt: CheckpointInfo;
  private deltasSinceCheckpoint = 0;
  private journalBytesSinceCheckpoint = 0;
  /** The next commit must be a checkpoint (asked for, or the trees hold replayed state). */
  private checkpointWanted = false;
  private commitHook: CommitHook = async () => [];
  private ownership: OwnershipGuard | null = null;
  private changeSeq = 0;
  private durableChangeSeq = 0;
  private committing: Promise<void> | null = null;
  /** sync() calls waiting for a commit now. */
  private syncCallers = 0;
  /** Group commit (see linger): callers waiting when the last commit landed, and its latency. */
  private expectedCallers = 0;
  private lastCommitMs = 0;
  private forming: { expected: number; ready: () => void } | null = null;
  private headSeq = 0;
  /** The sequence the stored `head` object is known to name (what recovery will probe from). */
  private durableHeadSeq = 0;
  private headWrite: Promise<void> = Promise.resolve();
  private fencedError: Error | null = null;
  private closed = false;
  /** Stops counting this volume in silt_dirty_bytes (at close). */
  private readonly unregisterDirty: () => void;
  /** The last durable commit. */
  lastCommit: CommitRecord;
  /** The last durable checkpoint (lastCommit, or the checkpoint lastCommit builds on). */
  lastDurableCheckpoint: CommitRecord;
  private snapshotList: SnapshotRef[];
  /** Set when this is a read-only view of a snapshot: every mutation gets EROFS, nothing is written. */
  readOnlySnapshot: string | undefined;
  inodeCount: number;
  readonly log: Logger;
  readonly failpoints: Failpoints;
  /** Problems found while opening (a corrupt newest commit we fell back from). */
  readonly openWarnings: string[] = [];
  /** What opening replayed (delta commits after the newest checkpoint), if anything. */
  replayed: ReplayReport | undefined;

  private constructor(
    readonly store: ObjectStore,
    readonly name: string,
    readonly opts: VolumeOptions,
    commit: CommitRecord,
    nextSeq: number,
  ) {
    this.log = opts.logger;
    this.failpoints = opts.failpoints;
    this.lastCommit = commit;
    this.lastDurableCheckpoint = commit;
    this.checkpointAt = {
      seq: commit.checkpointSeq,
      nonceNext: commit.checkpointNonceNext,
      inodeTableRoot: commit.inodeTableRoot,
      segmentTableRoot: commit.segmentTableRoot,
      timeMs: commit.timeMs,
    };
    this.snapshotList = commit.snapshots;
    this.nonce = commit.nonceNext;
    this.inodeCount = commit.inodeCount;
    this.headSeq = commit.seq;
    const prefix = `${name}/`;
    this.writer = new LogSegmentWriter({
      store,
      volumePrefix: prefix,
      nextSeq,
      segmentBytesMax: opts.segmentBytesMax,
      inflightSegmentsMax: opts.inflightSegmentsMax,
      allocDataSegmentNumber: () => this.allocNonce(),
      failpoints: opts.failpoints,
      logger: opts.logger,
    });
    this.reader = new SegmentReader(
      { store, volumePrefix: prefix, cacheBytesMax: opts.cacheBytesMax, readAheadBytes: opts.readAheadBytes },
      this.writer,
    );
    this.unregisterDirty = registerDirtySource(this, (v) => v.writer.bufferedBytes);
    this.segTableStore = {
      readNode: (loc: NodeLoc) => this.reader.read(loc, RecordType.NODE),
      writeNode: (payload: Uint8Array, owner: number) => this.writer.appendNode(payload, owner, 0),
      releaseNode: () => {},
    };
    // Node live bytes are not journaled: replaying the journal's tree operations re-derives them.
    this.nodeStore = {
      readNode: (loc: NodeLoc) => this.reader.read(loc, RecordType.NODE),
      writeNode: (payload: Uint8Array, owner: number) => {
        const loc = this.writer.appendNode(payload, owner, 0);
        addTo(this.liveDelta, loc.seg, loc.len);
        return loc;
      },
      releaseNode: (loc: NodeLoc) => addTo(this.liveDelta, loc.seg, -loc.len),
    };
  }

  get prefix(): string {
    return `${this.name}/`;
  }
  get volumeId(): string {
    return this.lastCommit.volumeId;
  }
  /** Null while the volume can commit; the reason once it cannot (fenced by another server, or halted). */
  get fenced(): Error | null {
    return this.fencedError;
  }
  get hasUncommittedChanges(): boolean {
    return this.changeSeq > this.durableChangeSeq;
  }

  /** A fresh 64-bit nonce (inode numbers, data segment numbers). */
  allocNonce(): number {
    const n = this.nonce++;
    assert(Number.isSafeInteger(this.nonce), 'nonce space exhausted');
    return n;
  }

  /** Live-bytes accounting of data records: a record in `seg` became referenced (+) or unreferenced (-). */
  addLive(seg: number, delta: number): void {
    addTo(this.liveDelta, seg, delta);
    addTo(this.journalLive, seg, delta);
  }

  /** Make the next commit a checkpoint. */
  requestCheckpoint(): void {
    this.checkpointWanted = true;
  }

  /** Commit a checkpoint now (durably), whether or not anything changed since the last commit. */
  async checkpoint(): Promise<void> {
    await this.lock.run(async () => {
      this.checkpointWanted = true;
      this.markChanged();
    });
    await this.sync();
  }

  /** The newest durable commit is a delta (or a checkpoint is wanted): an idle volume should checkpoint. */
  get checkpointPending(): boolean {
    return this.checkpointWanted || this.lastCommit.kind === 'delta' || this.deltasSinceCheckpoint > 0;
  }

  /** The roots of the trees as they stand (flushed), for checkers that walk stored nodes. */
  get treeRoots(): { inodeTableRoot: Loc; segmentTableRoot: Loc } {
    const inodeTableRoot = this.inodeTable.root;
    const segmentTableRoot = this.segTable.root;
    assert(inodeTableRoot !== undefined && segmentTableRoot !== undefined, 'volume trees were never flushed');
    return { inodeTableRoot, segmentTableRoot };
  }

  private decideKind(): CommitRecord['kind'] {
    if (this.checkpointWanted || this.checkpointAt.seq < 1) return 'checkpoint';
    if (this.deltasSinceCheckpoint >= this.opts.checkpointDeltasMax) return 'checkpoint';
    if (this.journalBytesSinceCheckpoint + this.journal.bytes >= this.opts.checkpointJournalBytesMax) return 'checkpoint';
    if (Date.now() - this.checkpointAt.timeMs >= this.opts.checkpointIntervalMs) return 'checkpoint';
    return 'delta';
  }

  setCommitHook(hook: CommitHook): void {
    this.commitHook = hook;
  }

  /** Commit under an owner lease from now on (or without one, with null): see OwnershipGuard. */
  setOwnership(guard: OwnershipGuard | null): void {
    this.ownership = guard;
    this.writer.setOwner(guard);
  }

  /** Something changed in memory that the next commit must carry. */
  markChanged(): void {
    this.changeSeq++;
  }

  /**
   * Stop committing for good: an update failed half-way (a store read failed after it had changed
   * memory), so memory may hold part of an operation, which no commit may carry. Reopening the
   * volume recovers the last commit. Call under the lock, before releasing it.
   */
  halt(cause: unknown): void {
    if (this.fencedError) return;
    const why = cause instanceof Error ? cause.message : String(cause);
    this.fencedError = new Error(`volume stopped after an update failed half-way (${why}); reopen it to recover the last commit`, { cause });
    this.log.error('volume stopped: an update failed part-way through; refusing further commits', { err: why });
  }

  /** Throws EROFS once the volume has been fenced or closed. Mutations call it first. */
  checkWritable(): void {
    if (this.readOnlySnapshot !== undefined) throw new FsError('EROFS', `snapshot ${this.readOnlySnapshot} is read-only`);
    if (this.fencedError) throw new FsError('EROFS', this.fencedError.message, { cause: this.fencedError });
    if (this.closed) throw new FsError('EROFS', 'volume is closed');
  }

  /**
   * Resolve once everything changed before the call is durable (one commit, shared with every
   * concurrent caller). Rejects with EIO if the store cannot take the commit; the volume stays
   * consistent and the next sync retries the same bytes.
   */
  async sync(): Promise<void> {
    const target = this.changeSeq;
    if (this.durableChangeSeq >= target) return;
    metrics.syncWaiters.inc();
    this.syncCallers++;
    try {
      if (this.forming && this.syncCallers >= this.forming.expected) this.forming.ready();
      while (this.durableChangeSeq < target) {
        if (this.fencedError) throw new FsError('EIO', this.fencedError.message, { cause: this.fencedError });
        if (!this.committing) {
          this.committing = this.runCommit().finally(() => {
            this.committing = null;
          });
        }
        try {
          await this.committing;
        } catch (err) {
          throw err instanceof FsError ? err : new FsError('EIO', `commit failed: ${errMessage(err)}`, { cause: err });
        }
      }
    } finally {
      this.syncCallers--;
    }
  }

  /**
   * Group commit. When the last commit ended with several callers waiting (writers closing files
   * at the same time in sync-on-close mode), the ones it acknowledged are about to come back with
   * their next file while the rest wait: the next commit waits a moment (a fraction of a commit's
   * latency, at most groupCommitLingerMs) until as many callers wait as did then, so that one PUT
   * carries all of them instead of one PUT for the first and a whole commit's wait for the others.
   * A lone writer never waits here.
   */
  private async linger(): Promise<void> {
    const expected = this.expectedCallers;
    const ms = Math.min(this.opts.groupCommitLingerMs, this.lastCommitMs / 4);
    if (expected < 2 || ms <= 0 || this.syncCallers >= expected) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.forming?.ready(), ms);
      this.forming = {
        expected,
        ready: () => {
          clearTimeout(timer);
          this.forming = null;
          resolve();
        },
      };
    });
    metrics.commitLingers.inc();
  }

  private async runCommit(): Promise<void> {
    await this.linger();
    const sealed = await this.lock.run(async () => {
      // Checked under the lock: a halt happens under it too, so no commit can follow one.
      if (this.fencedError) throw new FsError('EIO', this.fencedError.message, { cause: this.fencedError });
      const covered = this.changeSeq;
      const kind = this.decideKind();
      // Once a checkpoint's hook has run, the changes it folded into the trees are in no journal:
      // until a checkpoint is sealed, every commit must be one.
      if (kind === 'checkpoint') this.checkpointWanted = true;
      const inodes = await this.commitHook(kind);
      const prevSeq = this.lastCommit.seq;
      let record: CommitRecord | undefined;
      if (kind === 'checkpoint') {
        // Order matters for exact live-byte accounting: every accounted node is written (and every
        // superseded one released) before the deltas are applied. The segment table's own nodes
        // are not accounted (they would change the table while it is being written).
        const inodeTableRoot = this.inodeTable.flush();
        await this.applyLiveDelta();
        const segmentTableRoot = this.segTable.flush();
        this.failpoints.hit('before-checkpoint-seal');
        const c = this.writer.sealCommit((seq) => {
          record = {
            version: COMMIT_VERSION,
            volumeId: this.volumeId,
            seq,
            prevSeq,
            timeMs: Date.now(),
            nonceNext: this.nonce,
            inodeTableRoot,
            segmentTableRoot,
            inodeCount: this.inodeCount,
            snapshots: this.snapshotList,
            kind,
            checkpointSeq: seq,
            checkpointNonceNext: this.nonce,
            journal: new Uint8Array(0),
          };
          return encodeCommit(record);
        });
        assert(record !== undefined);
        // The checkpoint holds everything: what was journaled or waiting to be is covered by it.
        this.journal.discard();
        this.journalLive.clear();
        this.checkpointAt = { seq: record.seq, nonceNext: record.nonceNext, inodeTableRoot, segmentTableRoot, timeMs: record.timeMs };
        this.deltasSinceCheckpoint = 0;
        this.journalBytesSinceCheckpoint = 0;
        this.checkpointWanted = false;
        return { c, covered, record };
      }
      const cp = this.checkpointAt;
      const c = this.writer.sealCommit((seq) => {
        record = {
          version: COMMIT_VERSION,
          volumeId: this.volumeId,
          seq,
          prevSeq,
          timeMs: Date.now(),
          nonceNext: this.nonce,
          inodeTableRoot: cp.inodeTableRoot,
          segmentTableRoot: cp.segmentTableRoot,
          inodeCount: this.inodeCount,
          snapshots: this.snapshotList,
          kind,
          checkpointSeq: cp.seq,
          checkpointNonceNext: cp.nonceNext,
          journal: this.journal.take(inodes, this.journalLive),
        };
        this.journalLive.clear();
        return encodeCommit(record);
      });
      assert(record !== undefined);
      this.deltasSinceCheckpoint++;
      this.journalBytesSinceCheckpoint += record.journal.length;
      return { c, covered, record };
    });
    const endTimer = metrics.commitSeconds.startTimer();
    try {
      await this.writer.putCommit(sealed.c);
      // Acknowledge only what landed while the lease still held (see OwnershipGuard). A commit
      // that landed but is not confirmed is durable, just not acknowledged: the next commit, once
      // confirmed, covers it.
      if (this.ownership) await this.ownership.ensureHeld();
    } catch (err) {
      metrics.commitFailures.inc();
      if ((err instanceof StoreError && err.kind === 'precondition_failed') || this.ownership?.lost) {
        this.fencedError = err instanceof Error ? err : new Error(String(err));
        this.log.error('volume fenced: another server owns it now; refusing further writes', { err: errMessage(err) });
      }
      throw err;
    }
    this.lastCommitMs = endTimer() * 1000;
    // Callers waiting now: the ones this commit covers and the ones that arrived while it was in flight.
    this.expectedCallers = this.syncCallers;
    metrics.commits.inc();
    metrics.commitBytes.inc(sealed.c.segment.bytes.length);
    metrics.commitSequence.set(sealed.record.seq);
    metrics.commitTimestamp.set(sealed.record.timeMs / 1000);
    metrics.dirtyBytes.set(this.writer.bufferedBytes);
    this.lastCommit = sealed.record;
    if (sealed.record.kind === 'checkpoint') this.lastDurableCheckpoint = sealed.record;
    this.durableChangeSeq = Math.max(this.durableChangeSeq, sealed.covered);
    // Recovery probes forward from the hint and replays from the checkpoint: point it at checkpoints.
    if (sealed.record.kind === 'checkpoint' && sealed.record.seq - this.headSeq >= this.opts.headEveryCommits) this.writeHead(sealed.record.seq);
  }

  /**
   * Move the pending live-byte deltas into the segment table. A segment's delta leaves the pending
   * map only once the table holds it, so a store read that fails part-way (loading a table node)
   * leaves the rest pending for the next commit: table + pending = referenced, always. Each table
   * get/put/delete loads what it needs before changing anything, so none is applied by half.
   */
  private async applyLiveDelta(): Promise<void> {
    for (const [seg, delta] of [...this.liveDelta]) {
      if (delta !== 0) {
        const cur = await this.segTable.get(seg);
        const liveBytes = (cur?.liveBytes ?? 0) + delta;
        if (liveBytes <= 0 && cur) await this.segTable.delete(seg);
        else if (liveBytes > 0) {
          await this.segTable.put(seg, { kind: isCommitSegment(seg) ? SegmentKind.COMMIT : SegmentKind.DATA, liveBytes });
        }
      }
      // Subtract rather than delete: the entry may have grown while this awaited.
      const left = (this.liveDelta.get(seg) ?? 0) - delta;
      if (left === 0) this.liveDelta.delete(seg);
      else this.liveDelta.set(seg, left);
    }
  }

  /** The head hint, off the critical path: a stale or missing head only makes recovery probe more. */
  private writeHead(seq: number): void {
    this.headSeq = seq;
    this.headWrite = this.headWrite
      .then(async () => {
        this.failpoints.hit('before-head-put');
        await this.store.put(`${this.prefix}head`, Buffer.from(JSON.stringify({ seq }) + '\n'));
        this.durableHeadSeq = seq;
      })
      .catch((err: unknown) => {
        // Not written: the next commit or updateHead tries again.
        if (this.headSeq === seq) this.headSeq = this.durableHeadSeq;
        this.log.warn('head hint update failed', { err: errMessage(err) });
      });
  }

  /** Snapshots as the next commit will record them. */
  get snapshots(): readonly SnapshotRef[] {
    return this.snapshotList;
  }

  /**
   * Retain the newest durable commit under a name (after committing everything changed so far).
   * Nothing is copied: the snapshot keeps that commit's trees, and gc keeps what they reference.
   */
  async createSnapshot(name: string): Promise<SnapshotRef> {
    validateSnapshotName(name);
    this.checkWritable();
    // A snapshot names a checkpoint (its trees are whole): one covering everything before the call.
    await this.checkpoint();
    const snap = await this.lock.run(async () => {
      if (this.snapshotList.some((s) => s.name === name)) throw new FsError('EEXIST', `snapshot ${name} exists`);
      if (this.snapshotList.length >= 1000) throw new FsError('ENOSPC', 'a volume keeps at most 1000 snapshots');
      const cp = this.lastDurableCheckpoint;
      assert(cp.kind === 'checkpoint' && cp.seq >= 1, 'snapshot: no durable checkpoint');
      const ref: SnapshotRef = {
        name,
        seq: cp.seq,
        createdMs: Date.now(),
        inodeTableRoot: cp.inodeTableRoot,
      };
      this.snapshotList = [...this.snapshotList, ref];
      this.markChanged();
      return ref;
    });
    await this.sync();
    return snap;
  }

  /** Forget a snapshot (durably); gc then reclaims what only it referenced. */
  async deleteSnapshot(name: string): Promise<void> {
    this.checkWritable();
    await this.lock.run(async () => {
      if (!this.snapshotList.some((s) => s.name === name)) throw new FsError('ENOENT', `no snapshot ${name}`);
      this.snapshotList = this.snapshotList.filter((s) => s.name !== name);
      this.markChanged();
    });
    await this.sync();
  }

  /**
   * The sequence the stored `head` hint names (recovery probes forward from it, so gc keeps every
   * commit from there on). What was read at open or last written successfully, never what a
   * failed or pending write meant to say.
   */
  get headHintSeq(): number {
    return this.durableHeadSeq;
  }

  /** Point the `head` hint at the newest durable commit and wait for it (gc does, before deleting old commits). */
  async updateHead(): Promise<void> {
    if (this.lastCommit.seq !== this.durableHeadSeq) this.writeHead(this.lastCommit.seq);
    await this.headWrite;
  }

  /** The cleaner moves a segment-table node: rewrite it at the next commit if still referenced. */
  async relocateSegmentTableNode(loc: NodeLoc, payload: Uint8Array): Promise<boolean> {
    const node = decodeNode(payload, u64Key, segStatsValue);
    const moved = await this.segTable.relocate(loc, node.keys[0], node.level);
    if (moved) this.markChanged();
    return moved;
  }

  /** Segment table entries (segment id -> live bytes), for stat/fsck/gc. */
  /**
   * Segments with live bytes as they stand now: the segment table (as of the last checkpoint) with
   * the changes made since applied. For status displays; gc and the cleaner read commits' tables.
   */
  async *segments(): AsyncGenerator<[number, SegmentStats]> {
    const pending = new Map(this.liveDelta);
    for await (const [seg, s] of this.segTable.entries()) {
      const delta = pending.get(seg) ?? 0;
      pending.delete(seg);
      if (s.liveBytes + delta > 0) yield [seg, { kind: s.kind, liveBytes: s.liveBytes + delta }];
    }
    for (const [seg, delta] of [...pending].sort((a, b) => a[0] - b[0])) {
      if (delta > 0) yield [seg, { kind: isCommitSegment(seg) ? SegmentKind.COMMIT : SegmentKind.DATA, liveBytes: delta }];
    }
  }

  /** Final commit, then stop. Further mutations get EROFS. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.fencedError && this.readOnlySnapshot === undefined) {
      // End on a checkpoint: the next open needs no replay.
      if (this.checkpointPending || this.hasUncommittedChanges) await this.checkpoint();
      if (this.lastCommit.seq !== this.headSeq) this.writeHead(this.lastCommit.seq);
      await this.headWrite;
    }
    this.closed = true;
    this.unregisterDirty();
  }

  // ------------------------------------------------------------------ creation and recovery

  /**
   * mkfs: a new volume in the store. `init` runs under the lock before the first commit (the
   * inode layer creates the root directory there). Fails with EEXIST if the volume exists.
   */
  static async create(
    store: ObjectStore,
    name: string,
    opts: Partial<VolumeOptions>,
    init: (v: Volume) => Promise<void>,
  ): Promise<Volume> {
    validateVolumeName(name);
    const o = { ...defaultVolumeOptions, ...opts };
    // A volume whose superblock is lost still has its commits: a new superblock (a new volume id)
    // would make every one of them unopenable. Refuse; the old one can be restored from a commit.
    const existing = await store.list(`${name}/log/`, { limit: 1 });
    if (existing.objects.length > 0) {
      throw new FsError('EEXIST', `volume ${name} has commits in ${store.capabilities.description} but no superblock: restore ${name}/super, do not mkfs over it`);
    }
    const volumeId = randomBytes(16).toString('hex');
    const sb: SuperBlock = { format: 'silt', version: 1, volumeId, name, createdMs: Date.now() };
    try {
      await store.put(`${name}/super`, Buffer.from(JSON.stringify(sb) + '\n'), {
        ifNoneMatch: store.capabilities.conditionalCreate,
      });
    } catch (err) {
      metrics.commitFailures.inc();
      if (err instanceof StoreError && err.kind === 'precondition_failed') {
        throw new FsError('EEXIST', `volume ${name} already exists in ${store.capabilities.description}`, { cause: err });
      }
      throw err;
    }
    const empty: Loc = { seg: 0, off: 0, len: 0 };
    const genesis: CommitRecord = {
      version: COMMIT_VERSION,
      volumeId,
      seq: 0,
      prevSeq: 0,
      timeMs: sb.createdMs,
      nonceNext: 2, // inode 1 is the root directory
      inodeTableRoot: empty,
      segmentTableRoot: empty,
      inodeCount: 0,
      snapshots: [],
      kind: 'checkpoint',
      checkpointSeq: 0,
      checkpointNonceNext: 2,
      journal: new Uint8Array(0),
    };
    const v = new Volume(store, name, o, genesis, 1);
    v.inodeTable = BTree.create(v.nodeStore, u64Key, bytesValue, { owner: 0 });
    v.segTable = BTree.create(v.segTableStore, u64Key, segStatsValue, { owner: SEGMENT_TABLE_OWNER });
    await v.lock.run(() => init(v));
    v.markChanged();
    await v.sync();
    v.writeHead(v.lastCommit.seq);
    await v.headWrite;
    return v;
  }

  /** A read-only view of a snapshot: the volume as of the commit the snapshot retains. */
  static async openSnapshot(store: ObjectStore, name: string, snapshot: string, opts: Partial<VolumeOptions>): Promise<Volume> {
    const current = await Volume.open(store, name, opts);
    const snap = current.snapshots.find((s) => s.name === snapshot);
    if (!snap) {
      const names = current.snapshots.map((s) => s.name).join(', ') || 'none';
      throw new FsError('ENOENT', `volume ${name} has no snapshot ${snapshot} (snapshots: ${names})`);
    }
    const commit = await readCommit(store, `${name}/`, snap.seq);
    if (commit.kind !== 'checkpoint') throw new CorruptionError(`snapshot ${snapshot} names commit ${snap.seq}, which is not a checkpoint`);
    const o = { ...defaultVolumeOptions, ...opts };
    const v = new Volume(store, name, o, commit, current.writer.nextSeq);
    v.readOnlySnapshot = snapshot;
    v.inodeTable = BTree.open(v.nodeStore, u64Key, bytesValue, commit.inodeTableRoot, { owner: 0 });
    v.segTable = BTree.open(v.segTableStore, u64Key, segStatsValue, commit.segmentTableRoot, { owner: SEGMENT_TABLE_OWNER });
    return v;
  }

  /** Open the newest valid commit of an existing volume (recovery). */
  static async open(store: ObjectStore, name: string, opts: Partial<VolumeOptions>): Promise<Volume> {
    validateVolumeName(name);
    const o = { ...defaultVolumeOptions, ...opts };
    const prefix = `${name}/`;
    const sb = await readSuper(store, name);
    const hint = await readHead(store, prefix);
    // Probe forward from the hint until a sequence is missing: that bounds the newest commit.
    // The hint is rewritten at checkpoints, so the newest may be many ahead: probe 2, then 4, ...
    // (up to PROBE_BATCH) at a time.
    let last = hint - 1;
    for (let batch = 2; ; batch = Math.min(PROBE_BATCH, batch * 2)) {
      const found = await Promise.all(Array.from({ length: batch }, (_, i) => store.head(commitKey(prefix, last + 1 + i))));
      const missing = found.findIndex((f) => f === null);
      last += missing < 0 ? batch : missing;
      if (missing >= 0) break;
    }
    if (last < hint) {
      // The hinted commit itself is missing: the hint points past what exists (a restored or
      // hand-edited store; it should never happen). Fall back to a listing rather than walking
      // down through sequences that were never written.
      last = await highestListedCommit(store, prefix);
    }
    if (last < 1) throw new CorruptionError(`volume ${name}: no commit found in the store`);
    const warnings: string[] = [];
    // Commits never leave a gap (each lands after the one before it): one past a missing sequence
    // means a commit object was lost or deleted. Opening the state before the gap silently would
    // go back in time; say so.
    const beyond = await store.list(`${prefix}log/`, { after: commitKey(prefix, last + 1), limit: 1 });
    if (beyond.objects.length > 0) {
      warnings.push(`commit ${last + 1} is missing but ${beyond.objects[0]!.key} exists (a commit object was lost); recovered commit ${last}`);
    }
    for (let seq = last; seq >= 1; ) {
      let commit: CommitRecord;
      let journals: Array<{ seq: number; entries: JournalEntry[] }> = [];
      try {
        commit = await readCommit(store, prefix, seq);
        if (commit.volumeId !== sb.volumeId) {
          throw new CorruptionError(`commit ${seq} belongs to volume ${commit.volumeId}, not ${sb.volumeId}`);
        }
        if (commit.kind === 'delta') {
          // Every commit from the checkpoint on must verify: a damaged one cuts the chain there.
          const chain = await readJournals(store, prefix, commit, sb.volumeId);
          if ('brokenAt' in chain) {
            warnings.push(`commit ${chain.brokenAt} is unreadable (${chain.why}); falling back to commit ${chain.brokenAt - 1}`);
            seq = chain.brokenAt - 1;
            continue;
          }
          journals = chain.journals;
        }
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw err;
        warnings.push(`commit ${seq} is unreadable (${err.message}); falling back to commit ${seq - 1}`);
        seq--;
        continue;
      }
      const v = new Volume(store, name, o, commit, last + 1);
      // The stored hint may be older than the commit we open (a crash before the head PUT).
      v.headSeq = v.durableHeadSeq = Math.min(hint, commit.seq);
      // Data segments at or above the high-water mark are left over from a crash (no durable
      // commit references them): hand out numbers above them, so that creating a new data
      // segment (never an overwrite) does not collide with one and fence us.
      v.nonce = Math.max(v.nonce, await nextUnlistedDataNumber(store, prefix, commit.nonceNext));
      v.openWarnings.push(...warnings);
      for (const w of warnings) o.logger.warn(w);
      v.inodeTable = BTree.open(v.nodeStore, u64Key, bytesValue, commit.inodeTableRoot, { owner: 0 });
      v.segTable = BTree.open(v.segTableStore, u64Key, segStatsValue, commit.segmentTableRoot, { owner: SEGMENT_TABLE_OWNER });
      if (journals.length > 0) {
        // The state of a delta commit: its checkpoint's trees with every journal since replayed,
        // written out as a checkpoint would be (in memory; the next commit must be a checkpoint).
        await v.lock.run(async () => {
          v.replayed = await replayJournals(v, journals);
          v.inodeTable.flush();
          await v.applyLiveDelta();
          v.segTable.flush();
          v.journalLive.clear();
          v.checkpointWanted = true;
        });
        o.logger.info('replayed delta commits since the last checkpoint', { volume: name, checkpoint: commit.checkpointSeq, commit: commit.seq, ...v.replayed });
      }
      return v;
    }
    throw new CorruptionError(`volume ${name}: no valid commit (${warnings.join('; ')})`);
  }
}

async function readSuper(store: ObjectStore, name: string): Promise<SuperBlock> {
  let sb: unknown;
  for (let attempt = 1; ; attempt++) {
    let raw: Uint8Array;
    try {
      raw = await store.get(`${name}/super`);
    } catch (err) {
      if (err instanceof StoreError && err.kind === 'not_found') {
        throw new FsError('ENOENT', `no volume ${name} in ${store.capabilities.description}: run silt mkfs first`, { cause: err });
      }
      throw err;
    }
    try {
      sb = JSON.parse(Buffer.from(raw).toString('utf8'));
      break;
    } catch (err) {
      // A store may cut a body short (a transient fault): read again before calling it corrupt.
      if (attempt >= 5) throw new CorruptionError(`${name}/super is not valid JSON`, { key: `${name}/super`, cause: err });
    }
  }
  const s = sb as Partial<SuperBlock>;
  if (s.format !== 'silt' || s.version !== 1 || typeof s.volumeId !== 'string' || !/^[0-9a-f]{32}$/.test(s.volumeId)) {
    throw new CorruptionError(`${name}/super is not a Silt version 1 superblock`, { key: `${name}/super` });
  }
  return s as SuperBlock;
}

async function readHead(store: ObjectStore, prefix: string): Promise<number> {
  try {
    const raw = await store.get(`${prefix}head`);
    const parsed = JSON.parse(Buffer.from(raw).toString('utf8')) as { seq?: unknown };
    if (typeof parsed.seq === 'number' && Number.isSafeInteger(parsed.seq) && parsed.seq >= 1) return parsed.seq;
  } catch (err) {
    if (err instanceof StoreError && err.kind !== 'not_found') throw err;
  }
  return 1; // missing or garbled hint: probe from the start
}

async function highestListedCommit(store: ObjectStore, prefix: string): Promise<number> {
  let best = 0;
  let after: string | undefined;
  for (;;) {
    const page = await store.list(`${prefix}log/`, after !== undefined ? { after } : {});
    for (const o of page.objects) {
      const n = parseInt(o.key.slice(prefix.length + 4), 16);
      if (Number.isSafeInteger(n) && n > best) best = n;
    }
    if (page.next === undefined || page.objects.length === 0) return best;
    after = page.next;
  }
}

/**
 * A ranged GET of bytes known to lie inside the object. A store may cut a response short; that is a
 * transient failure, not corruption: retry, then fail as 'unavailable', so recovery never takes a
 * truncated response for a damaged commit and silently falls back to an older one.
 */
async function getExact(store: ObjectStore, key: string, offset: number, length: number): Promise<Uint8Array> {
  for (let attempt = 1; ; attempt++) {
    const bytes = await store.get(key, { offset, length });
    if (bytes.length === length) return bytes;
    if (attempt >= 3) {
      throw new StoreError('unavailable', `${key}: short read at ${offset} (got ${bytes.length} of ${length} bytes)`, { key });
    }
  }
}

/** One more than the highest `seg/<n>` object with n >= `from` (or `from` when there is none). */
async function nextUnlistedDataNumber(store: ObjectStore, prefix: string, from: number): Promise<number> {
  let next = from;
  let after = from > 0 ? `${prefix}seg/${hex16(from - 1)}` : undefined;
  for (;;) {
    const page = await store.list(`${prefix}seg/`, after !== undefined ? { after } : {});
    for (const o of page.objects) {
      const n = parseInt(o.key.slice(prefix.length + 4), 16);
      if (Number.isSafeInteger(n) && n >= next) next = n + 1;
    }
    if (page.next === undefined || page.objects.length === 0 || page.next === after) return next;
    after = page.next;
  }
}

/** HEADs sent at once while probing for the newest commit. */
const PROBE_BATCH = 16;
/** Journals read at once during recovery. */
const JOURNAL_READS_IN_FLIGHT = 16;

/**
 * The journals of the commits after `newest`'s checkpoint, up to and including `newest`, decoded
 * and in order; or where the chain breaks (a commit missing, damaged, or not of this chain).
 */
async function readJournals(
  store: ObjectStore,
  prefix: string,
  newest: CommitRecord,
  volumeId: string,
): Promise<{ journals: Array<{ seq: number; entries: JournalEntry[] }> } | { brokenAt: number; why: string }> {
  const first = newest.checkpointSeq + 1;
  const n = newest.seq - first + 1;
  const out: Array<{ seq: number; entries: JournalEntry[] } | { broken: string }> = new Array(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const seq = first + i;
      try {
        const c = seq === newest.seq ? newest : await readCommit(store, prefix, seq);
        if (c.volumeId !== volumeId) throw new CorruptionError(`it belongs to volume ${c.volumeId}`);
        if (c.kind !== 'delta' || c.checkpointSeq !== newest.checkpointSeq) {
          throw new CorruptionError(`it is not a delta after checkpoint ${newest.checkpointSeq}`);
        }
        out[i] = { seq, entries: decodeJournal(c.journal, `${commitKey(prefix, seq)} journal`) };
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw err;
        out[i] = { broken: err.message };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(JOURNAL_READS_IN_FLIGHT, n) }, worker));
  const journals: Array<{ seq: number; entries: JournalEntry[] }> = [];
  for (let i = 0; i < n; i++) {
    const j = out[i]!;
    if ('broken' in j) return { brokenAt: first + i, why: j.broken };
    journals.push(j);
  }
  return { journals };
}

/** Read and verify the commit record of `log/<seq>` from its trailer. */
export async function readCommit(store: ObjectStore, prefix: string, seq: number): Promise<CommitRecord> {
  const key = commitKey(prefix, seq);
  const info = await store.head(key);
  if (!info) throw new CorruptionError(`${key} is missing`, { key });
  if (info.size < TRAILER_BYTES) throw new CorruptionError(`${key} is too short to be a segment (${info.size} bytes)`, { key });
  const trailerBytes = await getExact(store, key, info.size - TRAILER_BYTES, TRAILER_BYTES);
  const t = decodeTrailer(trailerBytes, key);
  if (t.totalLen !== info.size) throw new CorruptionError(`${key}: trailer says ${t.totalLen} bytes, object has ${info.size}`, { key });
  if (t.kind !== SegmentKind.COMMIT || t.segmentId !== commitSegmentId(seq)) {
    throw new CorruptionError(`${key}: not the commit segment for sequence ${seq}`, { key });
  }
  const rec = await getExact(store, key, t.commitOff, t.commitLen);
  const { payload } = decodeRecord(rec, `${key} commit record`, RecordType.COMMIT);
  const c = decodeCommit(payload, key);
  if (c.seq !== seq) throw new CorruptionError(`${key}: commit record says sequence ${c.seq}`, { key });
  return c;
}

function addTo(m: Map<number, number>, seg: number, delta: number): void {
  m.set(seg, (m.get(seg) ?? 0) + delta);
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
