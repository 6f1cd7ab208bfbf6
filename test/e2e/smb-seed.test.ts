/**
 * The seed's scenario end to end, through the real Debian smbd (`silt smb`) and a real SMB client
 * (libsmbclient, via Debian's python3-smbc): open(newfile, O_CREAT), write 10 MB, sleep 5 s (the
 * time-based flush must commit meanwhile: watched through the store's `log/` objects), close (->
 * durable commit, sync-on-close). Then the FUSE server is killed -9, as a crash right after the
 * close, and a fresh process opens the store, reads the 10 MB back (sha256 equal) and shows which
 * segment objects hold the file's data. Finally fsck. Run on the local store and on a real Swift
 * (scripts/swift-saio.sh). If Samba or Swift cannot be installed or started, the test fails with
 * the output.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { listAll, openStore, type ObjectStore } from '../../src/objstore/index.ts';
import '../../src/objstore/remote.ts';
import { debianPython, ensureSamba, existingUsers, removeUsersCreated, repoRoot, run, startSiltSmb, tempDir, type SiltSmb } from '../support/smb.ts';
import { ensureSwift, purgeInBackground, runPrefix, type LocalSwift } from '../support/swift.ts';

// Unique per run: concurrent runs on one machine must not share (or delete) each other's users.
const USER = { name: `silt_seed_${Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0')}`, password: 'seed-Pw1' };
const FILE = 'seed-newfile.bin';
const MB10 = 10 * 1000 * 1000;

const SWIFT_CONTAINER = 'silt-e2e-smb';

let dir: string;
let usersBefore: Set<string>;
let share: SiltSmb | undefined;
let swift: LocalSwift | undefined;
const swiftVolume = runPrefix('smbseed').slice(0, -1);

before(async () => {
  if (process.getuid?.() !== 0) throw new Error('the SMB tests need root (smbd, useradd, FUSE mounts)');
  await ensureSamba();
  usersBefore = await existingUsers([USER.name]);
  dir = tempDir('silt-smb-seed-');
  fs.chmodSync(dir, 0o755); // smbd enters the share as the Samba user
});

after(async () => {
  if (share) await share.stop();
  await removeUsersCreated([USER.name], usersBefore);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  if (swift) purgeInBackground(swift, [SWIFT_CONTAINER], `${swiftVolume}/`);
});

/** open / write 10 MB / sleep / close with libsmbclient; prints one line per step. */
const SEED_PY = String.raw`
import hashlib, os, sys, time, smbc
url, user, pw, size, wait = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
ctx = smbc.Context(auth_fn=lambda srv, shr, wg, un, p: ('WORKGROUP', user, pw))
seed = hashlib.sha256(b'silt seed').digest()
block = (seed * (1048576 // len(seed) + 1))[:1048576]
data = bytearray()
i = 0
while len(data) < size:
    data += hashlib.sha256(seed + i.to_bytes(4, 'little')).digest() + block[32:]
    i += 1
data = bytes(data[:size])
t0 = time.time()
f = ctx.open(url, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
print('OPENED %.3f' % (time.time() - t0), flush=True)
t0 = time.time()
for off in range(0, size, 1048576):
    f.write(data[off:off + 1048576])
print('WRITTEN %.3f %s' % (time.time() - t0, hashlib.sha256(data).hexdigest()), flush=True)
time.sleep(wait)
print('CLOSING', flush=True)
sys.stdin.readline()  # the test looks at the store first, then lets the close go ahead
t0 = time.time()
f.close()
print('CLOSED %.3f' % (time.time() - t0), flush=True)
`;

/** Run in a fresh process: open the store, read the file back, map its extents to objects. */
const READ_BACK = (root: string): string => `
import { createHash } from 'node:crypto';
import { listAll, openStore } from '${root}/src/objstore/index.ts';
import { openFileSystem, rootIdentity } from '${root}/src/fs/index.ts';
import { segmentKey } from '${root}/src/segment/index.ts';
const [storeUrl, volume, name] = process.argv.slice(2);
const store = await openStore(storeUrl);
const fsys = await openFileSystem({ store, volume });
const a = await fsys.lookup(rootIdentity, 1, name);
await fsys.open(rootIdentity, a.ino, 0);
const h = createHash('sha256');
let off = 0;
while (off < a.size) {
  const b = await fsys.read(rootIdentity, a.ino, off, 1 << 20);
  if (b.length === 0) break;
  h.update(b);
  off += b.length;
}
await fsys.release(a.ino, false);
const inode = await fsys.inodes.get(a.ino);
const bySegment = new Map();
for await (const [, e] of fsys.inodes.extentsOf(inode).entries()) {
  const k = segmentKey(fsys.volume.prefix, e.rec.seg);
  bySegment.set(k, (bySegment.get(k) ?? 0) + e.n);
}
const objects = [];
for await (const o of listAll(store, fsys.volume.prefix)) objects.push([o.key, o.size]);
await fsys.close();
await store.close();
console.log(JSON.stringify({ size: a.size, uid: a.uid, read: off, sha256: h.digest('hex'), bySegment: [...bySegment], objects }));
`;

async function keys(store: ObjectStore, prefix: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for await (const o of listAll(store, prefix)) m.set(o.key, o.size);
  return m;
}

interface Backend {
  name: string;
  store: string;
  volume: string;
  env: NodeJS.ProcessEnv;
}

async function seedScenario(t: TestContext, b: Backend): Promise<void> {
  const t0 = performance.now();
  share = await startSiltSmb({ dir: path.join(dir, b.name), share: 'seed', users: [USER], store: b.store, env: b.env, extraArgs: ['--volume', b.volume] });
  const startMs = performance.now() - t0;
  const store = await withEnv(b.env, () => openStore(b.store));
  const logPrefix = `${b.volume}/log/`;
  const segPrefix = `${b.volume}/seg/`;
  const events: Record<string, number> = {};
  const lines: string[] = [];
  let logAtWritten = new Map<string, number>();
  let logAtClosing = new Map<string, number>();
  let segAtClosing = new Map<string, number>();
  let firstCommitAfterWriteMs: number | undefined;
  let sha = '';
  let stepErr = '';
  try {
    const py = spawn(debianPython, ['-c', SEED_PY, `smb://127.0.0.1:${share.port}/seed/${FILE}`, USER.name, USER.password, String(MB10), '5'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    py.stderr.on('data', (d: Buffer) => (stepErr += d.toString()));
    const exited = new Promise<number>((resolve) => py.on('close', (c) => resolve(c ?? 1)));
    let buf = '';
    let watching: Promise<void> | undefined;
    let stopWatch = false;
    const onLine = (line: string): void => {
      lines.push(line);
      const [ev, secs, extra] = line.split(' ');
      events[ev!] = Number(secs ?? 0);
      if (ev === 'WRITTEN') {
        sha = extra!;
        const wroteAt = performance.now();
        // The client now holds the file open for 5 s: watch the store for a commit.
        watching = (async () => {
          logAtWritten = await keys(store, logPrefix);
          while (!stopWatch) {
            const now = await keys(store, logPrefix);
            if (firstCommitAfterWriteMs === undefined && [...now.keys()].some((k) => !logAtWritten.has(k))) {
              firstCommitAfterWriteMs = performance.now() - wroteAt;
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        })();
      }
    };
    py.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'CLOSING') {
          // Snapshot before close: what the time-based flush alone made durable.
          stopWatch = true;
          void (async () => {
            try {
              await watching;
              logAtClosing = await keys(store, logPrefix);
              segAtClosing = await keys(store, segPrefix);
            } finally {
              py.stdin.end('close\n');
            }
          })();
        }
        onLine(line);
      }
    });
    const code = await exited;
    stopWatch = true;
    await watching?.catch(() => {});
    assert.equal(code, 0, `the libsmbclient client failed:\n${stepErr}\n${lines.join('\n')}\n--- silt smb:\n${share.log()}`);
    assert.deepEqual(Object.keys(events), ['OPENED', 'WRITTEN', 'CLOSING', 'CLOSED'], lines.join('\n'));

    // During the 5 s the file was open, the time-based flush committed (new log/ objects) ...
    const newCommits = [...logAtClosing.keys()].filter((k) => !logAtWritten.has(k));
    assert.ok(newCommits.length >= 1, `no commit while the file was held open: log/ at WRITTEN ${[...logAtWritten.keys()]}, at CLOSING ${[...logAtClosing.keys()]}`);
    assert.ok(firstCommitAfterWriteMs !== undefined && firstCommitAfterWriteMs < 4000, `first commit after the write came after ${firstCommitAfterWriteMs} ms`);
    // ... and by then the 10 MB were in the store, before the close: checked below, once the read-back
    // says which objects hold the file's bytes (a commit during the write may carry some of them in a
    // log/ object made before WRITTEN).

    // A crash right after close returned: kill -9 the FUSE server. Sync-on-close made it durable.
    // silt smb notices, stops smbd, clears the dead mount and exits 2 naming the server's log.
    const serverPid = share.mountServerPid();
    assert.ok(serverPid, 'the mount server pid file');
    process.kill(serverPid, 'SIGKILL');
    const stopCode = await Promise.race([share.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    const log = share.log();
    if (stopCode === 'still running') await share.stop();
    share = undefined;
    assert.equal(stopCode, 2, `silt smb stops by itself when its mount server dies:\n${log}`);
    assert.match(log, /the Silt mount server \(pid \d+\) died/);
  } finally {
    await store.close();
  }

  // A fresh process opens the store and reads the file back.
  const script = path.join(dir, 'read-back.mts');
  fs.writeFileSync(script, READ_BACK(repoRoot));
  const env = { ...process.env, ...b.env };
  const r = await run(process.execPath, ['--import', 'tsx', script, b.store, b.volume, FILE], { cwd: repoRoot, env });
  assert.equal(r.code, 0, `read-back failed:\n${r.stderr}${r.stdout}`);
  const back = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    size: number;
    uid: number;
    read: number;
    sha256: string;
    bySegment: Array<[string, number]>;
    objects: Array<[string, number]>;
  };
  assert.equal(back.size, MB10);
  assert.equal(back.read, MB10);
  assert.equal(back.sha256, sha, 'sha256 of the 10 MB read back equals what the SMB client wrote');
  const uid = Number((await run('id', ['-u', USER.name])).stdout.trim());
  assert.equal(back.uid, uid, 'the file belongs to the Samba user');
  const objects = new Map(back.objects);
  let inSegments = 0;
  for (const [key, n] of back.bySegment) {
    assert.ok(key.startsWith(`${b.volume}/seg/`) || key.startsWith(`${b.volume}/log/`), key);
    assert.ok(/\/(seg|log)\/[0-9a-f]{16}$/.test(key), key);
    assert.ok(objects.has(key), `segment object ${key} exists`);
    inSegments += n;
  }
  assert.equal(inSegments, MB10, 'every byte of the file is an extent in a segment object');
  const beforeClose = back.bySegment.filter(([key]) => segAtClosing.has(key) || logAtClosing.has(key)).reduce((a, [, n]) => a + n, 0);
  assert.equal(beforeClose, MB10, `only ${beforeClose} bytes of the file were in objects that existed before the close: ${JSON.stringify(back.bySegment)}`);

  const fsck = await run(process.execPath, [path.join(repoRoot, 'bin', 'silt.mjs'), 'fsck', '--store', b.store, '--volume', b.volume], { env });
  assert.equal(fsck.code, 0, `fsck:\n${fsck.stdout}${fsck.stderr}`);

  t.diagnostic(`${b.name}: silt smb ready in ${(startMs / 1000).toFixed(1)} s; open ${events['OPENED']} s, write 10 MB ${events['WRITTEN']} s ` +
    `(${(MB10 / 1e6 / events['WRITTEN']!).toFixed(0)} MB/s), first commit ${firstCommitAfterWriteMs?.toFixed(0)} ms after the write, ` +
    `close ${events['CLOSED']} s`);
  t.diagnostic(`file data in: ${back.bySegment.map(([k, n]) => `${k} (${n} bytes of ${objects.get(k)})`).join(', ')}`);
  t.diagnostic(fsck.stdout.trim());
}

test('seed on the local store: SMB open(O_CREAT), write 10 MB, sleep 5 s (time-based flush commits), close (durable); a fresh process reads it back from segment objects', async (t) => {
  await seedScenario(t, { name: 'local', store: `file:${path.join(dir, 'local-store')}`, volume: 'default', env: {} });
});

test('seed on Swift: the same sequence, the segments are Swift objects', async (t) => {
  swift = await ensureSwift();
  await seedScenario(t, {
    name: 'swift',
    store: `${swift.storeUrl}?container=${SWIFT_CONTAINER}`,
    volume: swiftVolume,
    env: { SILT_SWIFT_USER: swift.user, SILT_SWIFT_KEY: swift.key },
  });
});

/** Run fn with extra environment variables set (the store URL reads credentials from env). */
async function withEnv<T>(env: NodeJS.ProcessEnv, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
