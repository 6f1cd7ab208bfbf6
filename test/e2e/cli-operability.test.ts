/**
 * Operability through the real `silt` command (node bin/silt.mjs): Prometheus metrics after a
 * FUSE workload and an RPC workload (counters moved by exactly the right amounts), `silt stat
 * --json` against a volume whose contents the test made, the user errors and their messages
 * (unreachable store, bad credentials, missing volume, mountpoint busy / not empty, no /dev/fuse,
 * no permission, port in use), configuration precedence and validation, --version and --help.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { RpcClient } from '../../src/rpc/index.ts';
import { ensureSwift, type LocalSwift } from '../support/swift.ts';

const silt = resolve(import.meta.dirname, '../../bin/silt.mjs');
const root = { uid: 0, gid: 0, groups: [] };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir = '';
let baseEnv: NodeJS.ProcessEnv = {};

/** Run the CLI; never throws on a non-zero exit (the exit code is part of what is checked). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Run> {
  return new Promise((res) => {
    execFile(process.execPath, [silt, ...args], { env: { ...baseEnv, ...env }, cwd: cwd ?? dir, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Samples of the Prometheus text format: "name{labels}" -> value. */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(r.status, 200);
  return parseMetrics(await r.text());
}

const delta = (a: Map<string, number>, b: Map<string, number>, k: string): number => (b.get(k) ?? 0) - (a.get(k) ?? 0);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'silt-ops-'));
  baseEnv = {
    PATH: process.env['PATH'],
    HOME: dir, // no ~/.config/silt/config.json of the machine's leaks in
    SILT_TSX_IMPORT: process.env['SILT_TSX_IMPORT'],
    SILT_RUN_DIR: join(dir, 'run'),
    // No lease heartbeat PUT during the measured workload.
    SILT_LEASE_INTERVAL_MS: '600000',
  };
  for (const k of Object.keys(baseEnv)) if (baseEnv[k] === undefined) delete baseEnv[k];
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('silt runs the compiled build when it is current and the sources otherwise; both say the same', async () => {
  // npm ci builds dist/ (the prepare script); a checkout edited since runs src/ through tsx.
  const built = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../dist/BUILD.json'), 'utf8')) as { sourcesNewestMtimeMs: number };
  assert.ok(built.sourcesNewestMtimeMs > 0, 'dist/BUILD.json stamps the build');
  const [compiled, sources] = await Promise.all([cli(['mount', '--help']), cli(['mount', '--help'], { SILT_RUN_SOURCES: '1' })]);
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.equal(sources.code, 0, sources.stderr);
  assert.equal(compiled.stdout, sources.stdout);
});

test('silt --version and --help of every command (with examples); docs/CONFIG.md matches the reference', async () => {
  const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
  const [version, help, mountHelp, ref] = await Promise.all([cli(['--version']), cli(['--help']), cli(['mount', '--help']), cli(['config', 'reference'])]);
  assert.equal(version.stdout.trim(), pkg.version);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: silt \[options\] \[command\]/);
  assert.match(help.stdout, /Examples:\n {2}silt mkfs/);
  assert.equal(mountHelp.code, 0);
  assert.match(mountHelp.stdout, /^Usage: silt mount/);
  assert.match(mountHelp.stdout, /Limits and timeouts:[\s\S]*--cache-bytes-max <bytes>/);
  assert.match(mountHelp.stdout, /\nExamples:\n {2}silt mount /);
  const commandsSection = /\nCommands:\n([\s\S]*?)\n\n/.exec(help.stdout)?.[1] ?? '';
  const listed = [...commandsSection.matchAll(/^ {2}([a-z]+)(?:\|[a-z]+)? /gm)].map((m) => m[1]!).filter((c) => c !== 'help');

  // Every command's help, read from the same command tree in this process (one CLI start per
  // command would cost ~2 s of CPU each).
  process.env['SILT_CLI_NO_PARSE'] = '1';
  const { program } = (await import('../../src/cli/main.ts')) as { program: import('commander').Command };
  delete process.env['SILT_CLI_NO_PARSE'];
  assert.deepEqual(program.commands.map((c) => c.name()), listed, 'silt --help lists every command');
  for (const c of ['mkfs', 'fsck', 'stat', 'gc', 'snapshot', 'mount', 'umount', 'serve', 'smb', 'config']) assert.ok(listed.includes(c), `silt --help lists ${c}`);
  for (const cmd of program.commands) {
    let text = '';
    cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
    cmd.outputHelp();
    assert.match(text, new RegExp(`^Usage: silt ${cmd.name()}`, 'm'));
    assert.match(text, /\nExamples?:\n {2}\S/, `silt ${cmd.name()} --help shows an example`);
    assert.match(text, /--config <file>/, `silt ${cmd.name()} takes --config`);
    assert.match(text, /--log-level <level>/, `silt ${cmd.name()} takes --log-level`);
    assert.match(text, /--log-format <format>/, `silt ${cmd.name()} takes --log-format`);
    if (['mount', 'serve'].includes(cmd.name())) assert.match(text, /--metrics <host:port>/, `silt ${cmd.name()} takes --metrics`);
  }
  // docs/CONFIG.md carries the reference the CLI generates (every key, flag, env var and default).
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/CONFIG.md'), 'utf8');
  const inDoc = /<!-- BEGIN silt config reference -->\n([\s\S]*)<!-- END silt config reference -->/.exec(doc)?.[1];
  assert.equal(inDoc, ref.stdout, 'docs/CONFIG.md is out of date: run `node bin/silt.mjs config reference` and paste it between the markers');
});

test('configuration: flag > SILT_* > file section > file top level > default; validation names file, key and expectation', async () => {
  const cfg = join(dir, 'silt.json');
  writeFileSync(cfg, JSON.stringify({ volume: 'fromfile', stat: { store: 'file:/from-section' }, mount: { cacheBytesMax: '128MiB' } }));
  try {
    await configCases(cfg);
  } finally {
    rmSync(cfg, { force: true });
  }
});

async function configCases(cfg: string): Promise<void> {
  const show = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, { value: unknown; source: string }>> => {
    const r = await cli(['config', 'show', ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { settings: Record<string, { value: unknown; source: string }> }).settings;
  };
  const store = `file:${join(dir, 'cfgstore')}`;
  const [fromFile, fromEnv, made, secrets] = await Promise.all([
    show(['stat']), // ./silt.json in the working directory
    show(['mount', '--config', cfg], { SILT_VOLUME: 'fromenv', SILT_CACHE_BYTES_MAX: '2MiB' }),
    cli(['mkfs', '--store', store, '--volume', 'fromfile']),
    cli(['config', 'show', 'serve'], { SILT_HTTP_USER: 'ops', SILT_HTTP_KEY: 'hunter2-secret', SILT_TOKEN: 'tok-secret' }),
  ]);
  // Secrets are never printed, only that they are set.
  assert.equal(secrets.code, 0, secrets.stderr);
  assert.doesNotMatch(secrets.stdout, /hunter2-secret|tok-secret/);
  assert.equal((JSON.parse(secrets.stdout) as { settings: Record<string, { value: unknown }> }).settings['httpKey']?.value, '(set, hidden)');
  assert.equal(made.code, 0, made.stderr);
  assert.deepEqual(fromFile['volume'], { value: 'fromfile', source: 'config', from: `${cfg}: volume` });
  assert.deepEqual(fromFile['store'], { value: 'file:/from-section', source: 'config', from: `${cfg}: stat.store` });
  assert.deepEqual(fromEnv['volume'], { value: 'fromenv', source: 'env', from: 'SILT_VOLUME' });
  assert.deepEqual(fromEnv['cacheBytesMax'], { value: 2 * 2 ** 20, source: 'env', from: 'SILT_CACHE_BYTES_MAX' });

  // A flag beats all, through a real command: stat reads the flag's store, not the file's.
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ logLevel: 'loud', mount: { flushIntervalMs: -5, metrcis: '127.0.0.1:1' } }));
  const [st, ok, r1, r3] = await Promise.all([
    cli(['stat', '--store', store, '--json'], { SILT_VOLUME: 'nope' }),
    cli(['stat', '--store', store, '--json']),
    cli(['stat', '--config', bad]),
    cli(['stat', '--store-retry-attempts', '99'], { SILT_CONFIG: join(dir, 'missing.json') }),
  ]);
  assert.equal(st.code, 2);
  assert.match(st.stderr, /volume 'nope' does not exist/, 'SILT_VOLUME beats the file');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { volume: string }).volume, 'fromfile');

  assert.equal(r1.code, 2);
  assert.equal(
    r1.stderr,
    `silt: 3 problems in the settings:\n  ${bad}: logLevel: expected one of debug, info, warn, error, got "loud"\n` +
      `  ${bad}: mount.flushIntervalMs: expected a whole number from 0 to 3600000 (ms), got -5\n` +
      `  ${bad}: mount.metrcis: silt mount has no setting "metrcis" (did you mean "metrics"?)\n`,
  );
  // The configuration file is found before flags are checked: a missing named file is the first problem.
  assert.match(r3.stderr, /missing\.json \(from SILT_CONFIG\) does not exist/);
}

test('errors name the fix: unreachable store, bad credentials, missing volume, no /dev/fuse, no permission', async () => {
  const swift: LocalSwift = await ensureSwift();
  const store = `file:${join(dir, 'errs')}`;
  assert.equal((await cli(['mkfs', '--store', store])).code, 0);
  const mp = join(dir, 'errs-mnt');
  mkdirSync(mp);
  const creds = { SILT_SWIFT_USER: swift.user, SILT_SWIFT_KEY: swift.key };
  const [unreachable, badKey, badS3, missing, missingStore, noFuse, nobody] = await Promise.all([
    cli(['stat', '--store', 'swift+http://127.0.0.1:1/auth/v1.0', '--store-retry-attempts', '1'], creds),
    cli(['stat', '--store', swift.storeUrl], { ...creds, SILT_SWIFT_KEY: 'wrong' }),
    cli(['stat', '--store', `${swift.s3Base}/silt-ops`], { AWS_ACCESS_KEY_ID: swift.user, AWS_SECRET_ACCESS_KEY: 'wrong' }),
    cli(['stat', '--store', store, '--volume', 'nosuch']),
    cli(['stat', '--store', `file:${join(dir, 'no-such-dir')}`]),
    // A private mount namespace whose /dev is empty: no FUSE device.
    new Promise<Run>((res) =>
      execFile('unshare', ['-m', 'sh', '-c', `mount -t tmpfs tmpfs /dev && exec "${process.execPath}" "${silt}" mount --store ${store} ${mp}`], { env: baseEnv }, (err, stdout, stderr) =>
        res({ code: err ? Number(err.code) : 0, stdout, stderr }),
      ),
    ),
    // An unprivileged user: the device or mount(8) refuses; the message says to run as root.
    new Promise<Run>((res) =>
      execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, silt, 'mount', '--store', store, mp], { env: { ...baseEnv, HOME: '/tmp' } }, (err, stdout, stderr) =>
        res({ code: err ? Number(err.code) : 0, stdout, stderr }),
      ),
    ),
  ]);
  assert.equal(unreachable.code, 2);
  assert.match(unreachable.stderr, /^silt: cannot open store swift\+http:\/\/127\.0\.0\.1:1\/auth\/v1\.0: cannot reach the object store at 127\.0\.0\.1:1: connection refused \(ECONNREFUSED\); start the store, or fix the host and port in --store/);
  assert.equal(badKey.code, 2);
  assert.match(badKey.stderr, /the object store refused the credentials: .*HTTP 401.*; check SILT_SWIFT_USER and SILT_SWIFT_KEY/);
  assert.match(badS3.stderr, /the object store refused the credentials: .*HTTP 403.*; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  assert.match(missing.stderr, /^silt: stat nosuch: volume 'nosuch' does not exist in local directory .*: create it with 'silt mkfs --volume nosuch' \(or mount\/serve with --mkfs\)/);
  assert.match(missingStore.stderr, /no store at .*no-such-dir: create it with 'silt mkfs', or fix the path in --store/);
  assert.equal(noFuse.code, 2);
  assert.match(noFuse.stderr, /^silt: no \/dev\/fuse: this machine has no FUSE device\. Install fuse3 and load the module \(modprobe fuse\)/);

  assert.equal(nobody.code, 2, nobody.stderr);
  assert.match(nobody.stderr, /^silt: no permission to (open \/dev\/fuse \(EACCES\)|mount): .*run (silt mount )?(it )?as root/);
});

test('metrics after a FUSE workload move by the right amounts; stat --json matches the volume; busy, non-empty, port in use', async () => {
  const store = `file:${join(dir, 'vol')}`;
  const mp = join(dir, 'mnt');
  mkdirSync(mp);
  const port = await freePort();
  const N = 12;
  const SIZE = 4096;
  const m = await cli(['mount', '--store', store, '--mkfs', '--background', '--metrics', `127.0.0.1:${port}`, '--flush-interval-ms', '0', '--gc-interval-ms', '0', mp]);
  assert.equal(m.code, 0, m.stderr);
  try {
    const before = await scrape(port);
    for (let i = 0; i < N; i++) {
      const fd = openSync(join(mp, `f${i}`), 'w');
      writeSync(fd, Buffer.alloc(SIZE, i));
      fsyncSync(fd); // one durable commit, one PUT
      closeSync(fd);
    }
    const afterW = await scrape(port);
    const fuse = (op: string, outcome = 'ok'): number => delta(before, afterW, `silt_ops_total{frontend="fuse",op="${op}",outcome="${outcome}"}`);
    assert.equal(fuse('create'), N, 'one FUSE CREATE per file');
    assert.equal(fuse('write'), N, 'one FUSE WRITE per file');
    assert.equal(fuse('fsync'), N, 'one FUSE FSYNC per file');
    assert.equal(delta(before, afterW, 'silt_op_seconds_count{frontend="fuse",op="create"}'), N, 'latency histogram counts each CREATE');
    assert.equal(delta(before, afterW, 'silt_commits_total'), N, 'one commit per fsync');
    assert.equal(delta(before, afterW, 'silt_store_requests_total{verb="put",outcome="ok"}'), N, 'one object-store PUT per commit');
    assert.equal(delta(before, afterW, 'silt_store_request_seconds_count{verb="put"}'), N);
    assert.ok(delta(before, afterW, 'silt_store_bytes_total{direction="put"}') >= N * SIZE, 'the files\' bytes went to the store');
    assert.equal(afterW.get('silt_dirty_bytes'), 0, 'nothing dirty after fsync');
    const age = afterW.get('silt_checkpoint_age_seconds');
    assert.ok(age !== undefined && age >= 0 && age < 60, `checkpoint age ${age}`);
    assert.ok((afterW.get('silt_commit_sequence') ?? 0) >= N + 1);
    const inodeHits = afterW.get('silt_cache_hit_ratio{cache="inode"}');
    assert.ok(inodeHits !== undefined && inodeHits > 0 && inodeHits <= 1, `inode cache hit ratio ${inodeHits}`);
    for (const name of afterW.keys()) assert.ok(name.startsWith('silt_'), `metric ${name} is prefixed silt_`);

    // While mounted: stat shows the owner; a second mount of the same directory is refused as busy;
    // a second metrics listener on the same port is refused as in use.
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'keep.txt'), 'x');
    const [live, busy, inUse, nonEmpty] = await Promise.all([
      cli(['stat', '--store', store, '--json']),
      cli(['mount', '--store', store, mp]),
      cli(['mount', '--store', `file:${join(dir, 'vol2')}`, '--mkfs', '--metrics', `127.0.0.1:${port}`, join(dir, 'mnt2')]),
      cli(['mount', '--store', `file:${join(dir, 'vol3')}`, '--mkfs', other]),
    ]);
    assert.equal(live.code, 0, live.stderr);
    const owner = (JSON.parse(live.stdout) as { owner: { state: string; role: string; pid: number } | 'unknown' }).owner;
    assert.notEqual(owner, 'unknown');
    if (owner !== 'unknown') {
      assert.equal(owner.state, 'live');
      assert.equal(owner.role, 'silt mount');
    }
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, new RegExp(`^silt: ${mp} is already mounted \\(see 'silt umount ${mp}'\\)`));
    assert.equal(inUse.code, 2);
    assert.match(inUse.stderr, new RegExp(`^silt: cannot serve metrics on 127\\.0\\.0\\.1:${port}: the address is in use \\(EADDRINUSE\\): stop what listens there, or choose another port`));
    assert.equal(nonEmpty.code, 2);
    assert.match(nonEmpty.stderr, /^silt: mountpoint .*other is not empty \(it holds keep\.txt\): mount on an empty directory, or pass --non-empty/);
  } finally {
    const u = await cli(['umount', mp]);
    assert.equal(u.code, 0, u.stderr);
  }
  const snap = await cli(['snapshot', 'create', 'nightly', '--store', store, '--force']);
  assert.equal(snap.code, 0, snap.stderr);
  const [st, human] = await Promise.all([cli(['stat', '--store', store, '--json']), cli(['stat', '--store', store])]);
  assert.equal(st.code, 0, st.stderr);
  const s = JSON.parse(st.stdout) as Record<string, unknown>;
  assert.equal(s['volume'], 'default');
  assert.match(String(s['store']), /^local directory /);
  assert.equal(s['files'], N);
  assert.equal(s['directories'], 1);
  assert.equal(s['inodes'], N + 1);
  assert.equal(s['fileBytes'], N * SIZE);
  assert.ok((s['commitSeq'] as number) >= N + 2, 'mkfs, N fsyncs, the snapshot');
  assert.ok((s['commitAgeMs'] as number) >= 0 && (s['commitAgeMs'] as number) < 120_000);
  assert.ok((s['liveBytes'] as number) >= N * SIZE);
  assert.ok((s['storedBytes'] as number) >= (s['liveBytes'] as number));
  assert.ok((s['segments'] as number) >= 1);
  assert.deepEqual((s['snapshots'] as Array<{ name: string }>).map((x) => x.name), ['nightly']);
  const owner = s['owner'] as { state: string } | 'unknown';
  assert.ok(owner === 'unknown' || owner.state === 'released', `after umount the lease is released, not ${JSON.stringify(owner)}`);
  assert.match(human.stdout, new RegExp(`^inodes +${N + 1}: ${N} files, 1 directories, 0 symlinks$`, 'm'));
  assert.match(human.stdout, /^snapshots +1: nightly \(commit \d+\)$/m);
  assert.match(human.stdout, /^owner +/m);
});

test('silt serve --metrics: RPC calls by method with latency; an RPC port in use is refused clearly', async () => {
  const store = `file:${join(dir, 'served')}`;
  const mport = await freePort();
  const env = { ...baseEnv, SILT_TOKEN: 'ops-token' };
  const server = spawn(process.execPath, [silt, 'serve', '--store', store, '--mkfs', '--rpc', '127.0.0.1:0', '--metrics', `127.0.0.1:${mport}`, '--gc-interval-ms', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  server.stdout.on('data', (b: Buffer) => (out += b.toString()));
  server.stderr.on('data', (b: Buffer) => (out += b.toString()));
  try {
    for (let i = 0; i < 600 && !/serving volume/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    const addr = /over JSON-RPC on (\S+)/.exec(out)?.[1];
    assert.ok(addr, `silt serve did not start:\n${out}`);
    const before = await scrape(mport);
    const c = await RpcClient.connect({ address: addr, token: 'ops-token' });
    const K = 5;
    for (let i = 0; i < K; i++) {
      const a = await c.create(root, c.rootInode, `r${i}`, 0o644);
      await c.write(root, a.ino, 0, Buffer.alloc(100, i));
    }
    await c.close();
    const after = await scrape(mport);
    assert.equal(delta(before, after, 'silt_ops_total{frontend="rpc",op="RpcCreate",outcome="ok"}'), K);
    assert.equal(delta(before, after, 'silt_ops_total{frontend="rpc",op="RpcWrite",outcome="ok"}'), K);
    assert.equal(delta(before, after, 'silt_op_seconds_count{frontend="rpc",op="RpcCreate"}'), K);
    assert.ok((after.get('silt_dirty_bytes') ?? 0) >= K * 100 || delta(before, after, 'silt_commits_total') > 0, 'written bytes are dirty until a commit');

    // Another server on the same RPC port: the message says the address is in use.
    const rpcPort = addr.split(':').pop()!;
    const second = await cli(['serve', '--store', `file:${join(dir, 'served2')}`, '--mkfs', '--rpc', `127.0.0.1:${rpcPort}`], { SILT_TOKEN: 'x' });
    assert.equal(second.code, 2);
    assert.match(second.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${rpcPort}: address in use`));
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
});
