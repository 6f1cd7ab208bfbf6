import { CrashError, Random, StoreError } from '../util/index.ts';
import type {
  ByteRange,
  ChunkedPut,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreCapabilities,
} from './types.ts';

/**
 * FaultyStore: wraps any ObjectStore and injects the failures a real object store produces, driven
 * by one seeded `Random` so a simulation that prints its seed can replay every fault.
 *
 * Determinism: every random decision for a call is drawn synchronously when the call starts, before
 * anything is awaited (the one exception: list-lag draws, one per recently put key, are made when
 * the inner page arrives). The same seed and the same sequence of calls therefore give the same
 * faults, whatever the timing of the inner store.
 *
 * Crash simulation: `crashAfterOps(n)`, `arm(name, match)` or `crashNow(name)` "kill the process".
 * From then on every call throws CrashError and nothing more reaches the inner store, including
 * calls already in flight that resume later. A mutation that is itself the crashing call (put,
 * delete, a stream's close) is applied to the inner store or not, by a seeded coin: after a crash
 * the write either happened whole or not at all. Open streams are abandoned, as a killed process
 * would abandon them. A test "restarts" by wrapping the same inner store in a new FaultyStore.
 */

/** Store calls as FaultyStore counts and matches them. 'write', 'commit' and 'abort' are ChunkedPut calls. */
export type StoreOp = 'put' | 'putStream' | 'write' | 'commit' | 'abort' | 'get' | 'head' | 'delete' | 'list';

/** Probabilities in [0, 1] per call, except the two counts. All default to 0 (no faults). */
export interface FaultRates {
  /** put / stream commit fails with 'unavailable' and nothing is written. */
  putFailBefore: number;
  /** put / stream commit is applied, then fails with 'unavailable': the ack was lost. */
  putFailAfter: number;
  /** A ChunkedPut.write fails with 'unavailable'; the inner stream is aborted. */
  streamWriteFail: number;
  /** get fails with 'unavailable'. */
  getFail: number;
  /** get returns a strict prefix of the bytes asked for (a truncated body callers must detect). */
  shortRead: number;
  headFail: number;
  listFail: number;
  deleteFail: number;
  /** A call is delayed by a uniform 0..latencyMaxMs before it runs. */
  latency: number;
  latencyMaxMs: number;
  /** A listing leaves out a key put within the last `listLagOps` calls (eventual consistency). */
  listLag: number;
  listLagOps: number;
}

export type FaultKind = 'fail-before' | 'lost-ack' | 'fail' | 'short-read' | 'latency' | 'list-lag' | 'crash';

export interface FaultEvent {
  /** The call's sequence number (1-based count of calls made on this wrapper). */
  seq: number;
  op: StoreOp;
  key: string;
  fault: FaultKind;
  /** For 'crash': the failpoint name and whether the crashing mutation reached the inner store. */
  detail?: string;
}

/** Which call an armed crash point fires on. Unset fields match anything. */
export interface CrashMatch {
  op?: StoreOp;
  keyPrefix?: string;
  /** Let this many matching calls pass first. Default 0. */
  skip?: number;
}

export interface FaultyStoreOptions {
  random: Random;
  faults?: Partial<FaultRates>;
  /** Defaults to a real setTimeout; simulations pass their clock's sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Called for every injected fault, synchronously, in call order. */
  onFault?: (event: FaultEvent) => void;
}

const NO_FAULTS: FaultRates = {
  putFailBefore: 0,
  putFailAfter: 0,
  streamWriteFail: 0,
  getFail: 0,
  shortRead: 0,
  headFail: 0,
  listFail: 0,
  deleteFail: 0,
  latency: 0,
  latencyMaxMs: 5,
  listLag: 0,
  listLagOps: 20,
};

interface ArmedPoint {
  name: string;
  match: CrashMatch;
  skip: number;
}

export class FaultyStore implements ObjectStore {
  readonly inner: ObjectStore;
  readonly capabilities: StoreCapabilities;
  /** How many faults of each kind were injected. */
  readonly faultCounts: Record<FaultKind, number> = {
    'fail-before': 0,
    'lost-ack': 0,
    fail: 0,
    'short-read': 0,
    latency: 0,
    'list-lag': 0,
    crash: 0,
  };
  private readonly random: Random;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onFault: ((event: FaultEvent) => void) | undefined;
  private rates: FaultRates;
  private enabled = true;
  private seq = 0;
  private crashedAt: string | undefined;
  private crashCountdown: number | undefined;
  private armed: ArmedPoint[] = [];
  /** Key -> seq of its last put, oldest first (re-put keys move to the end). */
  private readonly recentPuts = new Map<string, number>();

  constructor(inner: ObjectStore, options: FaultyStoreOptions) {
    this.inner = inner;
    this.random = options.random;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.onFault = options.onFault;
    this.rates = { ...NO_FAULTS };
    this.setFaults(options.faults ?? {});
    this.capabilities = { ...inner.capabilities, description: `faulty ${inner.capabilities.description}` };
  }

  /** Change some rates; the others keep their values. */
  setFaults(faults: Partial<FaultRates>): void {
    const next = { ...this.rates, ...faults };
    for (const [name, v] of Object.entries(next)) {
      const isCount = name === 'latencyMaxMs' || name === 'listLagOps';
      if (!Number.isFinite(v) || v < 0 || (!isCount && v > 1)) throw new RangeError(`fault rate ${name}=${v}`);
    }
    this.rates = next;
  }

  /** Off: no random faults, no latency, armed crash points do not fire. A crash already happened stays. */
  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
  }
  get faultsEnabled(): boolean {
    return this.enabled;
  }

  /** Let `n` more calls run, then crash on the next one. */
  crashAfterOps(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`crashAfterOps(${n})`);
    this.crashCountdown = n;
  }

  /** Crash on the first call matching `match` (after `match.skip` matching calls); CrashError carries `name`. */
  arm(name: string, match: CrashMatch = {}): void {
    this.armed.push({ name, match, skip: match.skip ?? 0 });
  }

  disarm(): void {
    this.armed = [];
    this.crashCountdown = undefined;
  }

  /** Crash now, e.g. from an engine failpoint hook. */
  crashNow(name = 'manual'): void {
    this.markCrashed(name, 'crashNow', '', 'called directly');
  }

  get crashed(): boolean {
    return this.crashedAt !== undefined;
  }

  /** The failpoint name of the crash, if one happened. */
  get crashPoint(): string | undefined {
    return this.crashedAt;
  }

  /** Calls made so far (including the one that crashed). */
  get ops(): number {
    return this.seq;
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    const seq = this.begin('put', key);
    if (seq.crash !== undefined) return this.crashMutation(seq, () => this.inner.put(key, data, options));
    const before = this.roll(seq, this.rates.putFailBefore, 'fail-before');
    const after = !before && this.roll(seq, this.rates.putFailAfter, 'lost-ack');
    await this.delay(seq);
    if (before) throw unavailable('put', key, 'injected failure before write');
    const info = await this.inner.put(key, data, options);
    this.notePut(key, seq.n);
    this.checkAlive();
    if (after) throw unavailable('put', key, 'injected lost acknowledgement (object was written)');
    return info;
  }

  async putStream(key: string, options?: PutOptions): Promise<ChunkedPut> {
    const open = this.begin('putStream', key);
    if (open.crash !== undefined) this.crash(open);
    await this.delay(open);
    const inner = await this.inner.putStream(key, options);
    this.checkAlive();
    return {
      write: async (chunk) => {
        const seq = this.begin('write', key);
        if (seq.crash !== undefined) this.crash(seq);
        const fail = this.roll(seq, this.rates.streamWriteFail, 'fail');
        await this.delay(seq);
        if (fail) {
          await inner.abort();
          throw unavailable('write', key, 'injected stream write failure (stream aborted)');
        }
        await inner.write(chunk);
        this.checkAlive();
      },
      close: async () => {
        const seq = this.begin('commit', key);
        if (seq.crash !== undefined) return this.crashMutation(seq, () => inner.close());
        const before = this.roll(seq, this.rates.putFailBefore, 'fail-before');
        const after = !before && this.roll(seq, this.rates.putFailAfter, 'lost-ack');
        await this.delay(seq);
        if (before) {
          await inner.abort();
          throw unavailable('close', key, 'injected failure before commit (stream aborted)');
        }
        const info = await inner.close();
        this.notePut(key, seq.n);
        this.checkAlive();
        if (after) throw unavailable('close', key, 'injected lost acknowledgement (object was written)');
        return info;
      },
      abort: async () => {
        const seq = this.begin('abort', key);
        if (seq.crash !== undefined) this.crash(seq);
        await inner.abort();
      },
    };
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const seq = this.begin('get', key);
    if (seq.crash !== undefined) this.crash(seq);
    const fail = this.roll(seq, this.rates.getFail, 'fail');
    // Drawn up front for determinism; used only if the object turns out non-empty.
    const short = !fail && this.enabled && this.rates.shortRead > 0 && this.random.chance(this.rates.shortRead);
    const cut = short ? this.random.next() : 0;
    await this.delay(seq);
    if (fail) throw unavailable('get', key, 'injected failure');
    const data = await this.inner.get(key, range);
    this.checkAlive();
    if (!short || data.length === 0) return data;
    this.record(seq, 'short-read');
    return data.slice(0, Math.floor(cut * data.length));
  }

  /** getv with the same faults as get (a short read cuts the pieces at the same point). */
  async getv(key: string, range?: ByteRange): Promise<Uint8Array[]> {
    const seq = this.begin('get', key);
    if (seq.crash !== undefined) this.crash(seq);
    const fail = this.roll(seq, this.rates.getFail, 'fail');
    const short = !fail && this.enabled && this.rates.shortRead > 0 && this.random.chance(this.rates.shortRead);
    const cut = short ? this.random.next() : 0;
    await this.delay(seq);
    if (fail) throw unavailable('get', key, 'injected failure');
    const parts = this.inner.getv ? await this.inner.getv(key, range) : [await this.inner.get(key, range)];
    this.checkAlive();
    const total = parts.reduce((n, p) => n + p.length, 0);
    if (!short || total === 0) return parts;
    this.record(seq, 'short-read');
    let keep = Math.floor(cut * total);
    const out: Uint8Array[] = [];
    for (const p of parts) {
      if (keep <= 0) break;
      out.push(p.subarray(0, Math.min(p.length, keep)));
      keep -= p.length;
    }
    return out;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const seq = this.begin('head', key);
    if (seq.crash !== undefined) this.crash(seq);
    const fail = this.roll(seq, this.rates.headFail, 'fail');
    await this.delay(seq);
    if (fail) throw unavailable('head', key, 'injected failure');
    const info = await this.inner.head(key);
    this.checkAlive();
    return info;
  }

  async delete(key: string): Promise<void> {
    const seq = this.begin('delete', key);
    if (seq.crash !== undefined) return this.crashMutation(seq, () => this.inner.delete(key));
    const fail = this.roll(seq, this.rates.deleteFail, 'fail');
    await this.delay(seq);
    if (fail) throw unavailable('delete', key, 'injected failure');
    await this.inner.delete(key);
    this.recentPuts.delete(key);
    this.checkAlive();
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const seq = this.begin('list', prefix);
    if (seq.crash !== undefined) this.crash(seq);
    const fail = this.roll(seq, this.rates.listFail, 'fail');
    await this.delay(seq);
    if (fail) throw unavailable('list', prefix, 'injected failure');
    let opts = options;
    for (;;) {
      const page = await this.inner.list(prefix, opts);
      this.checkAlive();
      const objects = page.objects.filter((o) => !this.lagged(seq, o.key));
      // Never hand back an empty page that says "more follow": listAll would stop there.
      if (objects.length > 0 || page.next === undefined) {
        return page.next === undefined ? { objects } : { objects, next: page.next };
      }
      opts = { ...options, after: page.next };
    }
  }

  /** Closes the inner store; after a crash it does nothing (the process is gone, the test owns the inner store). */
  async close(): Promise<void> {
    if (this.crashed) return;
    await this.inner.close();
  }

  // --- internals ---

  /** Count the call and decide, synchronously, whether it is the one that crashes. */
  private begin(op: StoreOp, key: string): Call {
    this.checkAlive();
    const n = ++this.seq;
    const call: Call = { n, op, key, crash: undefined };
    if (!this.enabled) return call;
    if (this.crashCountdown !== undefined) {
      if (this.crashCountdown === 0) call.crash = `after-ops-${n - 1}`;
      else this.crashCountdown--;
    }
    for (const point of this.armed) {
      if (call.crash !== undefined) break;
      const m = point.match;
      if ((m.op !== undefined && m.op !== op) || (m.keyPrefix !== undefined && !key.startsWith(m.keyPrefix))) continue;
      if (point.skip > 0) point.skip--;
      else call.crash = point.name;
    }
    return call;
  }

  private crash(call: Call): never {
    this.markCrashed(call.crash ?? 'unknown', call.op, call.key, 'no write in flight', call.n);
    throw new CrashError(this.crashedAt as string);
  }

  /** The crashing call is a mutation: apply it to the inner store or not, by a seeded coin. */
  private async crashMutation(call: Call, apply: () => Promise<unknown>): Promise<never> {
    const happened = this.random.chance(0.5);
    this.markCrashed(call.crash ?? 'unknown', call.op, call.key, happened ? 'write applied' : 'write lost', call.n);
    if (happened) await apply();
    throw new CrashError(this.crashedAt as string);
  }

  private markCrashed(name: string, op: StoreOp | 'crashNow', key: string, detail: string, n = this.seq): void {
    if (this.crashedAt !== undefined) return;
    this.crashedAt = name;
    this.faultCounts.crash++;
    if (op !== 'crashNow') this.onFault?.({ seq: n, op, key, fault: 'crash', detail: `${name}: ${detail}` });
  }

  /** Called after every await: a crash that happened meanwhile stops this call too. */
  private checkAlive(): void {
    if (this.crashedAt !== undefined) throw new CrashError(this.crashedAt);
  }

  private roll(call: Call, p: number, fault: FaultKind): boolean {
    if (!this.enabled || p <= 0 || !this.random.chance(p)) return false;
    this.record(call, fault);
    return true;
  }

  private async delay(call: Call): Promise<void> {
    if (!this.roll(call, this.rates.latency, 'latency')) return;
    const ms = this.random.int(this.rates.latencyMaxMs + 1);
    if (ms > 0) await this.sleep(ms);
    this.checkAlive();
  }

  private record(call: Call, fault: FaultKind): void {
    this.faultCounts[fault]++;
    this.onFault?.({ seq: call.n, op: call.op, key: call.key, fault });
  }

  private notePut(key: string, n: number): void {
    this.recentPuts.delete(key);
    this.recentPuts.set(key, n);
    // Oldest first, so pruning stops at the first entry still inside the window.
    for (const [k, at] of this.recentPuts) {
      if (at > this.seq - this.rates.listLagOps) break;
      this.recentPuts.delete(k);
    }
  }

  private lagged(call: Call, key: string): boolean {
    const at = this.recentPuts.get(key);
    if (at === undefined || at <= call.n - this.rates.listLagOps) return false;
    return this.roll({ ...call, key }, this.rates.listLag, 'list-lag');
  }
}

interface Call {
  n: number;
  op: StoreOp;
  key: string;
  /** Failpoint name when this call is the one that crashes. */
  crash: string | undefined;
}

function unavailable(op: string, key: string, why: string): StoreError {
  return new StoreError('unavailable', `${op} ${key}: ${why}`, { key, status: 503 });
}
