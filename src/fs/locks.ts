/**
 * In-memory advisory locks, as Linux keeps them: POSIX byte-range locks (fcntl F_GETLK / F_SETLK /
 * F_SETLKW) keyed by inode and lock owner (a process), and BSD flock(2) locks keyed by inode and
 * owner (an open file description). Nothing here is persistent: locks die with the server, as they
 * die with a local machine's reboot.
 *
 * Invariants:
 * - Per inode, one owner's POSIX locks never overlap one another and adjacent ranges of the same
 *   type are merged (so F_GETLK reports what Linux would).
 * - Two owners' POSIX locks overlap only if both are read locks.
 * - A flock holder set has either one exclusive holder or any number of shared ones.
 * - A waiter is queued only after checking that waiting would not close a cycle in the
 *   waits-for graph (EDEADLK), and is removed on grant, on abort (its signal's reason is the
 *   rejection) and when its inode's locks are cleared.
 * Ranges are bigint byte offsets with an inclusive end; OFFSET_MAX (2^63-1) means "to EOF".
 */
import { FsError } from '../util/index.ts';

export type PosixLockType = 'read' | 'write';
export type FlockType = 'shared' | 'exclusive';

export const LOCK_OFFSET_MAX = 0x7fffffffffffffffn;

export interface PosixLock {
  owner: bigint;
  pid: number;
  start: bigint;
  /** Inclusive. */
  end: bigint;
  type: PosixLockType;
}

export interface LockTableOptions {
  /** Most POSIX lock records plus flock holders kept at once (ENOLCK beyond). Default 65536. */
  locksMax?: number;
  /** Most blocked waiters at once (ENOLCK beyond). Default 4096. */
  waitersMax?: number;
}

interface PosixWaiter {
  kind: 'posix';
  ino: number;
  owner: bigint;
  pid: number;
  start: bigint;
  end: bigint;
  type: PosixLockType;
  resolve: () => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

interface FlockWaiter {
  kind: 'flock';
  ino: number;
  owner: bigint;
  pid: number;
  type: FlockType;
  resolve: () => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

type Waiter = PosixWaiter | FlockWaiter;

interface FlockHolder {
  type: FlockType;
  pid: number;
}

function overlaps(a: { start: bigint; end: bigint }, start: bigint, end: bigint): boolean {
  return a.start <= end && start <= a.end;
}

export class LockTable {
  private readonly posix = new Map<number, PosixLock[]>();
  private readonly flocks = new Map<number, Map<bigint, FlockHolder>>();
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly locksMax: number;
  private readonly waitersMax: number;
  private lockCount = 0;
  private waiterCount = 0;

  constructor(opts: LockTableOptions = {}) {
    this.locksMax = opts.locksMax ?? 65536;
    this.waitersMax = opts.waitersMax ?? 4096;
  }

  // ------------------------------------------------------------------------------------------
  // POSIX byte-range locks

  /** F_GETLK: the first lock of another owner that conflicts, or undefined if none. */
  getlk(ino: number, owner: bigint, start: bigint, end: bigint, type: PosixLockType): PosixLock | undefined {
    checkRange(start, end);
    return this.posixConflict(ino, owner, start, end, type);
  }

  /** F_SETLK: take (or with type 'unlock', drop) a range; EAGAIN on conflict. */
  setlk(ino: number, owner: bigint, pid: number, start: bigint, end: bigint, type: PosixLockType | 'unlock'): void {
    checkRange(start, end);
    if (type !== 'unlock' && this.posixConflict(ino, owner, start, end, type)) {
      throw new FsError('EAGAIN', 'conflicting lock');
    }
    this.applyPosix(ino, owner, pid, start, end, type);
  }

  /**
   * F_SETLKW: like setlk but waits for conflicting locks to go. EDEADLK when waiting would
   * deadlock; rejects with `signal.reason` when the signal aborts.
   */
  async setlkw(
    ino: number,
    owner: bigint,
    pid: number,
    start: bigint,
    end: bigint,
    type: PosixLockType | 'unlock',
    signal?: AbortSignal,
  ): Promise<void> {
    checkRange(start, end);
    if (type === 'unlock' || !this.posixConflict(ino, owner, start, end, type)) {
      this.applyPosix(ino, owner, pid, start, end, type);
      return;
    }
    if (this.wouldDeadlock(owner, ino, start, end, type)) throw new FsError('EDEADLK', 'lock wait would deadlock');
    return this.wait(signal, (resolve, reject, cleanup) => ({
      kind: 'posix',
      ino,
      owner,
      pid,
      start,
      end,
      type,
      resolve,
      reject,
      cleanup,
    }));
  }

  /** Drop every POSIX lock `owner` holds on `ino` (close(2) of any descriptor of the file). */
  unlockAll(ino: number, owner: bigint): void {
    const list = this.posix.get(ino);
    if (!list || !list.some((l) => l.owner === owner)) return;
    const kept = list.filter((l) => l.owner !== owner);
    this.lockCount -= list.length - kept.length;
    this.setPosixList(ino, kept);
    this.wake(ino);
  }

  /** The POSIX locks on an inode (a copy; for tests and diagnostics). */
  posixLocks(ino: number): PosixLock[] {
    return (this.posix.get(ino) ?? []).map((l) => ({ ...l }));
  }

  private posixConflict(ino: number, owner: bigint, start: bigint, end: bigint, type: PosixLockType): PosixLock | undefined {
    const list = this.posix.get(ino);
    if (!list) return undefined;
    for (const l of list) {
      if (l.owner === owner || !overlaps(l, start, end)) continue;
      if (type === 'write' || l.type === 'write') return l;
    }
    return undefined;
  }

  private applyPosix(ino: number, owner: bigint, pid: number, start: bigint, end: bigint, type: PosixLockType | 'unlock'): void {
    const list = this.posix.get(ino) ?? [];
    const others: PosixLock[] = [];
    let mine: PosixLock[] = [];
    for (const l of list) (l.owner === owner ? mine : others).push(l);
    const before = mine.length;
    // Cut [start, end] out of this owner's locks.
    const cut: PosixLock[] = [];
    for (const l of mine) {
      if (!overlaps(l, start, end)) {
        cut.push(l);
        continue;
      }
      if (l.start < start) cut.push({ ...l, end: start - 1n });
      if (l.end > end) cut.push({ ...l, start: end + 1n });
    }
    mine = cut;
    if (type !== 'unlock') {
      let s = start;
      let e = end;
      const rest: PosixLock[] = [];
      for (const l of mine) {
        if (l.type === type && (l.end + 1n === s || e + 1n === l.start)) {
          if (l.start < s) s = l.start;
          if (l.end > e) e = l.end;
        } else {
          rest.push(l);
        }
      }
      rest.push({ owner, pid, start: s, end: e, type });
      mine = rest;
    }
    const delta = mine.length - before;
    if (delta > 0 && this.lockCount + delta > this.locksMax) throw new FsError('ENOLCK', 'lock table full');
    this.lockCount += delta;
    mine.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    this.setPosixList(ino, others.concat(mine));
    this.wake(ino);
  }

  private setPosixList(ino: number, list: PosixLock[]): void {
    if (list.length === 0) this.posix.delete(ino);
    else this.posix.set(ino, list);
  }

  /** Would `owner` waiting for this range close a cycle owner -> holder -> ... -> owner? */
  private wouldDeadlock(owner: bigint, ino: number, start: bigint, end: bigint, type: PosixLockType): boolean {
    const seen = new Set<bigint>();
    const stack: bigint[] = this.posixBlockers(ino, owner, start, end, type);
    while (stack.length > 0) {
      const o = stack.pop()!;
      if (o === owner) return true;
      if (seen.has(o)) continue;
      seen.add(o);
      for (const ws of this.waiters.values()) {
        for (const w of ws) {
          if (w.kind === 'posix' && w.owner === o) stack.push(...this.posixBlockers(w.ino, w.owner, w.start, w.end, w.type));
        }
      }
    }
    return false;
  }

  private posixBlockers(ino: number, owner: bigint, start: bigint, end: bigint, type: PosixLockType): bigint[] {
    const out: bigint[] = [];
    for (const l of this.posix.get(ino) ?? []) {
      if (l.owner !== owner && overlaps(l, start, end) && (type === 'write' || l.type === 'write')) out.push(l.owner);
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // flock(2)

  /**
   * LOCK_SH / LOCK_EX (wait or LOCK_NB -> EAGAIN) and LOCK_UN. As on Linux, converting an
   * existing lock first drops it, so a conversion is not atomic.
   */
  async flock(
    ino: number,
    owner: bigint,
    pid: number,
    type: FlockType | 'unlock',
    wait: boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    const holders = this.flocks.get(ino);
    const current = holders?.get(owner);
    if (type === 'unlock') {
      this.flockRelease(ino, owner);
      return;
    }
    if (current?.type === type) return;
    if (current) this.flockRelease(ino, owner);
    if (!this.flockConflict(ino, owner, type)) {
      this.grantFlock(ino, owner, pid, type);
      return;
    }
    if (!wait) throw new FsError('EAGAIN', 'flock held');
    return this.wait(signal, (resolve, reject, cleanup) => ({ kind: 'flock', ino, owner, pid, type, resolve, reject, cleanup }));
  }

  /** Drop `owner`'s flock on `ino` (LOCK_UN, or the last close of the open file). */
  flockRelease(ino: number, owner: bigint): void {
    const holders = this.flocks.get(ino);
    if (!holders || !holders.delete(owner)) return;
    this.lockCount--;
    if (holders.size === 0) this.flocks.delete(ino);
    this.wake(ino);
  }

  /** flock holders on an inode (for tests and diagnostics). */
  flockHolders(ino: number): Array<{ owner: bigint; type: FlockType; pid: number }> {
    return [...(this.flocks.get(ino) ?? new Map<bigint, FlockHolder>())].map(([owner, h]) => ({ owner, ...h }));
  }

  private flockConflict(ino: number, owner: bigint, type: FlockType): boolean {
    const holders = this.flocks.get(ino);
    if (!holders) return false;
    for (const [o, h] of holders) {
      if (o === owner) continue;
      if (type === 'exclusive' || h.type === 'exclusive') return true;
    }
    return false;
  }

  private grantFlock(ino: number, owner: bigint, pid: number, type: FlockType): void {
    let holders = this.flocks.get(ino);
    if (!holders) {
      holders = new Map();
      this.flocks.set(ino, holders);
    }
    if (!holders.has(owner)) {
      if (this.lockCount + 1 > this.locksMax) throw new FsError('ENOLCK', 'lock table full');
      this.lockCount++;
    }
    holders.set(owner, { type, pid });
  }

  // ------------------------------------------------------------------------------------------
  // Waiting

  private wait(
    signal: AbortSignal | undefined,
    make: (resolve: () => void, reject: (e: unknown) => void, cleanup: () => void) => Waiter,
  ): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.waiterCount >= this.waitersMax) return Promise.reject(new FsError('ENOLCK', 'too many lock waiters'));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.removeWaiter(w);
        reject(signal?.reason);
      };
      const cleanup = (): void => signal?.removeEventListener('abort', onAbort);
      const w = make(resolve, reject, cleanup);
      signal?.addEventListener('abort', onAbort, { once: true });
      let list = this.waiters.get(w.ino);
      if (!list) {
        list = [];
        this.waiters.set(w.ino, list);
      }
      list.push(w);
      this.waiterCount++;
    });
  }

  private removeWaiter(w: Waiter): void {
    const list = this.waiters.get(w.ino);
    if (!list) return;
    const i = list.indexOf(w);
    if (i < 0) return;
    list.splice(i, 1);
    this.waiterCount--;
    if (list.length === 0) this.waiters.delete(w.ino);
    w.cleanup();
  }

  /** Grant whatever waiters on `ino` can now proceed, in arrival order. */
  private wake(ino: number): void {
    const list = this.waiters.get(ino);
    if (!list) return;
    for (const w of [...list]) {
      if (!list.includes(w)) continue;
      try {
        if (w.kind === 'posix') {
          if (this.posixConflict(ino, w.owner, w.start, w.end, w.type)) continue;
          this.removeWaiter(w);
          this.applyPosix(ino, w.owner, w.pid, w.start, w.end, w.type); // wakes recursively
          w.resolve();
        } else {
          if (this.flockConflict(ino, w.owner, w.type)) continue;
          this.removeWaiter(w);
          this.grantFlock(ino, w.owner, w.pid, w.type);
          w.resolve();
        }
      } catch (e) {
        this.removeWaiter(w);
        w.reject(e);
      }
    }
  }

  /** Forget every lock and fail every waiter on an inode (the inode is gone). */
  clearInode(ino: number): void {
    const p = this.posix.get(ino);
    if (p) this.lockCount -= p.length;
    this.posix.delete(ino);
    const f = this.flocks.get(ino);
    if (f) this.lockCount -= f.size;
    this.flocks.delete(ino);
    for (const w of [...(this.waiters.get(ino) ?? [])]) {
      this.removeWaiter(w);
      w.reject(new FsError('ENOLCK', 'inode gone'));
    }
  }

  get size(): { locks: number; waiters: number } {
    return { locks: this.lockCount, waiters: this.waiterCount };
  }
}

function checkRange(start: bigint, end: bigint): void {
  if (start < 0n || end < start || end > LOCK_OFFSET_MAX) throw new FsError('EINVAL', 'bad lock range');
}
