/**
 * `silt smb` with the real Debian smbd and the real smbclient: round trips, namespace operations,
 * a 1,000-file listing, a 1 GiB file, two users with different rights, Windows metadata in
 * xattrs, free space (statfs), byte-range locks (smbtorture's SMB2 lock cases, and SMB locks
 * against POSIX locks in Silt's lock table), and files crossing between SMB and the FUSE mount. One share serves every test
 * (starting one costs seconds); the last test stops it and checks the volume. If Samba cannot be
 * installed or smbd cannot start, the suite fails with the output.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  debianPython,
  ensureSamba,
  existingUsers,
  freePort,
  lsNames,
  patternBytes,
  removeUsersCreated,
  repoRoot,
  run,
  sh,
  startSiltSmb,
  tempDir,
  type SiltSmb,
} from '../support/smb.ts';

// Unique per run: concurrent runs on one machine must not share (or delete) each other's users.
const RUN = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0');
const A = { name: `silt_a_${RUN}`, password: 'a-Secret1' };
const B = { name: `silt_b_${RUN}`, password: 'b-Secret2', readOnly: true };
const LARGE = 1024 * 1024 * 1024;

let dir: string;
let local: string;
let usersBefore: Set<string>;
let share: SiltSmb;
let mnt: string;

/** Holds a POSIX write lock (fcntl F_SETLK through the FUSE mount) on FILE [START, START+LEN) until stdin closes. */
const LOCK_HOLDER_PY = String.raw`
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(sys.argv[3]), int(sys.argv[2]))
print('LOCKED', flush=True)
sys.stdin.read()
`;

/** Over SMB (libsmbclient): open URL for writing, write 100 bytes 'y' at each offset; one line per write. */
const SMB_WRITE_AT_PY = String.raw`
import os, sys, smbc
url, user, pw = sys.argv[1:4]
ctx = smbc.Context(auth_fn=lambda *a: ('WORKGROUP', user, pw))
f = ctx.open(url, os.O_WRONLY)
for off in map(int, sys.argv[4:]):
    f.seek(off)
    try:
        print('write at %d: %d' % (off, f.write(b'y' * 100)), flush=True)
    except Exception:
        print('write at %d: refused' % off, flush=True)
f.close()
`;

/**
 * Until STOP exists: keep every file of DIR open (through the FUSE mount) and ask F_GETLK for a
 * whole-file write lock on each, which Silt answers from its lock table; print each conflicting
 * lock seen as "NAME read|write START LEN".
 */
const LOCK_WATCH_PY = String.raw`
import fcntl, os, struct, sys, time
d, stop = sys.argv[1], sys.argv[2]
fds, seen = {}, set()
kinds = {fcntl.F_RDLCK: 'read', fcntl.F_WRLCK: 'write'}
while not os.path.exists(stop):
    try:
        names = os.listdir(d)
    except OSError:
        names = []
    for n in names:
        p = os.path.join(d, n)
        try:
            key = (n, os.stat(p).st_ino)
            if key not in fds:
                fds[key] = os.open(p, os.O_RDONLY)
        except OSError:
            pass
    for (n, _), fd in list(fds.items()):
        try:
            r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0))
        except OSError:
            continue
        t, _, start, length, _ = struct.unpack('hhqqi', r)
        if t != fcntl.F_UNLCK:
            seen.add('%s %s %d %d' % (n, kinds.get(t, t), start, length))
    time.sleep(0.001)
for s in sorted(seen):
    print(s)
`;

/** Exit 0 and no NT_STATUS error in the output (smbclient -c exits 0 after some failed commands). */
function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  const msg = `${what} failed:\n${r.stdout}${r.stderr}\n--- silt smb:\n${share.log().split('\n').slice(-30).join('\n')}`;
  assert.equal(r.code, 0, msg);
  assert.doesNotMatch(r.stdout + r.stderr, /NT_STATUS_\w+/, msg);
  return r.stdout;
}

function denied(r: { code: number; stdout: string; stderr: string }, status: RegExp, what: string): void {
  assert.match(r.stdout + r.stderr, status, `${what}: expected ${status}, got:\n${r.stdout}${r.stderr}`);
}

async function uid(name: string): Promise<number> {
  return Number((await run('id', ['-u', name])).stdout.trim());
}

before(async () => {
  if (process.getuid?.() !== 0) throw new Error('the SMB tests need root (smbd, useradd, FUSE mounts)');
  await ensureSamba();
  usersBefore = await existingUsers([A.name, B.name]);
  dir = tempDir('silt-smb-share-');
  fs.chmodSync(dir, 0o755); // smbd enters the share as the Samba users
  local = path.join(dir, 'local');
  fs.mkdirSync(local);
  share = await startSiltSmb({ dir, share: 'silt', users: [A, B] });
  mnt = share.mountpoint;
});

after(async () => {
  if (share && share.proc.exitCode === null) await share.stop();
  await removeUsersCreated([A.name, B.name], usersBefore);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('silt smb', () => {
  test('put/get round trips of several sizes are byte-identical (cmp), and files belong to the Samba user', async () => {
    const sizes = [0, 1, 4095, 65536, 1024 * 1024 + 13, 3_000_000];
    for (const [i, n] of sizes.entries()) fs.writeFileSync(path.join(local, `rt${i}`), patternBytes(n, i + 1));
    const puts = sizes.map((_, i) => `put rt${i}`).join('; ');
    const gets = sizes.map((_, i) => `get rt${i} rt${i}.back`).join('; ');
    ok(await share.smbclient(A.name, `lcd ${local}; ${puts}; ${gets}`), 'put/get');
    for (const i of sizes.keys()) {
      ok(await run('cmp', [path.join(local, `rt${i}`), path.join(local, `rt${i}.back`)]), `cmp rt${i}`);
      ok(await run('cmp', [path.join(local, `rt${i}`), path.join(mnt, `rt${i}`)]), `cmp rt${i} through the FUSE mount`);
    }
    const st = await fs.promises.stat(path.join(mnt, 'rt1'));
    assert.equal(st.uid, await uid(A.name), 'owned by the Samba user who wrote it');
    assert.equal(st.mode & 0o777, 0o644, 'create mask 0644');
  });

  test('mkdir, put into it, rename a file and a directory, del, rmdir', async () => {
    fs.writeFileSync(path.join(local, 'nsfile'), 'namespace\n');
    ok(await share.smbclient(A.name, `lcd ${local}; mkdir d1; mkdir d1\\sub; put nsfile d1\\sub\\x; rename d1\\sub\\x d1\\y; rename d1 d2`), 'mkdir/put/rename');
    const ls = ok(await share.smbclient(A.name, 'ls d2\\*'), 'ls d2');
    assert.deepEqual(lsNames(ls).sort(), ['sub', 'y']);
    assert.equal(await fs.promises.readFile(path.join(mnt, 'd2', 'y'), 'utf8'), 'namespace\n', 'the renamed file through the FUSE mount');
    assert.equal(fs.existsSync(path.join(mnt, 'd1')), false);
    ok(await share.smbclient(A.name, 'del d2\\y; rmdir d2\\sub; rmdir d2'), 'del/rmdir');
    assert.equal(fs.existsSync(path.join(mnt, 'd2')), false, 'gone through the FUSE mount too');
    denied(await share.smbclient(A.name, 'ls d2\\*'), /NT_STATUS_(OBJECT_NAME|OBJECT_PATH)_NOT_FOUND|NT_STATUS_NO_SUCH_FILE/, 'ls of the removed directory');
  });

  test('a listing of 1,000 files (created through the FUSE mount) over SMB', async (t) => {
    ok(await share.smbclient(A.name, 'mkdir many'), 'mkdir many');
    const d = path.join(mnt, 'many');
    const names = Array.from({ length: 1000 }, (_, i) => `file-${String(i).padStart(4, '0')}.txt`);
    const t0 = performance.now();
    for (let i = 0; i < names.length; i += 100) {
      await Promise.all(names.slice(i, i + 100).map((n) => fs.promises.writeFile(path.join(d, n), `${n}\n`)));
    }
    const createMs = performance.now() - t0;
    const ls = await share.smbclient(B.name, 'cd many; ls');
    const lsMs = ls.ms;
    const r = ok(ls, 'ls many');
    const listed = lsNames(r);
    assert.equal(listed.length, 1000, `listed ${listed.length} names`);
    assert.deepEqual(listed.sort(), names);
    // A small batch of creates over SMB too (mput), listed with the rest.
    const small = path.join(local, 'small');
    fs.mkdirSync(small);
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(small, `smb-${i}.txt`), `smb ${i}\n`);
    const m = await share.smbclient(A.name, `prompt OFF; lcd ${small}; cd many; mput smb-*.txt`);
    ok(m, 'mput');
    assert.equal((await fs.promises.readdir(d)).length, 1020, 'the mput files are there too');
    t.diagnostic(`1,000 files created through FUSE (sync-on-close, 100 at a time) in ${(createMs / 1000).toFixed(1)} s; smbclient ls of them ${(lsMs / 1000).toFixed(2)} s; 20 files by SMB mput ${(m.ms / 1000).toFixed(1)} s`);
  });

  test(`a ${LARGE / 1024 / 1024} MiB file: put, get, cmp`, async (t) => {
    const big = path.join(local, 'big');
    const fd = fs.openSync(big, 'w');
    const block = patternBytes(16 << 20, 100);
    for (let off = 0; off < LARGE; off += block.length) {
      block.writeUInt32LE(off / block.length, 0); // every block differs
      fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
    const put = await share.smbclient(A.name, `lcd ${local}; put big`, { timeoutMs: 600_000 });
    ok(put, 'put big');
    const get = await share.smbclient(A.name, `lcd ${local}; get big big.back`, { timeoutMs: 600_000 });
    ok(get, 'get big');
    ok(await run('cmp', [big, path.join(local, 'big.back')]), 'cmp big');
    assert.equal((await fs.promises.stat(path.join(mnt, 'big'))).size, LARGE);
    const mbps = (ms: number): string => (LARGE / 1e6 / (ms / 1000)).toFixed(0);
    t.diagnostic(`${LARGE / 1024 / 1024} MiB: put ${(put.ms / 1000).toFixed(1)} s (${mbps(put.ms)} MB/s), get ${(get.ms / 1000).toFixed(1)} s (${mbps(get.ms)} MB/s), smbclient process time included`);
    fs.rmSync(big);
    fs.rmSync(path.join(local, 'big.back'));
    // Deleting it over SMB frees the name (the data becomes dead space for the cleaner).
    ok(await share.smbclient(A.name, 'del big'), 'del big');
    assert.equal(fs.existsSync(path.join(mnt, 'big')), false);
  });

  test('two users with different rights: the read-only user and other users are denied, per share and per file', async () => {
    fs.writeFileSync(path.join(local, 'rights'), 'rights\n');
    ok(await share.smbclient(A.name, `lcd ${local}; put rights; mkdir adir; put rights adir\\inside`), 'A writes');
    // B may read ...
    ok(await share.smbclient(B.name, `lcd ${local}; get rights rights.b`), 'B reads');
    assert.equal(fs.readFileSync(path.join(local, 'rights.b'), 'utf8'), 'rights\n');
    // ... but not write, create, delete or rename.
    denied(await share.smbclient(B.name, `lcd ${local}; put rights b-new`), /NT_STATUS_ACCESS_DENIED|NT_STATUS_MEDIA_WRITE_PROTECTED/, 'B put');
    denied(await share.smbclient(B.name, 'mkdir bdir'), /NT_STATUS_ACCESS_DENIED|NT_STATUS_MEDIA_WRITE_PROTECTED/, 'B mkdir');
    denied(await share.smbclient(B.name, 'del rights'), /NT_STATUS_ACCESS_DENIED|NT_STATUS_MEDIA_WRITE_PROTECTED/, 'B del');
    denied(await share.smbclient(B.name, 'rename rights r2'), /NT_STATUS_ACCESS_DENIED|NT_STATUS_MEDIA_WRITE_PROTECTED/, 'B rename');
    assert.equal(fs.existsSync(path.join(mnt, 'b-new')), false);
    assert.equal(fs.existsSync(path.join(mnt, 'rights')), true);
    // Samba stored a Windows ACL for the new directory (security.NTACL, acl_xattr) ...
    const x = await run('getfattr', ['-n', 'security.NTACL', '-e', 'hex', path.join(mnt, 'adir')]);
    assert.match(x.stdout, /security\.NTACL=0x[0-9a-f]{64,}/, x.stdout + x.stderr);
    // ... derived from the mode bits; those stay authoritative: A's directory made private
    // (mode 0700, through the FUSE mount) is closed to B over SMB, and still open to A.
    await fs.promises.chmod(path.join(mnt, 'adir'), 0o700);
    denied(await share.smbclient(B.name, 'ls adir\\*'), /NT_STATUS_ACCESS_DENIED/, 'B lists A’s private directory');
    denied(await share.smbclient(B.name, `lcd ${local}; get adir\\inside x`), /NT_STATUS_ACCESS_DENIED/, 'B reads in A’s private directory');
    ok(await share.smbclient(A.name, 'ls adir\\*'), 'A still lists its directory');
    // Wrong passwords and unknown users are turned away.
    denied(await share.smbclient(`${A.name}%wrong`, 'ls'), /NT_STATUS_LOGON_FAILURE/, 'wrong password');
    denied(await share.smbclient('nobody_silt%pw', 'ls'), /NT_STATUS_LOGON_FAILURE|NT_STATUS_ACCESS_DENIED/, 'unknown user');
  });

  test('Windows metadata lives in xattrs: DOS attributes (user.DOSATTRIB), alternate data streams (user.DosStream.*)', async () => {
    fs.writeFileSync(path.join(local, 'meta'), 'main stream\n');
    fs.writeFileSync(path.join(local, 'ads'), 'alternate stream\n');
    ok(await share.smbclient(A.name, `lcd ${local}; put meta; put ads meta:extra; setmode meta +h`), 'put, stream, setmode');
    const info = ok(await share.smbclient(A.name, 'allinfo meta'), 'allinfo');
    assert.match(info, /attributes: .*H/, info);
    assert.match(info, /stream: \[:extra:\$DATA\], 17 bytes/, info);
    ok(await share.smbclient(A.name, `lcd ${local}; get meta:extra ads.back`), 'get the stream');
    assert.equal(fs.readFileSync(path.join(local, 'ads.back'), 'utf8'), 'alternate stream\n');
    const xattrs = ok(await run('getfattr', ['-d', '-m', '-', path.join(mnt, 'meta')]), 'getfattr');
    assert.match(xattrs, /user\.DOSATTRIB=/);
    assert.match(xattrs, /user\.DosStream\.extra:\$DATA=/);
    assert.equal(fs.readFileSync(path.join(mnt, 'meta'), 'utf8'), 'main stream\n', 'the main stream is the file');
  });

  test('free space and volume information: smbclient du and volume report the Silt volume (statfs of the mount)', async () => {
    const r = ok(await share.smbclient(A.name, 'du; volume'), 'du; volume');
    const m = /(\d+) blocks of size (\d+)\. (\d+) blocks available/.exec(r);
    assert.ok(m, r);
    const [blocks, size, avail] = [BigInt(m[1]!), BigInt(m[2]!), BigInt(m[3]!)];
    const st = await fs.promises.statfs(mnt, { bigint: true });
    assert.ok(st.blocks > 0n && st.bavail > 0n, 'the volume reports a size and free space');
    assert.equal(blocks * size, st.blocks * st.bsize, 'total bytes over SMB = statfs of the Silt mount');
    assert.equal(avail * size, st.bavail * st.bsize, 'available bytes over SMB = statfs of the Silt mount');
    assert.match(r, new RegExp(`Volume: \\|${share.share}\\| serial number 0x[0-9a-f]+`), r);
  });

  test('byte-range locks: a POSIX lock in Silt stops SMB reads and writes of its range; smbtorture SMB2 lock cases pass, and their locks are in Silt’s lock table', async (t) => {
    // 1. A local process holds a POSIX write lock on bytes 0-999 through the FUSE mount. smbd's
    //    strict locking asks the mount (F_OFD_GETLK -> Silt's lock table) before each read and write.
    const data = patternBytes(100_000, 90);
    fs.writeFileSync(path.join(local, 'locked'), data);
    ok(await share.smbclient(A.name, `lcd ${local}; put locked`), 'put locked');
    const holder = spawn(debianPython, ['-c', LOCK_HOLDER_PY, path.join(mnt, 'locked'), '0', '1000'], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const first = await new Promise<string>((resolve) => {
        let out = '';
        holder.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        holder.on('close', () => resolve(out.trim()));
      });
      assert.equal(first, 'LOCKED', 'the local lock holder');
      denied(await share.smbclient(B.name, `lcd ${local}; get locked locked.b`), /NT_STATUS_FILE_LOCK_CONFLICT/, 'SMB read of a locked range');
      const w = await run(debianPython, ['-c', SMB_WRITE_AT_PY, `smb://127.0.0.1:${share.port}/${share.share}/locked`, A.name, A.password, '0', '50000']);
      assert.equal(w.code, 0, w.stderr);
      assert.deepEqual(w.stdout.trim().split('\n'), ['write at 0: refused', 'write at 50000: 100'], 'SMB write inside the locked range refused, outside it done');
    } finally {
      holder.stdin.end();
      await new Promise((r) => holder.once('close', r));
    }
    // Released (the holder exited): the same read goes through and sees the one write that passed.
    ok(await share.smbclient(B.name, `lcd ${local}; get locked locked.b`), 'SMB read after the unlock');
    const expect = Buffer.from(data);
    expect.fill(0x79, 50000, 50100);
    assert.ok(fs.readFileSync(path.join(local, 'locked.b')).equals(expect), 'bytes 0-99 untouched, 50000-50099 written');

    // 2. smbtorture's SMB2 lock cases (two handles, two sessions, shared/exclusive, overlap,
    //    pending locks, cancel) on the Silt share, while a local process watches the files they
    //    lock through the FUSE mount with F_GETLK: smbd's locks (F_OFD_SETLK) show up in Silt's table.
    const cases = ['rw-exclusive', 'rw-shared', 'contend', 'overlap', 'async', 'cancel'];
    const lockDir = path.join(mnt, 'testlock');
    let seen = '';
    let torture: Awaited<ReturnType<typeof run>> | undefined;
    const watcherStop = path.join(dir, 'watch-stop');
    for (let attempt = 1; attempt <= 3 && !seen; attempt++) {
      fs.rmSync(watcherStop, { force: true });
      const watcher = run(debianPython, ['-c', LOCK_WATCH_PY, lockDir, watcherStop]);
      torture = await run('smbtorture', [`//127.0.0.1/${share.share}`, '-p', String(share.port), '-U', `${A.name}%${A.password}`, ...cases.map((c) => `smb2.lock.${c}`)], {
        timeoutMs: 120_000,
      });
      fs.writeFileSync(watcherStop, '');
      const wr = await watcher;
      seen = wr.stdout.trim();
      const results = torture.stdout.split('\n').filter((l) => /^(success|failure|error|skip): /.test(l));
      assert.deepEqual(results, cases.map((c) => `success: ${c}`), `smbtorture (attempt ${attempt}):\n${torture.stdout.slice(-3000)}${torture.stderr}`);
      t.diagnostic(`smbtorture smb2.lock.{${cases.join(',')}} passed in ${(torture.ms / 1000).toFixed(1)} s; locks seen in Silt's table by F_GETLK: ${seen.split('\n').filter(Boolean).join(', ') || 'none'} (attempt ${attempt})`);
    }
    assert.ok(seen.length > 0, `no SMB lock was ever seen through F_GETLK on the mount in 3 smbtorture runs:\n${torture?.stdout.slice(-2000)}`);
    assert.match(seen, /\.txt (read|write) \d+ \d+/);
  });

  test('a file written over SMB is read through the FUSE mount, and the other way round', async () => {
    const data = patternBytes(2_500_000, 77);
    fs.writeFileSync(path.join(local, 'to-fuse'), data);
    ok(await share.smbclient(A.name, `lcd ${local}; put to-fuse`), 'SMB put');
    assert.ok(Buffer.from(await fs.promises.readFile(path.join(mnt, 'to-fuse'))).equals(data), 'FUSE reads what SMB wrote');

    const back = patternBytes(1_234_567, 78);
    await fs.promises.writeFile(path.join(mnt, 'from-fuse'), back);
    await fs.promises.chmod(path.join(mnt, 'from-fuse'), 0o644);
    ok(await share.smbclient(B.name, `lcd ${local}; get from-fuse from-fuse.back`), 'SMB get');
    assert.ok(fs.readFileSync(path.join(local, 'from-fuse.back')).equals(back), 'SMB reads what FUSE wrote');

    // A change through FUSE is seen over SMB (rename, append).
    await fs.promises.rename(path.join(mnt, 'to-fuse'), path.join(mnt, 'renamed-by-fuse'));
    await fs.promises.appendFile(path.join(mnt, 'renamed-by-fuse'), 'tail');
    ok(await share.smbclient(A.name, `lcd ${local}; get renamed-by-fuse rbf.back`), 'SMB get after FUSE rename');
    assert.ok(fs.readFileSync(path.join(local, 'rbf.back')).equals(Buffer.concat([data, Buffer.from('tail')])));
    denied(await share.smbclient(A.name, 'allinfo to-fuse'), /NT_STATUS_OBJECT_NAME_NOT_FOUND/, 'old name');
  });

  test('one clear line and exit 2, with nothing set up, for: port in use, missing VFS module, an unreachable share', async () => {
    const closed = path.join(dir, 'closed');
    fs.mkdirSync(closed, { mode: 0o700 });
    const silt = (state: string, args: string[]): ReturnType<typeof run> =>
      run(process.execPath, [path.join(repoRoot, 'bin', 'silt.mjs'), 'smb', '--store', `file:${path.join(dir, 'err-store')}`, '--mkfs', '--share', 'x', '--listen', '127.0.0.1', '--state', state, ...args]);
    const other = path.join(dir, 'err-state');
    const free = String(await freePort());
    const [port, vfs, unreachable] = await Promise.all([
      silt(other, ['--port', String(share.port), '--user', `${A.name}:x`]),
      silt(other, ['--port', free, '--user', `${A.name}:x`, '--vfs-objects', 'streams_xattr no_such_module']),
      silt(path.join(closed, 'state'), ['--port', free, '--user', `${A.name}:x`]),
    ]);
    const cases: Array<[string, Awaited<ReturnType<typeof run>>, RegExp]> = [
      ['port in use', port, new RegExp(`port ${share.port} on 127\\.0\\.0\\.1 is in use`)],
      ['missing VFS module', vfs, /cannot load the VFS module no_such_module: .*samba-vfs-modules/],
      ['unreachable', unreachable, new RegExp(`${closed} is mode 0700`)],
    ];
    for (const [what, r, re] of cases) {
      assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, re, what);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line:\n${r.stderr}`);
    }
    assert.equal(fs.existsSync(path.join(dir, 'err-store')), false, 'no store was created');
    assert.equal(fs.existsSync(other), false, 'no state directory was created');
    assert.deepEqual(fs.readdirSync(closed), [], 'nothing created under the unreachable directory');
    assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(closed, 'state', 'mnt')), false);
  });

  test('stop: SIGTERM stops smbd, commits and unmounts; the volume is clean and holds the files', async () => {
    const pid = share.proc.pid!;
    const code = await share.stop();
    assert.equal(code, 0, share.log());
    assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `), false, 'unmounted');
    const left = await sh(`ps -eo pid,ppid,comm | awk '$3 ~ /smbd|samba-dcerpcd|rpcd/'`);
    for (const line of left.stdout.trim().split('\n').filter(Boolean)) {
      const [p] = line.trim().split(/\s+/);
      const cmd = await sh(`tr '\\0' ' ' < /proc/${p}/cmdline`);
      assert.ok(!cmd.stdout.includes(share.stateDir), `a Samba process of this share is still running: ${cmd.stdout}`);
    }
    assert.ok(pid > 0);
    const fsck = await run(process.execPath, [path.join(repoRoot, 'bin', 'silt.mjs'), 'fsck', '--store', share.store]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    assert.match(fsck.stdout, /clean/);
  });
});
