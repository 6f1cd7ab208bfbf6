import type { ObjectStore } from '../objstore/index.ts';
import { StoreError, type Failpoints, type Logger, nullLogger } from '../util/index.ts';
import { SegmentBuilder, type Loc } from './builder.ts';
import { RECORD_HEADER_BYTES, RecordType, SegmentKind, commitSegmentId, dataSegmentId, segmentKey } from './format.ts';

/** The owner lease, as the writer uses it (headhunter's OwnershipGuard). */
export interface SegmentOwner {
  /** Throws (no I/O) unless a PUT may start now. */
  mayWrite(): void;
  /** Resolves once the lease is known held (renewing it if needed). */
  ensureHeld(): Promise<void>;
}

export interface SegmentWriterOptions {
  store: ObjectStore;
  /** Key prefix of the volume, ending in '/'. */
  volumePrefix: string;
  /** Sequence number the next commit segment will carry. */
  nextSeq: number;
  /** Data segments are closed and PUT when they reach this size. */
  segmentBytesMax: number;
  /** At most this many data segments are finished but not yet durable (memory bound). */
  inflightSegmentsMax: number;
  /** Hands out a fresh data-segment number (from the volume nonce). */
  allocDataSegmentNumber: () => number;
  failpoints?: Failpoints;
  logger?: Logger;
}

/** A finished segment whose bytes are kept until the store has them (reads and retries use them). */
export class SealedSegment {
  durable = false;
  private inflight: Promise<void> | null = null;
  constructor(
    readonly id: number,
    readonly key: string,
    readonly bytes: Uint8Array,
    private readonly putOnce: (s: SealedSegment) => Promise<void>,
    /** The buffer `bytes` lives in, recycled once durable (data segments only). */
    readonly backing?: Uint8Array,
  ) {}
  /** PUT it (once at a time); a failed PUT is retried by the next call. */
  persist(): Promise<void> {
    if (this.durable) return Promise.resolve();
    if (!this.inflight) {
      this.inflight = this.putOnce(this).then(
        () => {
          this.durable = true;
          this.inflight = null;
        },
        (err: unknown) => {
          this.inflight = null;
          throw err;
        },
      );
      // A background PUT that fails is retried later by whoever needs it durable.
      this.inflight.catch(() => {});
    }
    return this.inflight;
  }
}

export interface SealedCommit {
  seq: number;
  segment: SealedSegment;
  /** Data segments the commit references that must be durable before it is PUT. */
  dataDeps: SealedSegment[];
}

/**
 * The volume-wide log segment writer. Metadata and small writes go to the open *commit segment*
 * (`log/<seq>`), so a durable commit is one PUT carrying data, tree nodes and the commit record.
 * Large sequential writes go to *data segments* (`seg/<n>`), PUT as soon as they fill; a commit
 * waits for the data segments it references before its own PUT.
 */
export class LogSegmentWriter {
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly log: Logger;
  private seq: number;
  private commitBuf: SegmentBuilder;
  private dataBuf: SegmentBuilder | null = null;
  /** Finished data segments not yet known durable, by id. */
  private readonly pendingData = new Map<number, SealedSegment>();
  /** Sealed commits not yet durable, by id (normally at most one or two). */
  private readonly pendingCommits = new Map<number, SealedSegment>();
  private capacityWaiters: Array<() => void> = [];
  /**
   * Buffers of durable segments, reused for the next ones: as many as can be in flight, so a
   * steady bulk write never touches fresh memory (a page fault per 4 KiB, which costs more than
   * the copy into the buffer itself).
   */
  private readonly spareBuffers: Uint8Array[] = [];
  private stats = { dataSegmentsPut: 0, commitSegmentsPut: 0, bytesPut: 0 };
  /**
   * Set while the volume's owner holds its lease: no other writer can race our creates, so none
   * is read back, and no attempt starts unless `mayWrite` passes (it throws once the lease may
   * have run out).
   */
  private owner: SegmentOwner | null = null;

  constructor(private readonly opts: SegmentWriterOptions) {
    this.store = opts.store;
    this.prefix = opts.volumePrefix;
    this.log = opts.logger ?? nullLogger;
    this.seq = opts.nextSeq;
    this.commitBuf = new SegmentBuilder(commitSegmentId(this.seq), 1024 * 1024);
  }

  get nextSeq(): number {
    return this.seq;
  }

  /** Segments are created under an owner lease (see `owner`), or, with null, without one. */
  setOwner(owner: SegmentOwner | null): void {
    this.owner = owner;
  }
  /** Bytes in the open commit segment (the volume commits early when this grows large). */
  get openCommitBytes(): number {
    return this.commitBuf.length;
  }
  get counters(): Readonly<{ dataSegmentsPut: number; commitSegmentsPut: number; bytesPut: number }> {
    return this.stats;
  }
  /** Bytes held in memory for segments not yet durable (open + finished). */
  get bufferedBytes(): number {
    let n = this.commitBuf.length + (this.dataBuf?.length ?? 0);
    for (const s of this.pendingData.values()) n += s.bytes.length;
    for (const s of this.pendingCommits.values()) n += s.bytes.length;
    return n;
  }

  /** Append a B+tree node (or other metadata) to the open commit segment. */
  appendNode(payload: Uint8Array, owner: number, level: number): Loc {
    return this.commitBuf.append(RecordType.NODE, owner, level, payload);
  }

  /**
   * Append file data. `large` routes it to a data segment (sequential bulk writes); otherwise it
   * shares the open commit segment with metadata.
   */
  appendData(owner: number, fileOffset: number, payload: Uint8Array, large: boolean): Loc {
    if (!large) return this.commitBuf.append(RecordType.DATA, owner, fileOffset, payload);
    // Close the data segment before this record would push it past its size (so its buffer,
    // allocated once at full size plus room for the summary and trailer, never grows).
    const need = RECORD_HEADER_BYTES + payload.length;
    if (this.dataBuf && this.dataBuf.length + need > this.opts.segmentBytesMax) this.sealData();
    if (!this.dataBuf) {
      const n = this.opts.allocDataSegmentNumber();
      const summaryRoom = Math.ceil(this.opts.segmentBytesMax / 4096) * 25 + 4096;
      const size = Math.max(this.opts.segmentBytesMax, need) + summaryRoom;
      this.dataBuf = new SegmentBuilder(dataSegmentId(n), size, this.takeSpare(size));
    }
    return this.dataBuf.append(RecordType.DATA, owner, fileOffset, payload);
  }

  /**
   * Resolves when fewer than inflightSegmentsMax data segments are waiting for the store. Drives
   * the wait itself: a background PUT that failed is retried here (nothing else would retry it
   * before the next commit), and a failure is this caller's, so a writer never waits forever.
   */
  async waitForCapacity(): Promise<void> {
    while (this.pendingData.size >= this.opts.inflightSegmentsMax) {
      const oldest = this.pendingData.values().next().value as SealedSegment;
      await oldest.persist();
    }
  }

  /** Bytes of a record still in memory (open or not yet durable), or undefined. */
  readInMemory(loc: Loc): Uint8Array | undefined {
    if (loc.seg === this.commitBuf.id) return this.commitBuf.slice(loc.off, loc.len);
    if (this.dataBuf && loc.seg === this.dataBuf.id) return this.dataBuf.slice(loc.off, loc.len);
    const s = this.pendingData.get(loc.seg) ?? this.pendingCommits.get(loc.seg);
    if (s) return s.bytes.subarray(loc.off, loc.off + loc.len);
    return undefined;
  }

  /** True if the segment is open or finished-but-not-durable (it must not be read from the store). */
  isInMemory(seg: number): boolean {
    return (
      seg === this.commitBuf.id ||
      (this.dataBuf !== null && seg === this.dataBuf.id) ||
      this.pendingData.has(seg) ||
      this.pendingCommits.has(seg)
    );
  }

  /**
   * Keep the buffer of a durable segment for reuse. Nothing reads it any more: readInMemory no
   * longer finds the segment, and readers copy what they got from it before yielding.
   */
  private recycle(s: SealedSegment): void {
    if (!s.backing) return;
    this.spareBuffers.push(s.backing);
    this.spareBuffers.sort((a, b) => b.length - a.length);
    const keep = this.opts.inflightSegmentsMax + 2;
    if (this.spareBuffers.length > keep) this.spareBuffers.length = keep;
  }

  /** A spare buffer of at least `size` bytes, if one is kept. */
  private takeSpare(size: number): Uint8Array | undefined {
    let best = -1;
    for (let i = 0; i < this.spareBuffers.length; i++) {
      const len = this.spareBuffers[i]!.length;
      if (len >= size && (best < 0 || len < this.spareBuffers[best]!.length)) best = i;
    }
    return best < 0 ? undefined : this.spareBuffers.splice(best, 1)[0];
  }

  private sealData(): void {
    const buf = this.dataBuf;
    if (!buf) return;
    this.dataBuf = null;
    const bytes = buf.finish(SegmentKind.DATA);
    const seg = new SealedSegment(buf.id, segmentKey(this.prefix, buf.id), bytes, (s) => this.putData(s), buf.backing);
    this.pendingData.set(seg.id, seg);
    seg.persist().catch((err: unknown) => this.log.warn('data segment PUT failed; will retry', { key: seg.key, err: String(err) }));
  }

  private async putData(s: SealedSegment): Promise<void> {
    this.opts.failpoints?.hit('before-data-put');
    // Created, never overwritten (see FORMAT.md, "Nonces"): a second server on the volume that has
    // not yet tried to commit hands out the same numbers, and a plain PUT of its segment would
    // replace data that the first server's commits already reference, checksums and all.
    await this.createOnce(s, 'data segment');
    this.opts.failpoints?.hit('after-data-put');
    this.stats.dataSegmentsPut++;
    this.stats.bytesPut += s.bytes.length;
    this.pendingData.delete(s.id);
    this.recycle(s);
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Close the open commit segment with the commit record `makeCommit(seq)` builds (synchronous: the
   * commit captures exactly the state appended so far). The open data segment is closed too,
   * since the commit references its records. Returns what `putCommit` needs.
   */
  sealCommit(makeCommit: (seq: number) => Uint8Array): SealedCommit {
    this.opts.failpoints?.hit('before-commit-seal');
    this.sealData();
    const seq = this.seq;
    const buf = this.commitBuf;
    const bytes = buf.finish(SegmentKind.COMMIT, makeCommit(seq));
    const segment = new SealedSegment(buf.id, segmentKey(this.prefix, buf.id), bytes, (s) => this.putCommitSegment(s), buf.backing);
    this.pendingCommits.set(segment.id, segment);
    this.seq = seq + 1;
    this.commitBuf = new SegmentBuilder(commitSegmentId(this.seq), 1024 * 1024, this.takeSpare(1024 * 1024));
    return { seq, segment, dataDeps: [...this.pendingData.values()] };
  }

  /** Make a sealed commit durable: its data segments first, then one conditional PUT. */
  async putCommit(c: SealedCommit): Promise<void> {
    await Promise.all(c.dataDeps.map((d) => d.persist()));
    // Commits land in sequence order: an earlier commit whose PUT failed goes first (its records
    // are referenced from this one), or recovery, which stops at the first missing sequence, would
    // never find this commit, and a later incarnation would reuse the missing sequence under it.
    for (const s of [...this.pendingCommits.values()].sort((a, b) => a.id - b.id)) {
      if (s.id >= c.segment.id) break;
      await s.persist();
    }
    await c.segment.persist();
  }

  private async putCommitSegment(s: SealedSegment): Promise<void> {
    this.opts.failpoints?.hit('before-commit-put');
    await this.createOnce(s, 'commit');
    this.opts.failpoints?.hit('after-commit-put');
    this.stats.commitSegmentsPut++;
    this.stats.bytesPut += s.bytes.length;
    this.pendingCommits.delete(s.id);
    this.recycle(s);
  }

  /**
   * Create a segment object that must not exist yet (conditional create; HEAD then PUT where the
   * store lacks it). An object already there with our bytes is our own earlier attempt whose
   * answer was lost; with other bytes, another server is writing this volume: 'precondition_failed'
   * (the volume fences itself on it).
   */
  private async createOnce(s: SealedSegment, what: string): Promise<void> {
    const conditional = this.store.capabilities.conditionalCreate;
    const owner = this.owner;
    try {
      // Under an owner lease no other writer exists to race: no HEAD first, no read-back after.
      if (owner) await owner.ensureHeld();
      if (!conditional && !owner && (await this.store.head(s.key))) {
        throw new StoreError('precondition_failed', `${s.key} exists`, { key: s.key });
      }
      await this.store.put(s.key, s.bytes, {
        ...(conditional ? { ifNoneMatch: true } : {}),
        ...(owner ? { verifyCreate: false, beforeAttempt: () => owner.mayWrite() } : {}),
      });
    } catch (err) {
      if (!(err instanceof StoreError && err.kind === 'precondition_failed')) throw err;
      // Our own earlier attempt may have landed with its answer lost: same bytes means success.
      // A failed or cut-short GET proves nothing either way: it fails this attempt (the commit
      // stays pending and the next sync retries), it must not fence the volume.
      const existing = await this.store.get(s.key);
      if (existing.length < s.bytes.length && sameBytes(existing, s.bytes.subarray(0, existing.length))) {
        throw new StoreError('unavailable', `${s.key}: short read while checking an earlier attempt`, { key: s.key });
      }
      if (!sameBytes(existing, s.bytes)) {
        throw new StoreError(
          'precondition_failed',
          `${what} ${s.key} was written by another server: this volume is now owned elsewhere (fenced)`,
          { key: s.key, cause: err },
        );
      }
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

