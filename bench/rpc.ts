/**
 * RPC benchmark, one run (see bench/README.md; not part of npm test):
 *
 *   npx tsx bench/rpc.ts [--long]        (npm run bench:rpc)
 *
 * One `silt serve --mount LOCAL` process owns a volume on a `file:` store in a temp directory: it
 * serves JSON-RPC and mounts the volume locally through FUSE. This process then measures
 * 1. RpcGetStat round trips per second through RpcClient, one call at a time and 16 in flight;
 * 2. RpcWrite throughput, 1 MiB calls one at a time, with the data as base64 in JSON and in binary
 *    frames (RpcClient's `binaryFrames` off and on), each followed by an RpcFlush;
 * 3. the small-file rate (create + write 4 KiB + close per file, one writer; then one fsync, which
 *    commits the whole volume) through an agent mount (`silt mount --remote`, another process
 *    speaking RPC) beside the same through the server's local mount (the same engine, no RPC).
 * Short by default (a minute or so on a quiet machine); --long multiplies the counts by 4.
 * A JSON copy goes to bench/results/rpc-<date>.json. Environment: BENCH_DIR (os.tmpdir()).
 */
process.env.UV_THREADPOOL_SIZE ??= '16';

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpcClient } from '../src/rpc/index.ts';

const LONG = process.argv.includes('--long');
const K = LONG ? 4 : 1;
const STAT_CALLS = 2000 * K;
const WRITE_MIB = 32 * K;
const SMALL_FILES = 300 * K;
const SMALL_BYTES = 4096;
const MiB = 1024 * 1024;
const TOKEN = 'bench-rpc-token';
const ROOT = { uid: 0, gid: 0, groups: [] as number[] };

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const silt = join(repo, 'bin', 'silt.mjs');
const base = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'silt-bench-rpc-'));
const store = `file:${join(base, 'store')}`;
const localMnt = join(base, 'local');
const agentMnt = join(base, 'agent');
mkdirSync(agentMnt);
const env = { ...process.env, SILT_TOKEN: TOKEN, SILT_RUN_DIR: join(base, 'run'), SILT_LOG_LEVEL: 'warn' };

const now = (): number => performance.now();
const secs = (t0: number): number => (now() - t0) / 1000;

async function startServer(): Promise<{ proc: ChildProcess; port: number; exited: Promise<number | null> }> {
  const proc = spawn(process.execPath, [silt, 'serve', '--store', store, '--mkfs', '--rpc', '127.0.0.1:0', '--mount', localMnt], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  for (let i = 0; i < 1200 && !out.includes('also mounted at'); i++) {
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const m = /over JSON-RPC on 127\.0\.0\.1:(\d+)/.exec(out);
  if (!m || !out.includes('also mounted at')) throw new Error(`silt serve --mount did not start:\n${out}`);
  return { proc, port: Number(m[1]), exited };
}

function cli(args: string[]): void {
  const r = spawnSync(process.execPath, [silt, ...args], { env, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`silt ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
}

async function getStatRate(client: RpcClient, ino: number, inFlight: number): Promise<number> {
  const per = Math.ceil(STAT_CALLS / inFlight);
  const t0 = now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = 0; i < per; i++) await client.getattr(ROOT, ino);
    }),
  );
  return (per * inFlight) / secs(t0);
}

async function writeRate(client: RpcClient, name: string): Promise<{ MBps: number; cpuMBps: number }> {
  const f = await client.create(ROOT, client.rootInode, name, 0o644);
  const chunk = randomBytes(MiB);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  for (let i = 0; i < WRITE_MIB; i++) await client.write(ROOT, f.ino, i * MiB, chunk);
  await client.fsync(f.ino, false);
  const s = secs(t0);
  const cpu = process.cpuUsage(cpu0);
  return { MBps: (WRITE_MIB * MiB) / 1e6 / s, cpuMBps: (WRITE_MIB * MiB) / 1e6 / ((cpu.user + cpu.system) / 1e6) };
}

/** create + write 4 KiB + close per file, 1 writer; then fsync of one file (commits the lot). */
async function smallFiles(dir: string): Promise<{ filesPerSec: number; durableFilesPerSec: number }> {
  await fsp.mkdir(dir, { recursive: true });
  const data = randomBytes(SMALL_BYTES);
  const t0 = now();
  for (let i = 0; i < SMALL_FILES; i++) await fsp.writeFile(join(dir, `f${i}`), data);
  const returned = secs(t0);
  const h = await fsp.open(join(dir, 'f0'), 'r+');
  await h.sync();
  await h.close();
  return { filesPerSec: SMALL_FILES / returned, durableFilesPerSec: SMALL_FILES / secs(t0) };
}

async function main(): Promise<void> {
  const started = new Date();
  const load0 = loadavg();
  const server = await startServer();
  let agentMounted = false;
  const results: Record<string, number | string> = {};
  try {
    const frames = await RpcClient.connect({ port: server.port, token: TOKEN });
    const json = await RpcClient.connect({ port: server.port, token: TOKEN, binaryFrames: false });
    const f = await frames.create(ROOT, frames.rootInode, 'stat-target', 0o644);
    await getStatRate(frames, f.ino, 1); // warm up
    results['getStat1PerSec'] = await getStatRate(frames, f.ino, 1);
    results['getStat16PerSec'] = await getStatRate(frames, f.ino, 16);
    const b64 = await writeRate(json, 'w-base64');
    const bin = await writeRate(frames, 'w-binary');
    results['writeBase64MBps'] = b64.MBps;
    results['writeBase64ClientCpuMBps'] = b64.cpuMBps;
    results['writeBinaryMBps'] = bin.MBps;
    results['writeBinaryClientCpuMBps'] = bin.cpuMBps;
    await frames.close();
    await json.close();

    cli(['mount', '--remote', `127.0.0.1:${server.port}`, agentMnt, '--background']);
    agentMounted = true;
    const local = await smallFiles(join(localMnt, 'small-local'));
    const agent = await smallFiles(join(agentMnt, 'small-agent'));
    results['smallLocalFilesPerSec'] = local.filesPerSec;
    results['smallLocalDurableFilesPerSec'] = local.durableFilesPerSec;
    results['smallAgentFilesPerSec'] = agent.filesPerSec;
    results['smallAgentDurableFilesPerSec'] = agent.durableFilesPerSec;
    cli(['umount', agentMnt]);
    agentMounted = false;
  } finally {
    if (agentMounted) spawnSync(process.execPath, [silt, 'umount', agentMnt], { env });
    server.proc.kill('SIGTERM');
    await server.exited;
  }
  const load1 = loadavg();
  const r = (k: string): number => results[k] as number;
  const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const rows: [string, string, string][] = [
    ['RpcGetStat, 1 in flight', `${fmt(r('getStat1PerSec'))} calls/s`, ''],
    ['RpcGetStat, 16 in flight', `${fmt(r('getStat16PerSec'))} calls/s`, `x${fmt(r('getStat16PerSec') / r('getStat1PerSec'), 1)} vs 1 in flight`],
    [`RpcWrite ${WRITE_MIB} MiB, 1 MiB calls, base64 JSON`, `${fmt(r('writeBase64MBps'), 1)} MB/s`, `client ${fmt(r('writeBase64ClientCpuMBps'), 0)} MB per CPU-s`],
    [`RpcWrite ${WRITE_MIB} MiB, 1 MiB calls, binary frames`, `${fmt(r('writeBinaryMBps'), 1)} MB/s`, `x${fmt(r('writeBinaryMBps') / r('writeBase64MBps'), 1)} vs base64; client ${fmt(r('writeBinaryClientCpuMBps'), 0)} MB per CPU-s`],
    [`${SMALL_FILES} files of 4 KiB, local mount (serve --mount)`, `${fmt(r('smallLocalFilesPerSec'))} files/s`, `${fmt(r('smallLocalDurableFilesPerSec'))} files/s with the final fsync`],
    [`${SMALL_FILES} files of 4 KiB, agent mount (mount --remote)`, `${fmt(r('smallAgentFilesPerSec'))} files/s`, `${fmt(r('smallAgentDurableFilesPerSec'))} files/s with the final fsync; x${fmt(r('smallAgentFilesPerSec') / r('smallLocalFilesPerSec'), 2)} of local`],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  process.stdout.write(`\nsilt RPC benchmark (${LONG ? 'long' : 'short'}), load average ${load0.map((x) => x.toFixed(1)).join(' ')} -> ${load1.map((x) => x.toFixed(1)).join(' ')}\n\n`);
  for (const [a, b, c] of rows) process.stdout.write(`  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}\n`);
  const resDir = join(repo, 'bench', 'results');
  mkdirSync(resDir, { recursive: true });
  const file = join(resDir, `rpc-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ started: started.toISOString(), long: LONG, statCalls: STAT_CALLS, writeMiB: WRITE_MIB, smallFiles: SMALL_FILES, loadavgStart: load0, loadavgEnd: load1, results }, null, 2) + '\n');
  process.stdout.write(`\n  JSON: ${file}\n`);
}

try {
  await main();
} finally {
  rmSync(base, { recursive: true, force: true });
}
