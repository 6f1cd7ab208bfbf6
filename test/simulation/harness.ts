/**
 * Seeded simulation harness: a random workload over a small namespace, applied to a Silt file
 * system and to the model (model.ts) at once, over a FaultyStore(MemoryStore) that injects
 * transient faults and crashes at named failpoints or random store calls.
 *
 * Every random choice comes from a `Random` seeded by the simulation seed (workload and faults
 * draw from separate streams), and the store's latency "sleeps" are instant, so one seed replays
 * the same operations, faults and crash points exactly.
 *
 * What is checked:
 * - Every operation's outcome (ok or errno name) equals the model's, except EIO from an injected
 *   fault, which must leave the operation wholly unapplied.
 * - Reads return the model's bytes.
 * - After a crash, a fresh file system opened on the surviving objects passes fsck, and its
 *   namespace equals the model at some operation boundary at or after the last acknowledged
 *   sync and no later than the crash: every fsync'd byte is present, every operation wholly
 *   present or absent.
 */
import { FaultyStore, MemoryStore, type FaultEvent, type FaultRates, type ObjectStore } from '../../src/objstore/index.ts';
import { openFileSystem, rootIdentity, type SiltFileSystem } from '../../src/fs/index.ts';
import { O_RDWR, O_TRUNC, type Attr } from '../../src/fs/types.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { collectGarbage } from '../../src/headhunter/index.ts';
import { cleanSegments } from '../../src/inode/index.ts';
import { FAILPOINTS, Failpoints, FsError, Random, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, nullLogger, stderrLogger } from '../../src/util/index.ts';
import {
  Model,
  OK,
  baseName,
  describe,
  diffLines,
  joinPath,
  outcomeText,
  parentPath,
  type MNode,
  type Outcome,
} from './model.ts';

const who = rootIdentity;
/** SILT_SIM_DEBUG=1 shows the engine's warnings and errors (on stderr). */
const logger = process.env.SILT_SIM_DEBUG ? stderrLogger('warn') : nullLogger;
const instant = async (): Promise<void> => {};

// ------------------------------------------------------------------ the data pool

/** Written bytes are slices of one fixed random pool: distinct at every offset, cheap to make. */
const POOL_BYTES = 2 * 1024 * 1024;
let pool: Buffer | undefined;
export function dataPool(): Buffer {
  if (!pool) {
    const r = new Random(0x5117);
    pool = Buffer.allocUnsafe(POOL_BYTES);
    for (let i = 0; i < POOL_BYTES; i += 4) pool.writeUInt32LE(r.nextU32(), i);
  }
  return pool;
}

// ------------------------------------------------------------------ operations

export type Op =
  | { k: 'create' | 'mkdir'; path: string; mode: number }
  | { k: 'symlink'; path: string; target: string }
  | { k: 'write'; path: string; off: number; len: number; src: number }
  | { k: 'truncate'; path: string; size: number }
  | { k: 'rename'; src: string; dst: string; noReplace?: boolean; exchange?: boolean }
  | { k: 'link'; src: string; dst: string }
  | { k: 'unlink' | 'rmdir'; path: string }
  | { k: 'setxattr'; path: string; name: string; vlen: number; src: number; create?: boolean; replace?: boolean }
  | { k: 'removexattr'; path: string; name: string }
  | { k: 'chmod'; path: string; mode: number }
  | { k: 'fsync'; path: string }
  | { k: 'sync' }
  /** A sync the harness does not wait for: later ops run while it commits (group commit). */
  | { k: 'bgsync' }
  /** Online garbage collection (no grace period): must never delete what a commit may need. */
  | { k: 'gc'; keepCommits: number }
  /** The cleaner: rewrite the live records of mostly-dead segments, then commit. */
  | { k: 'clean'; utilizationMax: number; segmentsMax: number; keepCommits: number }
  | { k: 'read'; path: string; off: number; len: number }
  /** open(2) O_RDWR (maybe O_TRUNC); the handle lives until `close` or a restart. */
  | { k: 'open'; path: string; trunc: boolean }
  /** write / read / close through open handle number h (its file may have lost every name). */
  | { k: 'hwrite'; h: number; off: number; len: number; src: number }
  | { k: 'hread'; h: number; off: number; len: number }
  | { k: 'close'; h: number };

export function opText(op: Op): string {
  const { k, ...rest } = op;
  return `${k} ${JSON.stringify(rest)}`;
}

function isSync(op: Op): boolean {
  return op.k === 'fsync' || op.k === 'sync' || op.k === 'bgsync';
}

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];
const XATTR_NAMES = ['user.x', 'user.y', 'trusted.t'];
const KiB = 1024;

export interface WorkloadShape {
  /** Probability that a write is large (200 KiB .. 1.5 MiB): exercises data segments. */
  bigWrite: number;
  /** Probability of an fsync/sync op. */
  sync: number;
  /** Deepest directory level the generator creates (root is 0). */
  depthMax: number;
  /** Include online gc and cleaner passes (about 4% of ops). */
  gc?: boolean;
}

export const defaultShape: WorkloadShape = { bigWrite: 0.04, sync: 0.08, depthMax: 2 };

/** A random operation against the current model (mostly valid, sometimes deliberately not). */
export function genOp(r: Random, m: Model, shape: WorkloadShape = defaultShape): Op {
  const existing = [...m.names.keys()].filter((p) => p !== '');
  const files = existing.filter((p) => m.node(p)?.type === 'file');
  const dirs = m.dirs().filter((d) => (d === '' ? 0 : d.split('/').length) < shape.depthMax + 1);
  const anyPath = (): string => {
    if (existing.length > 0 && r.chance(0.55)) return r.pick(existing);
    // A random parent (rarely one that is not a directory) and a random name.
    const parent = r.chance(0.9) || existing.length === 0 ? r.pick(dirs) : r.pick(existing);
    return joinPath(parent, r.pick(NAMES));
  };
  const newPath = (): string => joinPath(r.chance(0.95) ? r.pick(dirs) : r.pick(existing.length ? existing : ['']), r.pick(NAMES));
  const filePath = (): string => (files.length > 0 && r.chance(0.9) ? r.pick(files) : anyPath());
  const size = (p: string): number => m.node(p)?.data.length ?? 0;

  if (m.handles.length > 0 && r.chance(m.handles.length >= 4 ? 0.5 : 0.15)) {
    const h = r.int(m.handles.length);
    const n = m.handleNode(h);
    const cur = n.data.length;
    const z = r.next();
    if (z < 0.3 || m.handles.length >= 4) return { k: 'close', h };
    if (z < 0.75) {
      const len = 1 + r.int(r.chance(0.8) ? 8 * KiB : 100 * KiB);
      return { k: 'hwrite', h, off: r.chance(0.5) ? cur : r.int(cur + 1), len, src: r.int(POOL_BYTES - len) };
    }
    return { k: 'hread', h, off: r.int(cur + 10), len: 1 + r.int(200 * KiB) };
  }
  const x = r.next();
  if (x < shape.sync) {
    const y = r.next();
    return y < 0.4 ? { k: 'sync' } : y < 0.8 ? { k: 'fsync', path: filePath() } : { k: 'bgsync' };
  }
  const y = r.int(100);
  if (y < 12) return { k: 'create', path: newPath(), mode: r.pick([0o644, 0o600, 0o755]) };
  if (y < 18) return { k: 'mkdir', path: newPath(), mode: r.pick([0o755, 0o700]) };
  if (y < 21) return { k: 'symlink', path: newPath(), target: r.pick(['a', '../b', '/etc/passwd', 'x'.repeat(1 + r.int(300))]) };
  if (y < 50) {
    const path = filePath();
    // Keep files small enough that checking every crash stays cheap: shrink a big one instead.
    if (size(path) > 1024 * KiB) return { k: 'truncate', path, size: r.int(256 * KiB) };
    const cur = size(path);
    let len: number;
    const s = r.next();
    if (s < shape.bigWrite) len = 200 * KiB + r.int(600 * KiB);
    else if (s < 0.5) len = 1 + r.int(4 * KiB);
    else if (s < 0.88) len = 4 * KiB + r.int(40 * KiB);
    else len = 64 * KiB + r.int(136 * KiB);
    const o = r.next();
    // Append (sequential runs go to data segments), overwrite, sparse beyond the end, or at 0.
    const off = o < 0.4 ? cur : o < 0.7 ? r.int(cur + 1) : o < 0.85 ? cur + r.int(128 * KiB) : 0;
    return { k: 'write', path, off, len, src: r.int(POOL_BYTES - len) };
  }
  if (y < 56) {
    const path = filePath();
    const cur = size(path);
    const big = cur > 1024 * KiB;
    return { k: 'truncate', path, size: big || r.chance(0.6) ? r.int(cur + 1) : cur + r.int(200 * KiB) };
  }
  if (y < 66) {
    const flags = r.next();
    const op: Op = { k: 'rename', src: anyPath(), dst: anyPath() };
    if (flags < 0.15) op.noReplace = true;
    else if (flags < 0.3) op.exchange = true;
    return op;
  }
  if (y < 71) return { k: 'link', src: filePath(), dst: newPath() };
  if (y < 78) return { k: 'unlink', path: anyPath() };
  if (y < 82) return { k: 'rmdir', path: r.chance(0.8) && dirs.length > 1 ? r.pick(dirs.filter((d) => d !== '')) : anyPath() };
  if (y < 87) {
    const f = r.next();
    return {
      k: 'setxattr',
      path: anyPath(),
      name: r.pick(XATTR_NAMES),
      vlen: r.int(64),
      src: r.int(POOL_BYTES - 64),
      ...(f < 0.15 ? { create: true } : f < 0.3 ? { replace: true } : {}),
    };
  }
  if (y < 90) return { k: 'removexattr', path: anyPath(), name: r.pick(XATTR_NAMES) };
  if (y < 97 && y >= 93 && shape.gc) {
    if (r.chance(0.4)) return { k: 'gc', keepCommits: 1 + r.int(4) };
    return { k: 'clean', utilizationMax: 0.7 + r.int(4) / 10, segmentsMax: 1 + r.int(6), keepCommits: 1 + r.int(3) };
  }
  if (y < 93) return { k: 'chmod', path: r.chance(0.05) ? '' : anyPath(), mode: r.pick([0o644, 0o600, 0o755, 0o4755, 0o1777, 0]) };
  const path = filePath();
  if (r.chance(0.4)) return { k: 'open', path, trunc: r.chance(0.2) };
  const cur = size(path);
  return { k: 'read', path, off: r.int(cur + 10), len: 1 + r.int(300 * KiB) };
}

/** Apply an op to the model (which it mutates). Reads and syncs change nothing. */
export function applyModel(m: Model, op: Op): Outcome {
  const data = dataPool();
  switch (op.k) {
    case 'create':
      return m.make(op.path, 'file', op.mode);
    case 'mkdir':
      return m.make(op.path, 'dir', op.mode);
    case 'symlink':
      return m.make(op.path, 'symlink', 0o777, op.target);
    case 'write':
      return m.write(op.path, op.off, data.subarray(op.src, op.src + op.len));
    case 'truncate':
      return m.truncate(op.path, op.size);
    case 'rename':
      return m.rename(op.src, op.dst, op);
    case 'link':
      return m.link(op.src, op.dst);
    case 'unlink':
      return m.unlink(op.path);
    case 'rmdir':
      return m.rmdir(op.path);
    case 'setxattr':
      return m.setxattr(op.path, op.name, Buffer.from(data.subarray(op.src, op.src + op.vlen)), op);
    case 'removexattr':
      return m.removexattr(op.path, op.name);
    case 'chmod':
      return m.chmod(op.path, op.mode);
    case 'fsync': {
      const r = m.resolve(op.path);
      return 'errno' in r ? r : OK;
    }
    case 'sync':
    case 'bgsync':
    case 'gc':
    case 'clean':
      return OK;
    case 'read': {
      const r = m.read(op.path, op.off, op.len);
      return 'errno' in r ? r : OK;
    }
    case 'open':
      return m.open(op.path, op.trunc);
    case 'hwrite':
      return m.writeHandle(op.h, op.off, data.subarray(op.src, op.src + op.len));
    case 'hread':
      return m.handleNode(op.h).type === 'file' ? OK : { errno: 'EINVAL' };
    case 'close':
      return m.close(op.h);
  }
}

/**
 * Apply an op to the file system. Resolves to the outcome; reads also return the bytes.
 * `handles` holds the inode of each open handle, in the model's order; open and close update it.
 */
export async function applyFs(
  fs: SiltFileSystem,
  op: Op,
  handles: number[] = [],
): Promise<{ outcome: Outcome; bytes?: Uint8Array; gcDeleted?: number; cleaned?: number }> {
  const data = dataPool();
  const ino = async (path: string): Promise<number> => (await fs.lookupPath(who, path)).ino;
  try {
    switch (op.k) {
      case 'create':
      case 'mkdir': {
        const parent = await ino(parentPath(op.path));
        if (op.k === 'create') await fs.create(who, parent, baseName(op.path), op.mode);
        else await fs.mkdir(who, parent, baseName(op.path), op.mode);
        break;
      }
      case 'symlink':
        await fs.symlink(who, await ino(parentPath(op.path)), baseName(op.path), op.target);
        break;
      case 'write':
        await fs.write(who, await ino(op.path), op.off, data.subarray(op.src, op.src + op.len));
        break;
      case 'truncate':
        await fs.setattr(who, await ino(op.path), { size: op.size });
        break;
      case 'rename': {
        const from = await ino(parentPath(op.src));
        const to = await ino(parentPath(op.dst));
        const flags = { ...(op.noReplace ? { noReplace: true } : {}), ...(op.exchange ? { exchange: true } : {}) };
        await fs.rename(who, from, baseName(op.src), to, baseName(op.dst), flags);
        break;
      }
      case 'link': {
        const src = await ino(op.src);
        await fs.link(who, src, await ino(parentPath(op.dst)), baseName(op.dst));
        break;
      }
      case 'unlink':
        await fs.unlink(who, await ino(parentPath(op.path)), baseName(op.path));
        break;
      case 'rmdir':
        await fs.rmdir(who, await ino(parentPath(op.path)), baseName(op.path));
        break;
      case 'setxattr': {
        const flags = { ...(op.create ? { create: true } : {}), ...(op.replace ? { replace: true } : {}) };
        await fs.setxattr(who, await ino(op.path), op.name, data.subarray(op.src, op.src + op.vlen), flags);
        break;
      }
      case 'removexattr':
        await fs.removexattr(who, await ino(op.path), op.name);
        break;
      case 'chmod':
        await fs.setattr(who, await ino(op.path), { mode: op.mode });
        break;
      case 'fsync':
        await fs.fsync(await ino(op.path), false);
        break;
      case 'sync':
        await fs.sync();
        break;
      case 'bgsync':
        throw new Error('bgsync is run by the simulation itself');
      case 'gc':
      case 'clean':
        // Not file-system calls: a store failure is reported as EIO like one.
        try {
          if (op.k === 'gc') {
            const g = await collectGarbage(fs.volume, { graceMs: 0, keepCommits: op.keepCommits });
            return { outcome: OK, gcDeleted: g.deleted };
          }
          const { k: _, ...opts } = op;
          const c = await cleanSegments(fs.inodes, opts);
          return { outcome: OK, cleaned: c.recordsMoved };
        } catch (err) {
          if (err instanceof FsError) throw err;
          throw new FsError('EIO', `${op.k}: ${String(err)}`, { cause: err });
        }
      case 'read': {
        const bytes = await fs.read(who, await ino(op.path), op.off, op.len);
        return { outcome: OK, bytes };
      }
      case 'open': {
        const a = await fs.open(who, await ino(op.path), O_RDWR | (op.trunc ? O_TRUNC : 0));
        handles.push(a.ino);
        break;
      }
      case 'hwrite':
        await fs.write(who, handles[op.h]!, op.off, data.subarray(op.src, op.src + op.len));
        break;
      case 'hread':
        return { outcome: OK, bytes: await fs.read(who, handles[op.h]!, op.off, op.len) };
      case 'close': {
        const [h] = handles.splice(op.h, 1);
        await fs.release(h!, true);
        break;
      }
    }
    return { outcome: OK };
  } catch (err) {
    if (err instanceof FsError) return { outcome: { errno: err.errno } };
    throw err;
  }
}

// ------------------------------------------------------------------ observing a file system

function typeOf(mode: number): MNode['type'] | 'other' {
  const t = mode & S_IFMT;
  return t === S_IFREG ? 'file' : t === S_IFDIR ? 'dir' : t === S_IFLNK ? 'symlink' : 'other';
}

/** The canonical form (model.ts `describe`) of a live file system, read through its API. */
export async function describeFs(fs: SiltFileSystem): Promise<string[]> {
  const names = new Map<string, number>();
  const nodes = new Map<number, MNode>();
  const nodeOf = async (a: Attr): Promise<MNode> => {
    const type = typeOf(a.mode);
    if (type === 'other') throw new Error(`inode ${a.ino} has unexpected mode 0o${a.mode.toString(8)}`);
    const xattrs = new Map<string, Buffer>();
    for (const name of await fs.listxattr(who, a.ino)) xattrs.set(name, Buffer.from(await fs.getxattr(who, a.ino, name)));
    const data = type === 'file' ? asBuffer(await fs.read(who, a.ino, 0, a.size)) : Buffer.alloc(0);
    if (type === 'file' && data.length !== a.size) throw new Error(`inode ${a.ino}: read ${data.length} bytes of ${a.size}`);
    const target = type === 'symlink' ? await fs.readlink(who, a.ino) : '';
    return { type, mode: a.mode & 0o7777, data, target, xattrs, nlink: a.nlink };
  };
  const root = await fs.getattr(who, 1);
  names.set('', 1);
  nodes.set(1, await nodeOf(root));
  const queue: Array<[string, number]> = [['', 1]];
  while (queue.length > 0) {
    const [dir, dino] = queue.shift()!;
    let cookie = 0n;
    for (;;) {
      const page = await fs.readdirplus(who, dino, cookie, 256);
      for (const e of page) {
        cookie = e.cookie;
        if (e.name === '.' || e.name === '..') continue;
        const p = joinPath(dir, e.name);
        names.set(p, e.ino);
        if (!nodes.has(e.ino)) nodes.set(e.ino, await nodeOf(e.attr));
        if (typeOf(e.attr.mode) === 'dir') queue.push([p, e.ino]);
      }
      if (page.length < 256) break;
    }
  }
  return describe(names, nodes);
}

// ------------------------------------------------------------------ the simulation

export interface SimOptions {
  seed: number;
  /** Crash-and-recover rounds; with `crash: false`, restarts happen only when the volume demands one. */
  rounds: number;
  opsPerRound: number;
  faults: Partial<FaultRates>;
  crash: boolean;
  shape?: WorkloadShape;
  /** Compare the live file system with the model every this many ops (0: only at checks). */
  liveCheckEvery?: number;
  /** The durable store under the fault injector (default: a fresh MemoryStore). */
  store?: ObjectStore;
}

export interface SimStats {
  ops: number;
  crashes: number;
  restarts: number;
  syncsAcked: number;
  syncsFailed: number;
  eioOps: number;
  faults: number;
  /** How many crashes fired at each point (failpoint names, 'store-op', 'between-ops'). */
  crashPoints: Record<string, number>;
  /** How far behind the crash-time state the recovered state was (ops), summed. */
  lostOps: number;
  /** Store calls made, and failpoints passed, over all rounds (to calibrate crash arming). */
  storeCalls: number;
  failpointHits: Record<string, number>;
  /** File bytes in the recovered volumes, summed over every recovery. */
  fileBytesChecked: number;
  /** Segment objects online gc deleted. */
  gcDeleted: number;
  /** Records the cleaner moved. */
  recordsCleaned: number;
  /** Wall time by phase (ops, open, fsck, describe, match). */
  timeMs: Record<string, number>;
}

export class SimFailure extends Error {}

const SEEN_FAULTS = ['fail-before', 'lost-ack', 'fail', 'short-read'];

/** The crash simulation's settings (sim.test.ts; scripts replaying a seed use the same). */
export const crashSimOptions: Omit<SimOptions, 'seed'> = {
  rounds: 16,
  opsPerRound: 20,
  crash: true,
  faults: {
    putFailBefore: 0.03,
    putFailAfter: 0.03,
    streamWriteFail: 0.03,
    getFail: 0.03,
    shortRead: 0.03,
    headFail: 0.03,
    listFail: 0.03,
    latency: 0.2,
  },
  shape: { bigWrite: 0.02, sync: 0.12, depthMax: 2, gc: true },
};

/** Volume settings small enough that every code path (data segments, early commits, head hints) runs. */
export const simVolumeOptions = {
  segmentBytesMax: 256 * KiB,
  inflightSegmentsMax: 3,
  cacheBytesMax: 4 * 1024 * KiB,
  readAheadBytes: 128 * KiB,
  commitBytesMax: 512 * KiB,
  headEveryCommits: 3,
};
export const simInodeOptions = { largeRunBytes: 96 * KiB, treeNodesMax: 64, inodeCacheMax: 8 };

export class Simulation {
  /** The store that survives crashes: memory by default, or a real one (the Swift run). */
  readonly inner: ObjectStore;
  readonly stats: SimStats = {
    ops: 0,
    crashes: 0,
    restarts: 0,
    syncsAcked: 0,
    syncsFailed: 0,
    eioOps: 0,
    faults: 0,
    crashPoints: {},
    lostOps: 0,
    storeCalls: 0,
    failpointHits: {},
    fileBytesChecked: 0,
    gcDeleted: 0,
    recordsCleaned: 0,
    timeMs: {},
  };
  private readonly r: Random;
  private readonly faultRandom: Random;
  private readonly shape: WorkloadShape;
  private store!: FaultyStore;
  private fs!: SiltFileSystem;
  /** The model after every op so far. */
  private model = new Model();
  /**
   * Model states at each operation boundary since the last acknowledged sync; states[0] is the
   * acknowledged one, at absolute boundary `base` (boundaries count successful mutations).
   */
  private states: Model[] = [];
  private base = 0;
  /** The boundary current when the store crashed (the in-flight op's result included). */
  private crashAt: number | undefined;
  /** Bumped on every reopen: a background sync of an earlier incarnation acknowledges nothing. */
  private incarnation = 0;
  /** The inode of each open handle, parallel to `model.handles`. */
  private hinos: number[] = [];
  private readonly log: string[] = [];
  private round = 0;

  constructor(readonly o: SimOptions) {
    this.inner = o.store ?? new MemoryStore('sim');
    this.r = new Random(o.seed);
    this.faultRandom = new Random(o.seed ^ 0x5eed5eed);
    this.shape = o.shape ?? defaultShape;
  }

  private note(line: string): void {
    this.log.push(`[r${this.round}] ${line}`);
    if (this.log.length > 400 && process.env.SILT_SIM_LOG !== 'all') this.log.splice(0, 100);
  }

  fail(why: string): never {
    const tail = this.log.slice(process.env.SILT_SIM_LOG === 'all' ? 0 : -40).join('\n  ');
    throw new SimFailure(
      `simulation seed ${this.o.seed} failed in round ${this.round}: ${why}\n` +
        `  op log tail:\n  ${tail}\n` +
        `  replay: SILT_SEED=${this.o.seed} node --import tsx --test ${this.o.crash ? 'test/simulation/sim.test.ts' : 'test/simulation/faults.test.ts'}`,
    );
  }

  private newStore(): FaultyStore {
    return new FaultyStore(this.inner, {
      random: this.faultRandom,
      faults: this.o.faults,
      sleep: instant,
      onFault: (e: FaultEvent) => this.onFault(e),
    });
  }

  private onFault(e: FaultEvent): void {
    if (e.fault === 'crash') {
      this.crashAt ??= this.boundary;
      this.note(`CRASH at store call #${e.seq} ${e.op} ${e.key}: ${e.detail ?? ''}`);
    } else if (SEEN_FAULTS.includes(e.fault)) {
      this.stats.faults++;
      this.note(`  fault ${e.fault} on ${e.op} ${e.key}`);
    }
  }

  /**
   * Open the volume on a fresh FaultyStore (creating it the first time), retrying transient
   * failures. A reopen may crash in the middle of replaying delta commits (the `during-replay`
   * failpoint, armed at random): then power is cut again and the volume opened once more.
   */
  private async open(create: boolean): Promise<Failpoints> {
    let lastErr: unknown;
    let replayCrashes = 0;
    for (;;) {
      const failpoints = new Failpoints();
      this.store = this.newStore();
      const store = this.store;
      failpoints.onCrash = (name) => {
        this.note(`CRASH at failpoint ${name}`);
        store.crashNow(name);
      };
      if (!create && this.o.crash && replayCrashes < 2 && this.r.chance(0.3)) failpoints.arm('during-replay', this.r.int(3));
      if (create) store.setEnabled(false); // mkfs is not under test here
      let crashed = false;
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          this.fs = await openFileSystem({
            store,
            create,
            flushIntervalMs: 0,
            logger,
            volumeOptions: { ...this.volumeOptions, failpoints },
            inode: simInodeOptions,
          });
          store.setEnabled(true);
          return failpoints;
        } catch (err) {
          lastErr = err;
          if (failpoints.hasCrashed) {
            crashed = true;
            break;
          }
          this.note(`  open failed (attempt ${attempt + 1}): ${String(err)}`);
          if (!isTransient(err)) break;
        }
      }
      if (!crashed) break;
      replayCrashes++;
      this.stats.crashPoints['during-replay'] = (this.stats.crashPoints['during-replay'] ?? 0) + 1;
    }
    this.fail(`cannot open the volume: ${String(lastErr)}`);
  }

  /**
   * How often this seed's volume checkpoints: every commit, every few, or almost never (deltas
   * only), so crashes land on both kinds of commit and on the turn from one to the other.
   */
  private get volumeOptions(): typeof simVolumeOptions & { checkpointDeltasMax: number } {
    return { ...simVolumeOptions, checkpointDeltasMax: [0, 3, 1000][this.o.seed % 3]! };
  }

  /** The newest boundary. */
  private get boundary(): number {
    return this.base + this.states.length - 1;
  }

  /** A sync that covered everything up to boundary `b` returned: nothing before `b` may be lost. */
  private ack(b: number): void {
    this.stats.syncsAcked++;
    if (b <= this.base) return;
    if (b > this.boundary) this.fail(`ack of boundary ${b} beyond the newest ${this.boundary}`);
    this.states.splice(0, b - this.base);
    this.base = b;
  }

  private time(what: string, since: number): void {
    this.stats.timeMs[what] = (this.stats.timeMs[what] ?? 0) + Math.round(performance.now() - since);
  }

  /** Run the whole simulation. Throws SimFailure with the seed and op log on any violation. */
  async run(): Promise<SimStats> {
    await this.open(true);
    this.states = [this.model.clone()];
    this.base = 0;
    for (this.round = 0; this.round < this.o.rounds; this.round++) {
      const failpoints = this.fs.volume.failpoints;
      const crashPlan = this.o.crash ? this.armCrash(failpoints) : 'none';
      this.note(`round ${this.round}: crash plan ${crashPlan}`);
      const stopAt = this.o.crash && crashPlan === 'between-ops' ? this.r.int(this.o.opsPerRound) : -1;
      let restart = false;
      for (let i = 0; i < this.o.opsPerRound; i++) {
        if (i === stopAt) {
          this.note('CRASH between ops (power cut)');
          this.crashAt ??= this.boundary;
          this.store.crashNow('between-ops');
          break;
        }
        const verdict = await this.step();
        if (this.store.crashed) break;
        if (verdict === 'restart') {
          if (this.o.crash) {
            restart = true;
            break;
          }
          // Without crashes the workload goes on: reopen (the halted fs is dropped) and continue.
          this.crashAt ??= this.boundary;
          this.store.crashNow('restart');
          this.stats.restarts++;
          await this.recover();
          continue;
        }
        if (this.o.liveCheckEvery && this.stats.ops % this.o.liveCheckEvery === 0) await this.compareLive('live check');
      }
      if (this.o.crash && !restart && !this.store.crashed && stopAt < 0) {
        // The armed crash has not fired: a last sync drives the commit path, where most points are.
        const verdict = await this.step({ k: 'sync' });
        if (verdict === 'restart') restart = true;
      }
      this.stats.storeCalls += this.store.ops;
      for (const [k, v] of this.fs.volume.failpoints.hits) this.stats.failpointHits[k] = (this.stats.failpointHits[k] ?? 0) + v;
      if (this.o.crash || restart) {
        if (!this.store.crashed) {
          // The volume asked for a restart, or the round ended before the armed crash: cut power now.
          this.crashAt ??= this.boundary;
          this.store.crashNow(restart ? 'restart' : 'end-of-round');
        }
        const point = this.store.crashPoint ?? 'unknown';
        const kind = point.startsWith('after-ops-') ? 'store-op' : point;
        this.stats.crashPoints[kind] = (this.stats.crashPoints[kind] ?? 0) + 1;
        if (restart) this.stats.restarts++;
        else this.stats.crashes++;
        await this.recover();
      }
    }
    await this.finish();
    return this.stats;
  }

  /** Arm this round's crash: a named failpoint, a random store call, or a power cut between ops. */
  private armCrash(failpoints: Failpoints): string {
    const x = this.r.next();
    if (x < 0.5) {
      const name = this.r.pick(FAILPOINTS);
      const after = this.r.chance(0.7) || !name.includes('commit') ? 0 : 1 + this.r.int(2);
      failpoints.arm(name, after);
      return `failpoint ${name} after ${after} hits`;
    }
    if (x < 0.85) {
      const n = this.r.int(8);
      this.store.crashAfterOps(n);
      return `store call ${n + 1}`;
    }
    return 'between-ops';
  }

  /** One operation on both sides. 'restart' when the volume refuses further writes. */
  private async step(given?: Op): Promise<'ok' | 'restart'> {
    const op = given ?? genOp(this.r, this.model, this.shape);
    if (op.k === 'bgsync') {
      const b = this.boundary;
      const incarnation = this.incarnation;
      this.stats.ops++;
      this.note(`bgsync (covers boundary ${b})`);
      this.fs.sync().then(
        () => {
          if (incarnation !== this.incarnation) return;
          this.note(`  bgsync of boundary ${b} acknowledged`);
          this.ack(b);
        },
        () => {
          if (incarnation === this.incarnation) this.stats.syncsFailed++;
        },
      );
      return 'ok';
    }
    const next = this.model.clone();
    const expected = applyModel(next, op);
    const mutates = 'ok' in expected && !['read', 'hread', 'gc', 'clean'].includes(op.k) && !isSync(op);
    // The op's result is a candidate recovery state from the moment it starts.
    if (mutates) this.states.push(next);
    this.stats.ops++;
    const t = performance.now();
    const { outcome, bytes, gcDeleted, cleaned } = await withTimeout(applyFs(this.fs, op, this.hinos), 20_000, () => this.fail(`op hung: ${opText(op)}`));
    this.time('ops', t);
    if (gcDeleted !== undefined) {
      this.stats.gcDeleted += gcDeleted;
      this.note(`  gc deleted ${gcDeleted} objects`);
    }
    if (cleaned !== undefined) {
      this.stats.recordsCleaned += cleaned;
      this.note(`  cleaner moved ${cleaned} records`);
    }
    const crashed = this.store.crashed;
    this.note(`${opText(op)} -> ${outcomeText(outcome)}${outcomeText(outcome) !== outcomeText(expected) ? ` (model: ${outcomeText(expected)})` : ''}`);
    if (crashed) {
      // Whatever the op returned, it may or may not have reached the store; recovery decides.
      return 'ok';
    }
    const got = outcomeText(outcome);
    const want = outcomeText(expected);
    if (got === want) {
      if (mutates) this.model = next;
      if (isSync(op) && 'ok' in outcome) this.ack(this.boundary);
      if (op.k === 'read' && bytes) {
        const m = this.model.read(op.path, op.off, op.len);
        if ('errno' in m) this.fail(`read ${op.path}: model says ${m.errno}`);
        if (Buffer.compare(asBuffer(bytes), m.data) !== 0) {
          this.fail(`read ${op.path} [${op.off}, +${op.len}) returned ${bytes.length} bytes that differ from the model's ${m.data.length}`);
        }
      }
      if (op.k === 'hread' && bytes) {
        const d = this.model.handleNode(op.h).data;
        const want = d.subarray(Math.min(op.off, d.length), Math.min(d.length, op.off + op.len));
        if (Buffer.compare(asBuffer(bytes), want) !== 0) {
          this.fail(`read through handle ${op.h} [${op.off}, +${op.len}) returned ${bytes.length} bytes that differ from the model's ${want.length}`);
        }
      }
      return 'ok';
    }
    if (got === 'EIO') {
      // An injected fault surfaced. The op must be wholly unapplied: drop its candidate state.
      this.stats.eioOps++;
      if (isSync(op)) this.stats.syncsFailed++;
      if (mutates) this.states.pop();
      if (this.fs.volume.fenced) return this.halted();
      return 'ok';
    }
    if (got === 'EROFS' && this.fs.volume.fenced) {
      if (mutates) this.states.pop();
      return this.halted();
    }
    this.fail(`${opText(op)} returned ${got}, the model expected ${want}`);
  }

  /**
   * The volume stopped committing. After an update that failed half-way that is right (reopen to
   * recover); a fence is not: this simulation has one writer, so "another server" is always wrong.
   */
  private halted(): 'restart' {
    const why = this.fs.volume.fenced?.message ?? '';
    this.note(`  volume refuses writes: ${why}`);
    if (!why.includes('half-way')) this.fail(`the volume fenced itself with no other writer: ${why}`);
    return 'restart';
  }

  /** Reopen on the surviving objects; fsck; the state must be a model boundary in [ack, crash]. */
  private async recover(): Promise<void> {
    const upto = Math.min(this.crashAt ?? this.boundary, this.boundary);
    this.crashAt = undefined;
    this.incarnation++;
    // The crashed fs object is dropped, not closed: a dead process does not get to commit.
    let t = performance.now();
    await this.open(false);
    this.time('open', t);
    t = performance.now();
    // Data records are verified below by reading every file through the fs (checksummed reads).
    const report = await checkVolume(this.inner, 'default', { verifyData: false });
    this.time('fsck', t);
    this.stats.fileBytesChecked += report.stats.fileBytes;
    const errors = report.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0) {
      this.fail(`fsck after crash: ${errors.map((p) => `${p.where}: ${p.message}`).join('; ')}`);
    }
    this.store.setEnabled(false);
    let actual: string[];
    t = performance.now();
    try {
      actual = await describeFs(this.fs);
      this.time('describe', t);
    } catch (err) {
      this.fail(`cannot read the recovered namespace: ${String(err)}`);
    } finally {
      this.store.setEnabled(true);
    }
    let match = -1;
    t = performance.now();
    for (let j = upto - this.base; j >= 0; j--) {
      const lines = this.states[j]!.describe();
      if (lines.length === actual.length && lines.every((l, i) => l === actual[i])) {
        match = j;
        break;
      }
    }
    if (match < 0) {
      const last = this.states[upto - this.base]!.describe();
      const acked = this.states[0]!.describe();
      this.fail(
        `recovered state is no model state between the last acknowledged sync and the crash ` +
          `(boundaries ${this.base}..${upto})\n  vs last acknowledged:\n    ${diffLines(acked, actual).join('\n    ')}\n` +
          `  vs state at crash:\n    ${diffLines(last, actual).join('\n    ')}`,
      );
    }
    this.time('match', t);
    this.stats.lostOps += upto - this.base - match;
    this.note(`recovered to boundary ${this.base + match} of ${this.base}..${upto} (acknowledged..crash); fsck clean`);
    this.model = this.states[match]!.clone();
    // A restart closes every handle (and forgets files only a handle kept).
    this.model.dropHandles();
    this.hinos = [];
    // What was recovered is in the store: it is the new durable floor.
    this.states = [this.model.clone()];
    this.base += match;
  }

  /** The live file system equals the model exactly. */
  private async compareLive(what: string): Promise<void> {
    const enabled = !this.store.crashed && this.store.faultsEnabled;
    this.store.setEnabled(false);
    try {
      const actual = await describeFs(this.fs);
      const expected = this.model.describe();
      const d = diffLines(expected, actual);
      if (d.length > 0) this.fail(`${what}: live file system differs from the model:\n    ${d.join('\n    ')}`);
    } finally {
      if (enabled) this.store.setEnabled(true);
    }
  }

  /** End: faults off, a sync that must succeed, exact equality, clean close, fsck, and a reopen. */
  private async finish(): Promise<void> {
    this.store.setEnabled(false);
    this.store.disarm();
    this.fs.volume.failpoints.disarmAll();
    // Close what is still open (files that lost every name are freed now).
    while (this.model.handles.length > 0) {
      if ((await this.step({ k: 'close', h: this.model.handles.length - 1 })) === 'restart') this.fail('close halted the volume with faults off');
    }
    try {
      await this.fs.sync();
    } catch (err) {
      this.fail(`final sync with faults off failed: ${String(err)}`);
    }
    await this.compareLive('final');
    await this.fs.close();
    const report = await checkVolume(this.inner, 'default');
    const errors = report.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0) this.fail(`final fsck: ${errors.map((p) => `${p.where}: ${p.message}`).join('; ')}`);
    this.store = this.newStore();
    this.store.setEnabled(false);
    this.fs = await openFileSystem({ store: this.store, flushIntervalMs: 0, volumeOptions: this.volumeOptions, inode: simInodeOptions });
    await this.compareLive('after a clean close and reopen');
    await this.fs.close();
  }
}

/** A Buffer view of bytes (no copy). */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function isTransient(err: unknown): boolean {
  const s = String(err);
  // Store failures injected by FaultyStore surface as 'unavailable' StoreErrors (or EIO wrapping them).
  return /unavailable|injected|short read|EIO/.test(s) && !/CorruptionError|no valid commit|no commit found/.test(s);
}

async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => never): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        onTimeout();
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
