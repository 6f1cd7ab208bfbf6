/**
 * SMB benchmark: smbclient put/get of one large file (1 GiB) and of 1,000 small files through
 * `silt smb` (the real Debian smbd over a Silt FUSE mount in sync-on-close mode), beside a second
 * smbd serving a plain local directory of the same disk with the same generated smb.conf (only the
 * share's path and port differ), in the same run. Each workload runs on Silt and right after on
 * the plain share, so both see about the same machine load.
 *
 *   npm run bench:smb            (root; see bench/README.md; not part of npm test)
 *   npx tsx bench/smb.ts --quick (256 MiB, 200 small files)
 *
 * Environment:
 *   BENCH_DIR        where the temp directory goes (os.tmpdir())
 *   BENCH_SMB_MIB    large file size in MiB (1024; --quick 256)
 *   BENCH_SMB_FILES  number of small files (1000; --quick 200), BENCH_SMB_FILE_BYTES each (4096)
 *   BENCH_SMB_STORE  store URL for Silt (default file:<temp>/store; a swift+http:// or s3+http:// URL
 *                    works with its credentials in the environment)
 *   BENCH_SMB_OPTIONS  extra smb.conf share parameters for both shares, 'name = value; name = value'
 *                    (silt smb --smb-option), to try Samba settings
 *   BENCH_SMB_READ_AHEAD_KIB  set the Silt mount's kernel read-ahead to this (default: what silt smb sets)
 * BENCH_SMB_FILES=0 skips the small-file phases.
 * Prints a markdown table (Silt, plain, ratio Silt / plain in throughput: above 1 means Silt was
 * faster) and writes bench/results/smb-<timestamp>.json.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { DEFAULT_VFS_OBJECTS } from '../src/cli/smb.ts';
import { setReadAhead } from '../src/fuse/index.ts';
import { Smbd, SHARE_GROUP, findSamba, groupId, renderSmbConf, setSmbPassword, stateLayout } from '../src/smb/index.ts';
import { ensureSamba, existingUsers, freePort, patternBytes, removeUsersCreated, repoRoot, run, startSiltSmb, type ShResult, type SiltSmb } from '../test/support/smb.ts';

const QUICK = process.argv.includes('--quick');
const MiB = 1024 * 1024;
const BIG_MIB = Number(process.env['BENCH_SMB_MIB'] ?? (QUICK ? 256 : 1024));
const FILES = Number(process.env['BENCH_SMB_FILES'] ?? (QUICK ? 200 : 1000));
const FILE_BYTES = Number(process.env['BENCH_SMB_FILE_BYTES'] ?? 4096);
const OPTIONS = (process.env['BENCH_SMB_OPTIONS'] ?? '').split(';').map((x) => x.trim()).filter(Boolean);
const USER = { name: `silt_bench_${Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0')}`, password: 'bench-Secret1' };

type Side = 'silt' | 'plain';
interface Figures {
  bigPutMBps?: number;
  bigGetMBps?: number;
  smallPutFilesPerSec?: number;
  smallGetFilesPerSec?: number;
  /** CPU seconds (user + system) per workload and process: smbclient, smbd (all its processes), Silt's FUSE server. */
  cpu?: Record<string, { smbclient: number; smbd: number; silt: number }>;
}

const CLK_TCK = 100;

/** utime + stime of a process and of its children it has reaped, in seconds (0 if it is gone). */
function processCpu(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** smbd's main process and every process of its group (connection children not yet reaped). */
function smbdCpu(pid: number): number {
  let total = processCpu(pid);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pid) total += (Number(f[11]) + Number(f[12])) / CLK_TCK; // pgrp
    } catch {
      // gone
    }
  }
  return total;
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 4 * MiB })
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

function checked(r: ShResult, what: string): ShResult {
  if (r.code !== 0 || /NT_STATUS_\w+/.test(r.stdout + r.stderr)) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  return r;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/smb.ts needs root (smbd, useradd, FUSE mounts)');
  await ensureSamba();
  const started = new Date();
  const load0 = loadavg();
  const usersBefore = await existingUsers([USER.name]);
  const base = fs.mkdtempSync(path.join(process.env['BENCH_DIR'] ?? tmpdir(), 'silt-bench-smb-'));
  fs.chmodSync(base, 0o755); // smbd enters both shares as the Samba user
  const local = path.join(base, 'local');
  const small = path.join(local, 'small');
  fs.mkdirSync(small, { recursive: true });
  let silt: SiltSmb | undefined;
  let plain: Smbd | undefined;
  const results: Record<Side, Figures> = { silt: {}, plain: {} };
  try {
    // Inputs: one large file of distinct 16 MiB blocks, and the small files.
    const big = path.join(local, 'big');
    const fd = fs.openSync(big, 'w');
    const block = patternBytes(16 * MiB, 7);
    for (let i = 0; i < (BIG_MIB * MiB) / block.length; i++) {
      block.writeUInt32LE(i, 0);
      fs.writeSync(fd, block);
    }
    const rest = (BIG_MIB * MiB) % block.length;
    if (rest) fs.writeSync(fd, block, 0, rest);
    fs.closeSync(fd);
    const bigSha = await sha256File(big);
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(small, `f${String(i).padStart(5, '0')}`), patternBytes(FILE_BYTES, i + 1));

    // Silt: `silt smb` exactly as a user runs it.
    silt = await startSiltSmb({
      dir: path.join(base, 'silt'),
      share: 'silt',
      users: [USER],
      ...(process.env['BENCH_SMB_STORE'] && { store: process.env['BENCH_SMB_STORE'] }),
      extraArgs: OPTIONS.flatMap((x) => ['--smb-option', x]),
    });
    const ra = process.env['BENCH_SMB_READ_AHEAD_KIB'];
    if (ra && !setReadAhead(silt.mountpoint, Number(ra))) throw new Error(`could not set read-ahead of ${silt.mountpoint}`);
    // Plain: the same generated smb.conf over a local directory, its own state and port.
    const layout = stateLayout(path.join(base, 'plain-state'));
    const plainDir = path.join(base, 'plain');
    for (const d of [layout.root, layout.private, layout.lock, layout.state, layout.cache, layout.pid, layout.ncalrpc, layout.binddns, layout.log, plainDir]) {
      fs.mkdirSync(d, { recursive: true });
    }
    fs.chmodSync(layout.private, 0o700);
    // Same ownership as silt smb gives the Silt share root.
    fs.chownSync(plainDir, 0, await groupId(SHARE_GROUP));
    fs.chmodSync(plainDir, 0o2775);
    const port = await freePort();
    fs.writeFileSync(
      layout.conf,
      renderSmbConf({
        layout,
        share: 'plain',
        path: plainDir,
        port,
        listen: '127.0.0.1',
        users: [USER.name],
        readOnlyUsers: [],
        vfsObjects: DEFAULT_VFS_OBJECTS.split(' '),
        shareOptions: OPTIONS,
      }),
    );
    await setSmbPassword(layout.conf, USER);
    plain = await Smbd.start({ smbd: findSamba().smbd, conf: layout.conf, stdinFifo: path.join(layout.root, 'smbd.stdin'), host: '127.0.0.1', port });

    const smbdPid = (side: Side): number => Number(fs.readFileSync(side === 'silt' ? path.join(silt!.stateDir, 'pid', 'smbd.pid') : path.join(layout.pid, 'smbd.pid'), 'utf8').trim());
    const pids = { silt: smbdPid('silt'), plain: smbdPid('plain'), server: silt.mountServerPid() };
    /** smbclient through bash, whose `times` adds the CPU time of its children (smbclient). */
    const client = async (side: Side, cmds: string, what: string): Promise<ShResult> => {
      const cpu0 = { smbd: smbdCpu(pids[side]), silt: side === 'silt' ? processCpu(pids.server) : 0 };
      const r = await run(
        'bash',
        ['-c', 'smbclient "$@"; rc=$?; times >&2; exit $rc', 'smbclient', `//127.0.0.1/${side}`, '-p', String(side === 'silt' ? silt!.port : port), '-U', `${USER.name}%${USER.password}`, '-c', cmds],
        { timeoutMs: 1_800_000 },
      );
      await new Promise((res) => setTimeout(res, 300)); // smbd reaps the connection's process
      const t = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stderr.trim());
      const clientCpu = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : NaN;
      (results[side].cpu ??= {})[what] = {
        smbclient: clientCpu,
        smbd: smbdCpu(pids[side]) - cpu0.smbd,
        silt: side === 'silt' ? processCpu(pids.server) - cpu0.silt : 0,
      };
      return { ...r, stderr: r.stderr.replace(/(\d+m[\d.]+s \d+m[\d.]+s\s*){2}$/, '') };
    };
    const sides: Side[] = ['silt', 'plain'];
    const mb = BIG_MIB * MiB / 1e6;

    for (const side of sides) {
      const r = checked(await client(side, `lcd ${local}; put big`, 'bigPut'), `${side} put big`);
      results[side].bigPutMBps = mb / (r.ms / 1000);
      console.error(`${side}: put ${BIG_MIB} MiB in ${(r.ms / 1000).toFixed(1)} s`);
    }
    for (const side of sides) {
      const back = path.join(local, `big.${side}`);
      const r = checked(await client(side, `lcd ${local}; get big big.${side}`, 'bigGet'), `${side} get big`);
      results[side].bigGetMBps = mb / (r.ms / 1000);
      console.error(`${side}: get ${BIG_MIB} MiB in ${(r.ms / 1000).toFixed(1)} s`);
      const sha = await sha256File(back);
      if (sha !== bigSha) throw new Error(`${side}: the large file came back different (sha256 ${sha}, sent ${bigSha})`);
      fs.rmSync(back);
    }
    for (const side of FILES > 0 ? sides : []) {
      const r = checked(await client(side, `prompt OFF; lcd ${small}; mkdir small; cd small; mput *`, 'smallPut'), `${side} mput`);
      results[side].smallPutFilesPerSec = FILES / (r.ms / 1000);
      console.error(`${side}: put ${FILES} files in ${(r.ms / 1000).toFixed(1)} s`);
    }
    for (const side of FILES > 0 ? sides : []) {
      const dest = path.join(local, `small.${side}`);
      fs.mkdirSync(dest);
      const r = checked(await client(side, `prompt OFF; lcd ${dest}; cd small; mget *`, 'smallGet'), `${side} mget`);
      results[side].smallGetFilesPerSec = FILES / (r.ms / 1000);
      console.error(`${side}: get ${FILES} files in ${(r.ms / 1000).toFixed(1)} s`);
      const d = checked(await run('diff', ['-r', '-q', small, dest]), `${side}: diff -r of the small files`);
      void d;
    }
  } finally {
    if (plain) await plain.stop();
    if (silt) {
      const code = await silt.stop();
      if (code !== 0) console.error(`silt smb exited ${code}:\n${silt.log()}`);
    }
    await removeUsersCreated([USER.name], usersBefore);
    fs.rmSync(base, { recursive: true, force: true });
  }
  const load1 = loadavg();

  const rows: Array<[Exclude<keyof Figures, 'cpu'>, string, string]> = [
    ['bigPutMBps', `put ${BIG_MIB} MiB`, 'MB/s'],
    ['bigGetMBps', `get ${BIG_MIB} MiB`, 'MB/s'],
    ['smallPutFilesPerSec', `mput ${FILES} files of ${FILE_BYTES} B`, 'files/s'],
    ['smallGetFilesPerSec', `mget ${FILES} files of ${FILE_BYTES} B`, 'files/s'],
  ];
  const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const out: string[] = [];
  out.push(`# Silt SMB benchmark${QUICK ? ' (--quick)' : ''}`, '');
  out.push(`${started.toISOString()}; store ${process.env['BENCH_SMB_STORE'] ?? 'file: (temp dir)'}; extra smb.conf: ${OPTIONS.join('; ') || 'none'}; read-ahead ${process.env['BENCH_SMB_READ_AHEAD_KIB'] ?? 'default'}; load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${load1.map((x) => x.toFixed(2)).join(' ')} at end`, '');
  out.push('| workload (smbclient) | silt smb | plain-directory share | unit | Silt / plain |');
  out.push('|---|---:|---:|---|---:|');
  for (const [k, label, unit] of rows) {
    const a = results.silt[k] ?? NaN;
    const b = results.plain[k] ?? NaN;
    out.push(`| ${label} | ${fmt(a)} | ${fmt(b)} | ${unit} | ${(a / b).toFixed(2)} |`);
  }
  out.push('', 'CPU seconds (user + system) of each process per workload: smbclient / smbd / Silt FUSE server', '');
  out.push('| workload | silt smb | plain-directory share |', '|---|---|---|');
  for (const [k, label] of [['bigPut', `put ${BIG_MIB} MiB`], ['bigGet', `get ${BIG_MIB} MiB`], ['smallPut', `mput ${FILES} files`], ['smallGet', `mget ${FILES} files`]] as const) {
    const a = results.silt.cpu?.[k];
    const b = results.plain.cpu?.[k];
    if (!a || !b) continue;
    out.push(`| ${label} | ${a.smbclient.toFixed(1)} / ${a.smbd.toFixed(1)} / ${a.silt.toFixed(1)} (total ${(a.smbclient + a.smbd + a.silt).toFixed(1)}) | ${b.smbclient.toFixed(1)} / ${b.smbd.toFixed(1)} (total ${(b.smbclient + b.smbd).toFixed(1)}) |`);
  }
  const put = (results.silt.bigPutMBps ?? NaN) / (results.plain.bigPutMBps ?? NaN);
  const get = (results.silt.bigGetMBps ?? NaN) / (results.plain.bigGetMBps ?? NaN);
  out.push('', `Target (issue 6): large transfers >= 0.8x the plain share: put ${put.toFixed(3)} (${put >= 0.8 ? 'met' : 'NOT met'}), get ${get.toFixed(3)} (${get >= 0.8 ? 'met' : 'NOT met'})`);
  console.log(out.join('\n'));
  const resDir = path.join(repoRoot, 'bench', 'results');
  fs.mkdirSync(resDir, { recursive: true });
  const file = path.join(resDir, `smb-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ started: started.toISOString(), quick: QUICK, smbOptions: OPTIONS, readAheadKib: process.env['BENCH_SMB_READ_AHEAD_KIB'] ?? null, bigMiB: BIG_MIB, files: FILES, fileBytes: FILE_BYTES, store: process.env['BENCH_SMB_STORE'] ?? 'file', loadavgStart: load0, loadavgEnd: load1, results }, null, 2) + '\n',
  );
  console.log(`\nJSON: ${file}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
