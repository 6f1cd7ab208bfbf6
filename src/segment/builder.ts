import { assert } from '../util/index.ts';
import {
  FORMAT_VERSION,
  RECORD_HEADER_BYTES,
  RecordType,
  SegmentKind,
  TRAILER_BYTES,
  encodeRecord,
  encodeSummary,
  encodeTrailer,
  type SummaryEntry,
} from './format.ts';

/** Where a record lives: segment id, offset of the record (header) in the segment, record length. */
export interface Loc {
  seg: number;
  off: number;
  len: number;
}

/**
 * An open segment being filled in memory. Records appended here are readable at once (reads of
 * not-yet-closed data come from this buffer) and become durable only when the finished bytes are
 * PUT. A builder is finished exactly once.
 */
export class SegmentBuilder {
  private buf: Uint8Array;
  private pos = 0;
  private finished = false;
  readonly entries: SummaryEntry[] = [];
  constructor(
    readonly id: number,
    initialBytes = 64 * 1024,
    reuse?: Uint8Array,
  ) {
    // allocUnsafe: every byte up to `pos` is written before it is read, so zero-filling is waste.
    // A recycled buffer saves the page faults of fresh memory, which dominate bulk writes.
    this.buf = reuse && reuse.length >= initialBytes ? reuse : Buffer.allocUnsafe(initialBytes);
  }

  /** The whole backing buffer (for recycling once the finished bytes are durable). */
  get backing(): Uint8Array {
    return this.buf;
  }

  /** Bytes that can still be appended without growing the buffer. */
  get spare(): number {
    return this.buf.length - this.pos;
  }

  get length(): number {
    return this.pos;
  }
  get recordCount(): number {
    return this.entries.length;
  }
  get isFinished(): boolean {
    return this.finished;
  }

  append(type: RecordType, owner: number, key: number, payload: Uint8Array): Loc {
    assert(!this.finished, 'append to a finished segment');
    const len = RECORD_HEADER_BYTES + payload.length;
    this.ensure(len);
    const off = this.pos;
    encodeRecord(this.buf, off, type, owner, key, payload);
    this.pos += len;
    this.entries.push({ type, owner, key, off, len });
    return { seg: this.id, off, len };
  }

  /** The bytes of a record appended earlier (a view; callers must not keep it across appends). */
  slice(off: number, len: number): Uint8Array {
    assert(off + len <= this.pos, 'slice past the end of an open segment');
    return this.buf.subarray(off, off + len);
  }

  /**
   * Close the segment: append the summary, the commit record (commit segments), and the trailer.
   * Returns the finished object bytes.
   */
  finish(kind: SegmentKind, commitPayload?: Uint8Array): Uint8Array {
    assert(!this.finished, 'segment finished twice');
    assert((kind === SegmentKind.COMMIT) === (commitPayload !== undefined), 'commit payload iff commit segment');
    const summary = encodeSummary(this.entries);
    const summaryLoc = this.append(RecordType.SUMMARY, 0, 0, summary);
    let commitOff = 0;
    let commitLen = 0;
    if (commitPayload) {
      const c = this.append(RecordType.COMMIT, 0, 0, commitPayload);
      commitOff = c.off;
      commitLen = c.len;
    }
    this.entries.pop();
    if (commitPayload) this.entries.pop();
    this.ensure(TRAILER_BYTES);
    const totalLen = this.pos + TRAILER_BYTES;
    this.buf.set(
      encodeTrailer({
        version: FORMAT_VERSION,
        kind,
        segmentId: this.id,
        summaryOff: summaryLoc.off,
        summaryLen: summaryLoc.len,
        commitOff,
        commitLen,
        totalLen,
      }),
      this.pos,
    );
    this.pos = totalLen;
    this.finished = true;
    return this.buf.subarray(0, totalLen);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}
