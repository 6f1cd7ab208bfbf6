/**
 * The owner lease: one writer per volume, refused at start.
 *
 * Fencing (the conditional create of each commit) makes two writers unable to interleave
 * commits, but it only bites at the loser's first commit: until then a second server happily
 * serves stale reads and accepts writes it will never be able to commit. The lease refuses the
 * second writer before it opens the volume.
 *
 * Layout: `<volume>/owner/<epoch as 16 hex digits>`, a small JSON object per acquisition. The
 * highest epoch is the current lease. Acquiring creates epoch+1 with a conditional create, so two
 * processes racing for one lease cannot both get it (on stores with atomic conditional create;
 * elsewhere the read-back below narrows the window and fencing remains the safety net). The
 * owner rewrites its own object every `intervalMs` (the heartbeat) and, before each heartbeat,
 * looks for a higher epoch: finding one means another process took the volume over, and the
 * owner is told to stop (`onLost`). Older epochs are deleted by each new owner.
 *
 * A lease is free when it was released (clean shutdown), when its heartbeat is older than
 * `staleAfterIntervals * intervalMs` (the holder's own figures, so standbys need not agree on
 * them; wall clocks must agree to well within that), when its holder ran on this host (same name
 * and boot) and that process is gone, or when the caller asks for a takeover. A taken-over lease
 * must be followed by one commit of the new owner (`claim`): from then on every commit the old
 * owner attempts fails its conditional create, so however the old owner behaves, checkpoints of
 * two owners never interleave.
 *
 * The lease is also what lets commits go without reading back what they created (Volume's
 * OwnershipGuard). The holder may start writing the volume's objects, and acknowledge commits,
 * only while its lease is *valid*: for (staleAfterIntervals - 1) intervals after the start of its
 * last check that found no successor (measured on a monotonic clock; each heartbeat extends it).
 * A takeover of a live lease waits staleAfterIntervals intervals after creating the new epoch
 * before it opens the volume, so the old holder can neither start a PUT nor acknowledge a commit
 * once the new owner commits. (Swift stamps a PUT when it starts: one the old holder started in
 * time carries an older timestamp than any of the new owner's and cannot replace them.) A stale
 * lease was not renewed for staleAfterIntervals intervals, a dead holder is gone: neither waits.
 *
 * A holder has lost its lease when the next epoch's object exists, or its own is gone (owners
 * delete epochs more than EPOCHS_KEPT behind them), or a listing shows a later one.
 *
 * The lease is opt-in (the CLI's serve and mount use it): the simulation and tests reopen volumes
 * in one process after simulated crashes, where a lease would only get in the way.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { listAll, type ObjectStore } from '../objstore/index.ts';
import { FsError, StoreError, assert, nullLogger, processAlive, type Logger } from '../util/index.ts';
import type { Volume } from './volume.ts';

export const DEFAULT_LEASE_INTERVAL_MS = 10_000;
export const DEFAULT_LEASE_STALE_INTERVALS = 3;
/** Owner objects kept behind the newest epoch (older ones are deleted by each new owner). */
const EPOCHS_KEPT = 16;

/** The stored lease (one JSON object). */
export interface LeaseRecord {
  format: 'silt-owner';
  epoch: number;
  /** Random per acquisition: tells two holders apart even across a reused pid. */
  ownerId: string;
  host: string;
  /** Kernel boot id of the holder's host ('' where unknown): same host name and boot = same machine. */
  bootId: string;
  pid: number;
  /** What holds it: "silt serve", "silt mount", ... */
  role: string;
  /** Where clients reach the owner (RPC address, mountpoint), if anywhere. */
  address: string;
  acquiredMs: number;
  heartbeatMs: number;
  intervalMs: number;
  staleAfterIntervals: number;
  released: boolean;
}

/** How a lease looks to someone about to acquire it. */
export type LeaseState = 'live' | 'stale' | 'dead' | 'released';

export interface LeaseView {
  holder: LeaseRecord;
  /** Milliseconds since the holder's last heartbeat, by this machine's clock. */
  ageMs: number;
  state: LeaseState;
}

export interface LeaseOptions {
  /** What holds the lease ("silt serve"), for the refusal message others get. */
  role: string;
  address?: string;
  intervalMs?: number;
  staleAfterIntervals?: number;
  /** Take the lease even from a live holder (after waiting its lease out; it is fenced at its next commit). */
  takeover?: boolean;
  logger?: Logger;
  /** Tests: pretend to be another machine or process. */
  host?: string;
  bootId?: string;
  pid?: number;
}

/** A live owner holds the volume: the refusal, carrying who holds it and how recently it spoke. */
export class LeaseHeldError extends FsError {
  constructor(
    readonly volume: string,
    readonly view: LeaseView,
  ) {
    super('EBUSY', `volume '${volume}' is in use: ${describeHolder(view)}`);
  }
}

/** "silt serve (pid 123 on host h, at 127.0.0.1:12345), last heartbeat 2 s ago" */
export function describeHolder(v: LeaseView): string {
  const h = v.holder;
  const at = h.address ? `, at ${h.address}` : '';
  const age = v.ageMs < 0 ? 'in the future by this clock' : `${(v.ageMs / 1000).toFixed(1)} s ago`;
  return `owned by ${h.role} (pid ${h.pid} on host ${h.host}${at}), last heartbeat ${age}`;
}

const EPOCH_DIGITS = 16;

function leasePrefix(volume: string): string {
  return `${volume}/owner/`;
}
function leaseKey(volume: string, epoch: number): string {
  return `${leasePrefix(volume)}${epoch.toString(16).padStart(EPOCH_DIGITS, '0')}`;
}

function thisBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function parseRecord(raw: Uint8Array): LeaseRecord | undefined {
  try {
    const r = JSON.parse(Buffer.from(raw).toString('utf8')) as Partial<LeaseRecord>;
    if (r.format !== 'silt-owner' || typeof r.epoch !== 'number' || typeof r.ownerId !== 'string') return undefined;
    if (typeof r.heartbeatMs !== 'number' || typeof r.intervalMs !== 'number' || typeof r.staleAfterIntervals !== 'number') return undefined;
    return r as LeaseRecord;
  } catch {
    return undefined;
  }
}

/** Epochs present in the store, ascending. */
async function listEpochs(store: ObjectStore, volume: string): Promise<number[]> {
  const prefix = leasePrefix(volume);
  const out: number[] = [];
  for await (const o of listAll(store, prefix)) {
    const tail = o.key.slice(prefix.length);
    if (tail.length !== EPOCH_DIGITS || !/^[0-9a-f]+$/.test(tail)) continue;
    out.push(parseInt(tail, 16));
  }
  return out.sort((a, b) => a - b);
}

async function readRecord(store: ObjectStore, key: string): Promise<LeaseRecord | undefined> {
  try {
    return parseRecord(await store.get(key));
  } catch (err) {
    if (err instanceof StoreError && err.kind === 'not_found') return undefined;
    throw err;
  }
}

function viewOf(holder: LeaseRecord, host: string, bootId: string, now: number): LeaseView {
  const ageMs = now - holder.heartbeatMs;
  let state: LeaseState;
  if (holder.released) state = 'released';
  else if (holder.host === host && holder.bootId === bootId && bootId !== '' && !processAlive(holder.pid)) state = 'dead';
  else if (ageMs > holder.staleAfterIntervals * holder.intervalMs) state = 'stale';
  else state = 'live';
  return { holder, ageMs, state };
}

/** The current lease of a volume, if any (for status displays and tests). */
export async function readLease(store: ObjectStore, volume: string): Promise<LeaseView | undefined> {
  const epochs = await listEpochs(store, volume);
  const top = epochs.at(-1);
  if (top === undefined) return undefined;
  const rec = await readRecord(store, leaseKey(volume, top));
  return rec ? viewOf(rec, os.hostname(), thisBootId(), Date.now()) : undefined;
}

/** An owner lease as status displays show it (`silt stat --json`, the admin overview). */
export interface OwnerSummary {
  role: string;
  host: string;
  pid: number;
  address: string;
  /** live, stale (no heartbeat for a while), dead (its process is gone), released. */
  state: LeaseState;
  heartbeatAgeMs: number;
  description: string;
}

/** The volume's owner for a status display, or 'unknown' when there is no lease to read. */
export async function readOwnerSummary(store: ObjectStore, volume: string): Promise<OwnerSummary | 'unknown'> {
  const view = await readLease(store, volume);
  if (view === undefined) return 'unknown';
  const h = view.holder;
  return { role: h.role, host: h.host, pid: h.pid, address: h.address, state: view.state, heartbeatAgeMs: view.ageMs, description: describeHolder(view) };
}

/** The owner lease of one volume, held by this process. */
export class VolumeLease {
  private record: LeaseRecord;
  private timer: NodeJS.Timeout | null = null;
  /** performance.now() until which this holder may write and acknowledge (see the module comment). */
  private validUntil = 0;
  private renewing: Promise<void> | null = null;
  private lostBy: LeaseView | undefined;
  private onLost: ((by: LeaseView | undefined) => void) | undefined;
  private done = false;
  private readonly log: Logger;

  private constructor(
    readonly store: ObjectStore,
    readonly volume: string,
    record: LeaseRecord,
    /** The lease this one replaced, unless there was none. */
    readonly previous: LeaseView | undefined,
    logger: Logger,
  ) {
    this.record = record;
    this.log = logger;
  }

  /**
   * Take the volume's lease, or throw LeaseHeldError naming its live holder. Does not start the
   * heartbeat (start() does, once the caller is ready to serve).
   */
  static async acquire(store: ObjectStore, volume: string, opts: LeaseOptions): Promise<VolumeLease> {
    const log = opts.logger ?? nullLogger;
    const host = opts.host ?? os.hostname();
    const bootId = opts.bootId ?? thisBootId();
    const intervalMs = opts.intervalMs ?? DEFAULT_LEASE_INTERVAL_MS;
    const staleAfterIntervals = opts.staleAfterIntervals ?? DEFAULT_LEASE_STALE_INTERVALS;
    assert(intervalMs > 0 && staleAfterIntervals >= 2, 'the lease interval must be positive and staleness at least 2 intervals');
    const checkStart = performance.now();
    const epochs = await listEpochs(store, volume);
    const top = epochs.at(-1) ?? 0;
    let previous: LeaseView | undefined;
    if (top > 0) {
      const rec = await readRecord(store, leaseKey(volume, top));
      if (rec) {
        previous = viewOf(rec, host, bootId, Date.now());
        if (previous.state === 'live' && !opts.takeover) throw new LeaseHeldError(volume, previous);
      } else {
        log.warn('the newest owner lease is unreadable; taking the volume over', { key: leaseKey(volume, top) });
      }
    }
    const now = Date.now();
    const record: LeaseRecord = {
      format: 'silt-owner',
      epoch: top + 1,
      ownerId: randomBytes(12).toString('hex'),
      host,
      bootId,
      pid: opts.pid ?? process.pid,
      role: opts.role,
      address: opts.address ?? '',
      acquiredMs: now,
      heartbeatMs: now,
      intervalMs,
      staleAfterIntervals,
      released: false,
    };
    const key = leaseKey(volume, record.epoch);
    const raced = (): FsError =>
      new FsError('EBUSY', `volume '${volume}': another process acquired the owner lease at the same moment; try again`);
    try {
      await store.put(key, encode(record), { ifNoneMatch: store.capabilities.conditionalCreate });
    } catch (err) {
      if (err instanceof StoreError && err.kind === 'precondition_failed') throw raced();
      throw err;
    }
    // Read back (stores without an atomic conditional create) and make sure nobody went higher.
    const back = await readRecord(store, key);
    const after = await store.list(leasePrefix(volume), { after: key, limit: 1 });
    if (back?.ownerId !== record.ownerId || after.objects.length > 0) throw raced();
    const lease = new VolumeLease(store, volume, record, previous, log);
    lease.validUntil = checkStart + lease.validityMs;
    if (previous?.state === 'live') {
      // A takeover: the old holder may write and acknowledge until its lease runs out. Wait it out.
      const waitMs = previous.holder.intervalMs * previous.holder.staleAfterIntervals;
      log.warn(`waiting ${(waitMs / 1000).toFixed(1)} s for the previous owner's lease to run out`, { volume, previous: describeHolder(previous) });
      await new Promise((r) => setTimeout(r, waitMs));
      await lease.renew();
      if (lease.lost) throw raced();
    }
    for (const e of epochs) {
      if (e > record.epoch - 1 - EPOCHS_KEPT) continue;
      try {
        await store.delete(leaseKey(volume, e));
      } catch (err) {
        log.warn('could not delete an old owner lease', { epoch: e, err: err instanceof Error ? err.message : String(err) });
      }
    }
    return lease;
  }

  /** How long a successful check lets this holder write and acknowledge. */
  private get validityMs(): number {
    return (this.record.staleAfterIntervals - 1) * this.record.intervalMs;
  }

  /** OwnershipGuard: throws (no I/O) unless the lease is held and was confirmed recently enough. */
  mayWrite(): void {
    if (this.lostBy) throw new StoreError('precondition_failed', `volume '${this.volume}' is owned by another process now (${describeHolder(this.lostBy)})`);
    if (performance.now() >= this.validUntil) {
      throw new StoreError('unavailable', `volume '${this.volume}': the owner lease could not be renewed for ${(this.validityMs / 1000).toFixed(0)} s; not writing until it is`);
    }
  }

  /** OwnershipGuard: resolves once the lease is known held, renewing it first if its last check is old. */
  async ensureHeld(): Promise<void> {
    if (!this.lostBy && performance.now() < this.validUntil) return;
    if (!this.lostBy) await this.renew();
    this.mayWrite();
  }

  get info(): Readonly<LeaseRecord> {
    return this.record;
  }

  /** True when this lease replaced one that was not released: the old owner may still be running. */
  get tookOver(): boolean {
    return this.previous !== undefined && this.previous.state !== 'released';
  }

  /** Set once a higher epoch was found: another process owns the volume now. */
  get lost(): boolean {
    return this.lostBy !== undefined;
  }

  /**
   * After a takeover: commit once (nothing changed) so that commit sequence is ours. Every later
   * commit of the old owner fails its conditional create (it is fenced). Throws if the old owner
   * committed first (this volume is then fenced: reopen and claim again).
   */
  async claim(volume: Volume): Promise<void> {
    assert(volume.name === this.volume, 'claim of another volume');
    volume.markChanged();
    await volume.sync();
  }

  /** Record where clients reach the owner (written with the next heartbeat). */
  setAddress(address: string): void {
    this.record = { ...this.record, address };
  }

  /** Heartbeat every intervalMs; `onLost` is called once if another process takes the volume over. */
  start(onLost: (by: LeaseView | undefined) => void): void {
    assert(this.timer === null && !this.done, 'lease started twice');
    this.onLost = onLost;
    this.timer = setInterval(() => void this.renew(), this.record.intervalMs);
    this.timer.unref();
    void this.renew();
  }

  /** One heartbeat: look for a successor, then rewrite our own object. */
  renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    if (this.done || this.lostBy) return;
    const key = leaseKey(this.volume, this.record.epoch);
    const checkStart = performance.now();
    try {
      // The next epoch and our own are read directly (a listing may lag behind a new object).
      const next = leaseKey(this.volume, this.record.epoch + 1);
      const [nextInfo, ownInfo, after] = await Promise.all([
        this.store.head(next),
        this.store.head(key),
        this.store.list(leasePrefix(this.volume), { after: key, limit: 1 }),
      ]);
      const successor = nextInfo ? { key: next } : after.objects[0] ?? (ownInfo ? undefined : { key: '' });
      if (successor) {
        const rec = successor.key ? await readRecord(this.store, successor.key).catch(() => undefined) : undefined;
        this.lostBy = rec ? viewOf(rec, os.hostname(), thisBootId(), Date.now()) : { holder: { ...this.record, role: 'another process' }, ageMs: 0, state: 'live' };
        this.stopTimer();
        this.log.error('the owner lease was taken over; this process must stop writing', {
          volume: this.volume,
          by: describeHolder(this.lostBy),
        });
        this.onLost?.(this.lostBy);
        return;
      }
      if (this.done) return;
      this.validUntil = Math.max(this.validUntil, checkStart + this.validityMs);
      this.record = { ...this.record, heartbeatMs: Date.now() };
      await this.store.put(key, encode(this.record));
    } catch (err) {
      // Keep trying; a lease that cannot be renewed goes stale and a standby may take over, which
      // then fences this process at its next commit.
      this.log.warn('owner lease heartbeat failed; retrying', { volume: this.volume, err: err instanceof Error ? err.message : String(err) });
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Give the lease up (after the final commit): the next owner may start at once. With `forget`
   * the object is deleted instead (the volume was never opened, e.g. it does not exist).
   */
  async release(opts: { forget?: boolean } = {}): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.stopTimer();
    await this.renewing?.catch(() => {});
    if (this.lostBy) return; // not ours any more
    const key = leaseKey(this.volume, this.record.epoch);
    if (opts.forget) {
      await this.store.delete(key);
      return;
    }
    this.record = { ...this.record, heartbeatMs: Date.now(), released: true };
    await this.store.put(key, encode(this.record));
  }
}

function encode(r: LeaseRecord): Uint8Array {
  return Buffer.from(JSON.stringify(r) + '\n');
}
