import { assert, metrics } from '../util/index.ts';

/**
 * Reused buffers for the segment reader's read-ahead windows.
 *
 * Why: a window's bytes arrive as the socket's own chunks, fresh memory each time. Kept in the
 * cache, those chunks outlive the young generation, so they are freed only by full garbage
 * collections (which V8 starts for every 64 MiB or so of such memory) and the process keeps
 * faulting in new pages for the next ones. Measured on this project's test machine (a VM where a
 * page fault costs ~15 us), that was a third of the CPU of a sequential read. Copying a window
 * into a slab that is reused costs one memcpy; the socket's chunks then die young.
 *
 * A slab is counted (`refs`): each cached record that is a view of it and each borrower (a read
 * being answered from it). It goes back to the pool only at zero, so no view is ever overwritten
 * while someone holds a reference; `gen` tells a view made before the slab was reused. The pool allocates lazily, up to `slabsMax`; past that a window keeps its
 * socket chunks (the old way), so memory stays bounded whatever borrowers hold.
 */
export class SlabPool {
  private readonly free: Slab[] = [];
  private allocated = 0;
  readonly stats = { allocated: 0, reused: 0, exhausted: 0 };

  constructor(
    readonly slabBytes: number,
    readonly slabsMax: number,
  ) {
    assert(Number.isSafeInteger(slabBytes) && slabBytes > 0, 'slab size must be a positive integer');
  }

  /** A slab with one reference (the caller's), or null when every slab is in use. */
  take(): Slab | null {
    const s = this.free.pop();
    if (s) {
      assert(s.refs === 0, 'a free slab has references');
      s.refs = 1;
      s.gen++;
      this.stats.reused++;
      return s;
    }
    if (this.allocated >= this.slabsMax) {
      this.stats.exhausted++;
      return null;
    }
    this.allocated++;
    this.stats.allocated++;
    metrics.readSlabBytes.inc(this.slabBytes);
    const slab = new Slab(this, Buffer.allocUnsafeSlow(this.slabBytes));
    slab.refs = 1;
    return slab;
  }

  /** Slabs that exist (in use or free). */
  get size(): number {
    return this.allocated;
  }

  /** Slabs some view or borrower still references. */
  get inUse(): number {
    return this.allocated - this.free.length;
  }

  /** Called by Slab.unref at zero. */
  giveBack(s: Slab): void {
    assert(s.refs === 0, 'a slab given back while referenced');
    this.free.push(s);
  }
}

export class Slab {
  refs = 0;
  /** Bytes of `buf` the current contents fill. */
  used = 0;
  /** Incremented each time the slab is handed out again: views made before hold other bytes now. */
  gen = 0;
  constructor(
    private readonly pool: SlabPool,
    readonly buf: Buffer,
  ) {}

  ref(): void {
    assert(this.refs > 0, 'a reference taken on a free slab');
    this.refs++;
  }

  unref(): void {
    assert(this.refs > 0, 'a slab released more often than referenced');
    if (--this.refs === 0) this.pool.giveBack(this);
  }
}
