/**
 * The lock table behind FUSE GETLK/SETLK/SETLKW and flock (src/fs/locks.ts), without a kernel:
 * POSIX range splitting and merging, conflicts, blocking waits woken in order, interrupts,
 * deadlock detection, flock conversion. The two-process cases on a real mount are in the POSIX
 * case table (fuse-posix.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LockTable, LOCK_OFFSET_MAX } from '../../src/fs/locks.ts';
import { FsError } from '../../src/util/errors.ts';

const A = 1n;
const B = 2n;
const C = 3n;
const EOF = LOCK_OFFSET_MAX;

function errno(e: unknown): string {
  return e instanceof FsError ? e.errno : String(e);
}

function ranges(t: LockTable, ino: number): string[] {
  return t.posixLocks(ino).map((l) => `${l.owner}:${l.type[0]}:${l.start}-${l.end === EOF ? 'EOF' : l.end}`);
}

describe('POSIX byte-range locks', () => {
  test('split, merge and unlock of one owner’s ranges', () => {
    const t = new LockTable();
    t.setlk(1, A, 10, 0n, 99n, 'write');
    t.setlk(1, A, 10, 100n, 199n, 'write'); // adjacent, same type: merged
    assert.deepEqual(ranges(t, 1), ['1:w:0-199']);
    t.setlk(1, A, 10, 50n, 59n, 'read'); // a read lock inside splits the write lock
    assert.deepEqual(ranges(t, 1), ['1:w:0-49', '1:r:50-59', '1:w:60-199']);
    t.setlk(1, A, 10, 0n, 199n, 'unlock');
    assert.deepEqual(ranges(t, 1), []);
    t.setlk(1, A, 10, 500n, EOF, 'read');
    t.setlk(1, A, 10, 1000n, 1999n, 'unlock');
    assert.deepEqual(ranges(t, 1), ['1:r:500-999', '1:r:2000-EOF']);
    assert.equal(t.size.locks, 2);
  });

  test('conflicts: write vs anything of another owner, read vs read shared', () => {
    const t = new LockTable();
    t.setlk(1, A, 10, 0n, 99n, 'write');
    t.setlk(1, A, 10, 200n, 299n, 'read');
    assert.throws(() => t.setlk(1, B, 20, 50n, 50n, 'read'), (e) => errno(e) === 'EAGAIN');
    assert.throws(() => t.setlk(1, B, 20, 250n, 260n, 'write'), (e) => errno(e) === 'EAGAIN');
    t.setlk(1, B, 20, 250n, 260n, 'read');
    t.setlk(1, B, 20, 100n, 199n, 'write'); // the gap
    t.setlk(2, B, 20, 0n, 99n, 'write'); // another inode
    const c = t.getlk(1, C, 0n, EOF, 'write');
    assert.equal(c?.owner, A);
    assert.equal(c?.pid, 10);
    assert.equal(t.getlk(1, C, 300n, EOF, 'write'), undefined);
    assert.equal(t.getlk(1, A, 0n, 99n, 'write'), undefined, 'own locks never conflict');
    assert.equal(t.getlk(1, A, 0n, 150n, 'write')?.owner, B, 'B’s write lock at 100-199 does');
    assert.throws(() => t.setlk(1, A, 10, 5n, 4n, 'read'), (e) => errno(e) === 'EINVAL');
  });

  test('SETLKW waits, is woken in order when the holder unlocks or closes', async () => {
    const t = new LockTable();
    t.setlk(7, A, 10, 0n, EOF, 'write');
    const order: string[] = [];
    const b = t.setlkw(7, B, 20, 0n, 9n, 'write').then(() => order.push('B'));
    const c = t.setlkw(7, C, 30, 5n, 5n, 'read').then(() => order.push('C'));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(order, []);
    assert.equal(t.size.waiters, 2);
    t.unlockAll(7, A); // close(2) of any descriptor drops all of A's locks
    await b;
    // C overlaps B's new write lock and keeps waiting.
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(order, ['B']);
    t.setlk(7, B, 20, 0n, 9n, 'unlock');
    await c;
    assert.deepEqual(order, ['B', 'C']);
    assert.deepEqual(ranges(t, 7), ['3:r:5-5']);
    assert.equal(t.size.waiters, 0);
  });

  test('an interrupted wait rejects with the signal’s reason and leaves no waiter', async () => {
    const t = new LockTable();
    t.setlk(1, A, 10, 0n, EOF, 'write');
    const ac = new AbortController();
    const p = t.setlkw(1, B, 20, 0n, 0n, 'read', ac.signal);
    const reason = new Error('interrupted');
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.equal(t.size.waiters, 0);
    t.unlockAll(1, A);
    assert.deepEqual(ranges(t, 1), [], 'the interrupted waiter did not take the lock later');
    const gone = new AbortController();
    gone.abort(reason);
    t.setlk(1, A, 10, 0n, 0n, 'write');
    await assert.rejects(t.setlkw(1, B, 20, 0n, 0n, 'write', gone.signal), (e) => e === reason);
  });

  test('deadlock: A waits for B while B holds what A wants and waits for A -> EDEADLK', async () => {
    const t = new LockTable();
    t.setlk(1, A, 10, 0n, 9n, 'write');
    t.setlk(1, B, 20, 10n, 19n, 'write');
    const aWaits = t.setlkw(1, A, 10, 10n, 19n, 'write');
    await assert.rejects(t.setlkw(1, B, 20, 0n, 9n, 'write'), (e) => errno(e) === 'EDEADLK');
    // Three owners in a cycle across two inodes.
    t.setlk(2, C, 30, 0n, 0n, 'write');
    const bWaits = t.setlkw(2, B, 20, 0n, 0n, 'write'); // B -> C
    await assert.rejects(t.setlkw(1, C, 30, 10n, 10n, 'read'), (e) => errno(e) === 'EDEADLK'); // C -> B -> ... -> C? B waits for C
    t.unlockAll(1, B);
    await aWaits;
    t.unlockAll(2, C);
    await bWaits;
  });

  test('limits: ENOLCK beyond the table size and waiter count', async () => {
    const t = new LockTable({ locksMax: 3, waitersMax: 1 });
    t.setlk(1, A, 1, 0n, 0n, 'write');
    t.setlk(1, A, 1, 2n, 2n, 'write');
    t.setlk(1, A, 1, 4n, 4n, 'write');
    assert.throws(() => t.setlk(1, A, 1, 6n, 6n, 'write'), (e) => errno(e) === 'ENOLCK');
    const w = t.setlkw(1, B, 2, 0n, 0n, 'read');
    await assert.rejects(t.setlkw(1, C, 3, 0n, 0n, 'read'), (e) => errno(e) === 'ENOLCK');
    t.clearInode(1);
    await assert.rejects(w, (e) => errno(e) === 'ENOLCK');
    assert.deepEqual(t.size, { locks: 0, waiters: 0 });
  });
});

describe('flock', () => {
  test('shared locks coexist; exclusive excludes; LOCK_NB -> EAGAIN; unlock wakes a waiter', async () => {
    const t = new LockTable();
    await t.flock(1, A, 10, 'shared', false);
    await t.flock(1, B, 20, 'shared', false);
    await assert.rejects(t.flock(1, C, 30, 'exclusive', false), (e) => errno(e) === 'EAGAIN');
    let got = false;
    const c = t.flock(1, C, 30, 'exclusive', true).then(() => (got = true));
    t.flockRelease(1, A);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(got, false);
    await t.flock(1, B, 20, 'unlock', false);
    await c;
    assert.deepEqual(
      t.flockHolders(1).map((h) => [h.owner, h.type]),
      [[C, 'exclusive']],
    );
  });

  test('conversion drops the old lock first (not atomic, as on Linux) and is idempotent', async () => {
    const t = new LockTable();
    await t.flock(1, A, 10, 'shared', false);
    await t.flock(1, A, 10, 'shared', false);
    await t.flock(1, B, 20, 'shared', false);
    await assert.rejects(t.flock(1, A, 10, 'exclusive', false), (e) => errno(e) === 'EAGAIN');
    assert.deepEqual(
      t.flockHolders(1).map((h) => h.owner),
      [B],
      'the failed upgrade released the shared lock',
    );
    const ac = new AbortController();
    const w = t.flock(1, A, 10, 'exclusive', true, ac.signal);
    ac.abort(new Error('intr'));
    await assert.rejects(w, /intr/);
    assert.equal(t.size.waiters, 0);
    // POSIX and flock locks are independent.
    t.setlk(2, C, 30, 0n, EOF, 'write');
    await t.flock(2, A, 10, 'exclusive', false).catch(() => assert.fail('flock blocked by a POSIX lock'));
  });
});
