/**
 * Crash campaign on real processes and a real FUSE mount.
 *
 * Each lane owns a volume in a file: store and a mountpoint, and repeats a cycle:
 *   1. start `silt mount` (the real CLI, in its own process) on the volume;
 *   2. after a crash: read the whole tree back through the mount and check it against the model
 *      (crash-model.ts: some prefix of the operations, at least up to the last fsync that returned);
 *   3. run a seeded workload of ordinary syscalls through the mount (writes at random offsets,
 *      truncates, renames, links, unlinks, mkdir/rmdir, symlinks, chmod, fsync), keeping the model
 *      state after every operation;
 *   4. `kill -9` the server while an operation (chosen by the seed) is in flight;
 *   5. run fsck on the store (must be clean), then clean the stale mount in one of three ways
 *      (`fusermount3 -uz`, `umount -l`, or leave it to the next `silt mount`);
 *   6. now and then kill -9 the next server too while it recovers (reads and replays the commit
 *      chain, or writes the first checkpoint after it), and fsck again.
 * Every server gets a random flush interval, close mode and checkpoint policy (a checkpoint after
 * every 1, 3, 16 or 256 delta commits), so kills land in deltas, in checkpoints and in replay.
 * Lanes run side by side (separate volumes) so that process start-up overlaps.
 *
 * The CLI is bundled once with esbuild (already installed as tsx's own compiler) so that a
 * restart costs node's start-up, not a TypeScript transform of every module: same code, loaded
 * faster. The workload runs in this process with async fs calls (libuv's thread pool), never in
 * the server's process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { checkVolume } from '../../src/fsck/index.ts';
import { findMount } from '../../src/fuse/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { Random } from '../../src/util/index.ts';
import { q, repoRoot, sh, tempDir } from '../support/mount.ts';
import {
  apply,
  compare,
  defaultShape,
  describeOp,
  emptyState,
  randomOp,
  stateBytes,
  stateOf,
  type Observed,
  type Op,
  type State,
  type WorkloadShape,
} from './crash-model.ts';

export interface CrashCampaignOptions {
  seed: number;
  /** Stop after this many crashes (kill -9) in total. */
  crashPoints: number;
  /** Start no new cycle after this long. */
  seconds: number;
  /** Volumes crashed side by side. */
  lanes: number;
  /** Operations before the kill: uniform in [1, opsBeforeKillMax]. */
  opsBeforeKillMax: number;
  shape?: WorkloadShape;
  log?: (line: string) => void;
}

export interface CrashCampaignReport {
  seed: number;
  lanes: number;
  crashPoints: number;
  operations: number;
  operationsByKind: Record<string, number>;
  fsyncsAcknowledged: number;
  /** Crashes whose recovered state was newer than the last fsync (background commits). */
  recoveredPastLastFsync: number;
  /** Crashes after which the operation in flight at the kill turned out to be committed. */
  inFlightCommitted: number;
  /** Recoveries that matched only with a write partly applied (allowed: writes are not atomic). */
  partialWrites: number;
  /** Sum over crashes of the bytes in files that an fsync made durable, read back and compared. */
  durableBytesVerified: number;
  bytesLost: number;
  fsckRuns: number;
  staleCleanups: Record<'fusermount3' | 'umount' | 'server', number>;
  serverStartMs: { mean: number; max: number };
  /** Second crashes while a server recovered the volume, before it mounted. */
  recoveryCrashes: number;
  /** ... that landed just after the mount (the first commit after recovery may be in flight). */
  recoveryCrashesAfterMount: number;
  wallMs: number;
  /** CPU time of this process (workload, verification, fsck); servers' CPU is not counted. */
  driverCpuMs: number;
}

/** A failure with everything needed to replay it. */
export class CrashCampaignFailure extends Error {}

export interface Cli {
  argv: string[];
}

/** Bundle src/cli/main.ts into one ES module (falls back to bin/silt.mjs through tsx). */
export async function prepareCli(tmp: string, log: (l: string) => void): Promise<Cli> {
  const dir = path.join(tmp, 'cli');
  try {
    const esbuild = (await import('esbuild')) as typeof import('esbuild');
    const out = path.join(dir, 'src', 'cli', 'silt.mjs');
    await esbuild.build({
      entryPoints: [path.join(repoRoot, 'src/cli/main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: out,
      packages: 'external',
      logLevel: 'warning',
    });
    // main.ts reads ../../package.json; bare imports resolve through a node_modules link.
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    return { argv: [out] };
  } catch (e) {
    log(`# esbuild bundle unavailable (${(e as Error).message}); running the CLI through tsx`);
    return { argv: [path.join(repoRoot, 'bin/silt.mjs')] };
  }
}

interface Server {
  proc: ChildProcess;
  syncOnClose: boolean;
  exited: Promise<number | string>;
  log(): string;
}

/** How a server is started: its flush interval, close mode and checkpoint policy. */
interface ServerShape {
  flushIntervalMs: number;
  syncOnClose: boolean;
  /** Delta commits between checkpoints: small values put checkpoints (and kills during them) mid-workload. */
  checkpointDeltasMax: number;
}

function spawnMount(cli: Cli, lane: Lane, mkfs: boolean, shape: ServerShape): { proc: ChildProcess; exited: Promise<number | string>; out: () => string } {
  const args = [
    ...cli.argv,
    'mount',
    '--store',
    `file:${lane.store}`,
    '--flush-interval-ms',
    String(shape.flushIntervalMs),
    '--checkpoint-deltas-max',
    String(shape.checkpointDeltasMax),
    lane.mnt,
  ];
  if (mkfs) args.push('--mkfs');
  if (shape.syncOnClose) args.push('--sync-on-close');
  const proc = spawn(process.execPath, args, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SILT_RUN_DIR: lane.runDir, SILT_LOG_LEVEL: 'info' },
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return { proc, exited, out: () => out };
}

async function startMount(cli: Cli, lane: Lane, mkfs: boolean, shape: ServerShape): Promise<Server> {
  const { proc, exited, out: output } = spawnMount(cli, lane, mkfs, shape);
  let out = output();
  const deadline = Date.now() + 90_000;
  let gone: number | string | undefined;
  void exited.then((c) => (gone = c));
  while (!/\bmounted\b/.test((out = output()))) {
    if (gone !== undefined) throw new Error(`silt mount exited (${gone}) before mounting:\n${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`silt mount did not mount in 90 s:\n${out}`);
    }
    await sleep(10);
  }
  return { proc, syncOnClose: shape.syncOnClose, exited, log: output };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Lane {
  index: number;
  rnd: Random;
  dir: string;
  store: string;
  mnt: string;
  runDir: string;
  state: State;
  cycles: number;
  names: number;
  ids: number;
}

/** Read everything under the mount: the observed state. */
async function observe(root: string): Promise<Observed> {
  const paths: Observed['paths'] = new Map();
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '' ? root : path.join(root, rel);
    for (const name of (await fsp.readdir(abs)).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(root, p);
      const st = await fsp.lstat(full);
      if (st.isDirectory()) {
        paths.set(p, { kind: 'dir', ino: st.ino, nlink: st.nlink, mode: st.mode & 0o7777, data: Buffer.alloc(0), target: '' });
        await walk(p);
      } else if (st.isSymbolicLink()) {
        paths.set(p, { kind: 'symlink', ino: st.ino, nlink: st.nlink, mode: st.mode & 0o7777, data: Buffer.alloc(0), target: await fsp.readlink(full) });
      } else if (st.isFile()) {
        const data = await fsp.readFile(full);
        if (data.length !== st.size) throw new Error(`${p}: read ${data.length} bytes, stat says ${st.size}`);
        paths.set(p, { kind: 'file', ino: st.ino, nlink: st.nlink, mode: st.mode & 0o7777, data, target: '' });
      } else {
        throw new Error(`${p}: unexpected file type ${st.mode.toString(8)}`);
      }
    }
  };
  await walk('');
  return { paths };
}

/** Run one operation through the mount with ordinary syscalls. */
async function perform(root: string, o: Op): Promise<void> {
  const at = (p: string): string => path.join(root, p);
  switch (o.op) {
    case 'create':
      await (await fsp.open(at(o.path), 'wx', 0o644)).close();
      return;
    case 'write': {
      const fh = await fsp.open(at(o.path), 'r+');
      try {
        const { bytesWritten } = await fh.write(o.data, 0, o.data.length, o.offset);
        if (bytesWritten !== o.data.length) throw new Error(`short write ${bytesWritten}/${o.data.length}`);
      } finally {
        await fh.close();
      }
      return;
    }
    case 'truncate':
      await fsp.truncate(at(o.path), o.size);
      return;
    case 'rename':
      await fsp.rename(at(o.from), at(o.to));
      return;
    case 'link':
      await fsp.link(at(o.from), at(o.to));
      return;
    case 'unlink':
      await fsp.unlink(at(o.path));
      return;
    case 'mkdir':
      await fsp.mkdir(at(o.path), 0o755);
      return;
    case 'rmdir':
      await fsp.rmdir(at(o.path));
      return;
    case 'symlink':
      await fsp.symlink(o.target, at(o.path));
      return;
    case 'chmod':
      await fsp.chmod(at(o.path), o.mode);
      return;
    case 'fsync': {
      const fh = await fsp.open(at(o.path), 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      return;
    }
  }
}

type Cleanup = 'fusermount3' | 'umount' | 'server';

export async function runCrashCampaign(opts: CrashCampaignOptions): Promise<CrashCampaignReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const shape = opts.shape ?? defaultShape;
  const t0 = Date.now();
  const deadline = t0 + opts.seconds * 1000;
  const tmp = tempDir('silt-crash-');
  const cli = await prepareCli(tmp, log);
  const report: CrashCampaignReport = {
    seed: opts.seed,
    lanes: opts.lanes,
    crashPoints: 0,
    operations: 0,
    operationsByKind: {},
    fsyncsAcknowledged: 0,
    recoveredPastLastFsync: 0,
    inFlightCommitted: 0,
    partialWrites: 0,
    durableBytesVerified: 0,
    bytesLost: 0,
    fsckRuns: 0,
    staleCleanups: { fusermount3: 0, umount: 0, server: 0 },
    serverStartMs: { mean: 0, max: 0 },
    recoveryCrashes: 0,
    recoveryCrashesAfterMount: 0,
    wallMs: 0,
    driverCpuMs: 0,
  };
  const cpu0 = process.cpuUsage();
  const starts: number[] = [];
  const servers = new Set<Server>();
  const lanes: Lane[] = Array.from({ length: opts.lanes }, (_, i) => {
    const dir = path.join(tmp, `lane${i}`);
    fs.mkdirSync(dir);
    return {
      index: i,
      rnd: new Random((opts.seed + i * 1_000_003) >>> 0),
      dir,
      store: path.join(dir, 'store'),
      mnt: path.join(dir, 'mnt'),
      runDir: path.join(dir, 'run'),
      state: emptyState,
      cycles: 0,
      names: 0,
      ids: 2 ** 40,
    };
  });

  const where = (lane: Lane): string => `seed ${opts.seed}, lane ${lane.index}, cycle ${lane.cycles} (replay: SILT_SEED=${opts.seed})`;

  async function start(lane: Lane, mkfs: boolean, shape: ServerShape): Promise<Server> {
    const t = Date.now();
    const s = await startMount(cli, lane, mkfs, shape);
    starts.push(Date.now() - t);
    servers.add(s);
    void s.exited.then(() => servers.delete(s));
    return s;
  }

  async function fsck(lane: Lane, when: string): Promise<void> {
    const r = await checkVolume(await openStore(`file:${lane.store}`), 'default');
    report.fsckRuns++;
    const errors = r.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0 || !r.clean) {
      throw new CrashCampaignFailure(`fsck ${when} (${where(lane)}) found: ${JSON.stringify(errors.slice(0, 10))}`);
    }
  }

  /** A random flush interval, close mode and checkpoint policy. */
  function randomShape(lane: Lane): ServerShape {
    return {
      flushIntervalMs: lane.rnd.pick([30, 100, 250, 1000]),
      syncOnClose: lane.rnd.chance(0.25),
      checkpointDeltasMax: lane.rnd.pick([1, 3, 16, 256]),
    };
  }

  function startRandom(lane: Lane, mkfs: boolean): Promise<Server> {
    return start(lane, mkfs, randomShape(lane));
  }

  /**
   * A crash during recovery: start a server on the crashed volume and kill -9 it before it reports
   * the mount, while it reads and replays the commit chain (or writes the checkpoint after it).
   * The store must still pass fsck and the next recovery must find the same state.
   */
  async function crashDuringRecovery(lane: Lane): Promise<void> {
    const delayMs = lane.rnd.int(Math.max(50, Math.round(meanStartMs() * 1.2)));
    const { proc, exited, out } = spawnMount(cli, lane, false, randomShape(lane));
    await Promise.race([exited, sleep(delayMs)]);
    const mountedFirst = /\bmounted\b/.test(out());
    proc.kill('SIGKILL');
    const code = await exited;
    if (code !== 'SIGKILL' && !/\bmounted\b/.test(out())) {
      throw new CrashCampaignFailure(`${where(lane)}: recovery exited (${code}) before the kill:\n${out().slice(-3000)}`);
    }
    if (mountedFirst) report.recoveryCrashesAfterMount++;
    else report.recoveryCrashes++;
    await fsck(lane, 'after kill -9 during recovery');
    if (findMount(lane.mnt)) await shOk(`fusermount3 -uz ${q(lane.mnt)}`);
  }

  function meanStartMs(): number {
    return starts.length === 0 ? 500 : starts.reduce((a, b) => a + b, 0) / starts.length;
  }

  /**
   * One crash cycle: a workload on the running server, kill -9, fsck, stale-mount cleanup, a new
   * server, and verification of what it serves. Returns the new server.
   */
  async function cycle(lane: Lane, server: Server, cleanup: Cleanup): Promise<Server> {
    lane.cycles++;
    const rnd = lane.rnd;
    const base = lane.state;
    // The workload: ops[i] takes states[i] to states[i+1].
    const ops: Op[] = [];
    const states: State[] = [base];
    const fresh = (): string => `n${(lane.names++).toString(36)}`;
    const nextId = (): number => lane.ids++;
    const killAfter = 1 + rnd.int(opts.opsBeforeKillMax);
    const killDelayMs = rnd.chance(0.3) ? 0 : rnd.int(8);
    let durable = 0; // states[durable] is covered by an acknowledged fsync (or sync-on-close close)
    let started = 0;
    let killed = false;
    let failure: Error | undefined;
    const kill = (): void => {
      if (killed) return;
      killed = true;
      server.proc.kill('SIGKILL');
    };
    for (let i = 0; ; i++) {
      const o = randomOp(states[i]!, rnd, shape, fresh);
      ops.push(o);
      states.push(apply(states[i]!, o, nextId));
      started = i + 1;
      if (i + 1 === killAfter) {
        if (killDelayMs === 0) setImmediate(kill);
        else setTimeout(kill, killDelayMs);
      }
      try {
        await perform(lane.mnt, o);
      } catch (e) {
        if (!killed) failure = e as Error;
        break;
      }
      report.operations++;
      report.operationsByKind[o.op] = (report.operationsByKind[o.op] ?? 0) + 1;
      if (o.op === 'fsync' || (server.syncOnClose && o.op === 'write')) {
        durable = i + 1;
        if (o.op === 'fsync') report.fsyncsAcknowledged++;
      }
      if (killed) break;
      if (i > killAfter + 10_000) throw new Error('the server did not die');
    }
    if (failure) {
      kill();
      throw new CrashCampaignFailure(`${where(lane)}: ${describeOp(ops[started - 1]!)} failed before the kill: ${failure.message}\nserver:\n${server.log().slice(-3000)}`);
    }
    await server.exited;
    report.crashPoints++;

    // The store after the crash must be consistent on its own.
    await fsck(lane, 'after kill -9');

    // Stale mount: the kernel still has it; clean it one of three ways.
    if (!findMount(lane.mnt)) throw new CrashCampaignFailure(`${where(lane)}: no stale mount after kill -9`);
    report.staleCleanups[cleanup]++;
    if (cleanup === 'fusermount3') await shOk(`fusermount3 -uz ${q(lane.mnt)}`);
    else if (cleanup === 'umount') await shOk(`umount -l ${q(lane.mnt)}`);
    // Now and then a second crash while the volume recovers (the 'server' cleanup is left to the
    // verifier, which must report it).
    if (cleanup !== 'server' && (lane.cycles === 1 || rnd.chance(0.3))) await crashDuringRecovery(lane);

    // Recovery: mount again, find the state the volume came back in.
    const verifier = await startRandom(lane, false);
    if (cleanup === 'server' && !/cleaned a stale mount/.test(verifier.log())) {
      throw new CrashCampaignFailure(`${where(lane)}: the new server did not report cleaning the stale mount:\n${verifier.log()}`);
    }
    const obs = await observe(lane.mnt);
    let matched: { k: number; partial: boolean } | undefined;
    for (let k = started; k >= durable && !matched; k--) {
      if (compare(obs, states[k]!) === undefined) matched = { k, partial: false };
      else {
        const o = ops[k];
        if (k < started && o?.op === 'write' && compare(obs, states[k]!, o) === undefined) matched = { k, partial: true };
      }
    }
    if (!matched) {
      const recent = ops.slice(Math.max(0, durable - 3)).map((o, j) => `  ${Math.max(0, durable - 3) + j}: ${describeOp(o)}`);
      throw new CrashCampaignFailure(
        `${where(lane)}: the recovered volume matches no state the contract allows (last fsync'd state ${durable}, ` +
          `last started ${started}).\n vs state ${durable}: ${compare(obs, states[durable]!)}\n vs state ${started}: ${compare(obs, states[started]!)}\n` +
          `operations:\n${recent.join('\n')}`,
      );
    }
    if (matched.k > durable) report.recoveredPastLastFsync++;
    if (matched.k === started && started === killAfter) report.inFlightCommitted++;
    if (matched.partial) report.partialWrites++;
    report.durableBytesVerified += stateBytes(states[durable]!);
    lane.state = stateOf(obs);
    return verifier;
  }

  const cleanups: Cleanup[] = ['fusermount3', 'umount', 'server'];
  let claimed = 0;
  try {
    await Promise.all(
      lanes.map(async (lane) => {
        if (claimed >= opts.crashPoints || Date.now() >= deadline) return;
        let server = await startRandom(lane, true);
        while (claimed < opts.crashPoints && Date.now() < deadline) {
          claimed++;
          server = await cycle(lane, server, cleanups[(lane.cycles + lane.index) % cleanups.length]!);
        }
        // A clean unmount commits and exits 0.
        await shOk(`umount ${q(lane.mnt)}`);
        const code = await server.exited;
        if (code !== 0) throw new CrashCampaignFailure(`${where(lane)}: the last server exited with ${code}:\n${server.log()}`);
      }),
    );
    // Last: a clean unmount-free check of every lane's store.
    for (const lane of lanes) if (lane.cycles > 0) await fsck(lane, 'at the end');
  } finally {
    for (const s of servers) s.proc.kill('SIGKILL');
    for (const lane of lanes) {
      for (let i = 0; i < 3 && findMount(lane.mnt); i++) await sh(`umount -l ${q(lane.mnt)}`);
    }
    // Never let the clean-up hide the failure that got us here (a mount still busy, say).
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
    } catch (e) {
      log(`# crash campaign: could not remove ${tmp}: ${(e as Error).message}`);
    }
  }
  report.serverStartMs = {
    mean: Math.round(starts.reduce((a, b) => a + b, 0) / Math.max(1, starts.length)),
    max: Math.max(0, ...starts),
  };
  report.wallMs = Date.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  report.driverCpuMs = Math.round((cpu.user + cpu.system) / 1000);
  return report;
}

async function shOk(cmd: string): Promise<void> {
  const r = await sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd} failed (${r.code}): ${r.stderr}`);
}
