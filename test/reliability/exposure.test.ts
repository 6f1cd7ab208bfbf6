/**
 * Permissions and exposure, on the real `silt serve` process (RPC, object API, metrics and a FUSE
 * mount in one process), and hostile bytes on the RPC socket.
 *
 * Covered elsewhere and not repeated here: RPC authentication rules and 5,000 garbage/mutated
 * requests through the dispatcher (test/unit/rpc-dispatcher.test.ts), 2,500 hostile object API
 * requests, '..' and symlink escapes, forged tokens and signatures
 * (test/integration/objapi-hostile.test.ts), mode bits, groups, sticky directories, ownership and
 * setuid clearing for a non-root user on the real mount (test/posix/cases.ts 'permissions-nonroot',
 * run by test/e2e/fuse-posix.test.ts).
 *
 * Here:
 * - every listener binds to loopback when no host is given, and the documented defaults are
 *   loopback;
 * - requests without credentials are refused on every door (RPC data methods, Swift and S3
 *   dialects);
 * - the FUSE mount is usable by other users (allow_other) and the kernel enforces mode bits
 *   (default_permissions): nobody cannot truncate, touch, chmod, rename or remove root's files;
 *   new files belong to their creator; a symlink pointing outside the volume resolves in the
 *   reader's own namespace (as POSIX says) and its stored text is returned unchanged;
 * - thousands of malformed streams on the RPC TCP socket (garbage, frames with impossible or
 *   lying lengths, cut frames, data methods before authentication): the server answers or closes,
 *   never crashes, and keeps serving authenticated clients.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeFrame } from '../../src/rpc/protocol.ts';
import { Random } from '../../src/util/index.ts';
import { asNobody } from '../posix/util.ts';
import { ensureTools, forceUnmount, fuseUnavailable, q, repoRoot, sh, tempDir } from '../support/mount.ts';
import { TOKEN, startInProcess, type InProcess } from '../support/rpc-harness.ts';
import { prepareCli } from './crash-driver.ts';

const seed = process.env['SILT_SEED'] !== undefined ? Number(process.env['SILT_SEED']) : Math.floor(Math.random() * 2 ** 31);

interface Listener {
  host: string;
  port: number;
}

/** TCP sockets a process listens on (ss -ltnp). */
async function listeners(pid: number): Promise<Listener[]> {
  const out = (await sh('ss -ltnpH')).stdout;
  const found: Listener[] = [];
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const local = line.trim().split(/\s+/)[3] ?? '';
    const i = local.lastIndexOf(':');
    found.push({ host: local.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(local.slice(i + 1)) });
  }
  return found;
}

/** Send raw bytes, collect what comes back until the server closes or `ms` pass. */
function rawExchange(port: number, bytes: Buffer, ms: number): Promise<{ reply: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let reply = '';
    let closedByServer = false;
    const timer = setTimeout(() => sock.destroy(), ms);
    sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    sock.on('end', () => (closedByServer = true));
    sock.on('error', () => (closedByServer = true));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, closedByServer });
    });
    sock.write(bytes);
  });
}

describe('exposure: what listens where, who may do what', { skip: fuseUnavailable(), timeout: 300_000 }, () => {
  let tmp = '';
  let serve: ChildProcess | undefined;
  let log = '';
  let mnt = '';
  let ports: Listener[] = [];
  let cliArgv: string[] = [];

  before(async () => {
    await ensureTools();
    tmp = tempDir('silt-exposure-');
    mnt = path.join(tmp, 'mnt');
    fs.mkdirSync(mnt);
    const cli = await prepareCli(tmp, (l) => console.log(l));
    cliArgv = cli.argv;
    // No host anywhere: every listener must pick loopback by itself.
    serve = spawn(
      process.execPath,
      [...cli.argv, 'serve', '--store', `file:${path.join(tmp, 'store')}`, '--mkfs', '--rpc', ':0', '--http', ':0', '--metrics', ':0', '--mount', mnt, '--http-user', 'test:tester', '--http-key', 'testing'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SILT_TOKEN: TOKEN, SILT_RUN_DIR: path.join(tmp, 'run'), HOME: tmp } },
    );
    serve.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    serve.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 120_000;
    while ((ports = await listeners(serve.pid!)).length < 3 || (await sh(`grep -q " ${mnt} " /proc/self/mountinfo`)).code !== 0) {
      if (serve.exitCode !== null) throw new Error(`silt serve exited (${serve.exitCode}):\n${log}`);
      if (Date.now() > deadline) throw new Error(`silt serve not ready in 120 s (listening on ${JSON.stringify(ports)}):\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // The mount answers.
    for (let i = 0; i < 100 && (await sh(`stat -c %i ${q(mnt)}`)).stdout.trim() !== '1'; i++) await new Promise((r) => setTimeout(r, 200));
  });

  after(async () => {
    if (serve && serve.exitCode === null) {
      serve.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 3000));
      if (serve.exitCode === null) serve.kill('SIGKILL');
    }
    if (mnt) await forceUnmount(mnt);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('listeners bind to loopback unless told otherwise; the documented defaults are loopback', async () => {
    assert.ok(ports.length >= 3, `RPC, object API and metrics listen: ${JSON.stringify(ports)}`);
    for (const l of ports) assert.equal(l.host, '127.0.0.1', `a listener on ${l.host}:${l.port}`);
    const env = { ...process.env };
    delete env['SILT_RPC_LISTEN'];
    const help = (await sh(`${q(process.execPath)} ${cliArgv.map(q).join(' ')} serve --help`, { env })).stdout.replace(/\s+/g, ' ');
    assert.match(help, /--rpc <host:port> .{0,120}?\(default: "127\.0\.0\.1:\d+"\)/, help);
    assert.match(help, /--http \[host:port\] .{0,120}?\(default 127\.0\.0\.1:\d+;/, help);
  });

  test('requests without credentials are refused on every door', async () => {
    const byPort = async (probe: (port: number) => Promise<boolean>): Promise<number | undefined> => {
      for (const l of ports) if (await probe(l.port)) return l.port;
      return undefined;
    };
    const httpPort = await byPort(async (p) => (await fetch(`http://127.0.0.1:${p}/v1/AUTH_test/c/o`).catch(() => undefined))?.status === 401);
    assert.ok(httpPort, `the object API answers 401 without a token (ports ${JSON.stringify(ports)}):\n${log}`);
    // Swift dialect: no token, a made-up token; S3 dialect: unsigned, badly signed.
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/v1/AUTH_test/c/o`, { headers: { 'x-auth-token': 'AUTH_tkmadeup' } })).status, 401);
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/v1/AUTH_test/c/o`, { method: 'PUT', body: 'x' })).status, 401);
    for (const headers of [{} as Record<string, string>, { authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00' }]) {
      const s3 = await fetch(`http://127.0.0.1:${httpPort}/c/o`, { headers });
      assert.equal(s3.status, 403, `S3 ${JSON.stringify(headers)}`);
    }
    // RPC: every data method before authentication is -32001 EACCES.
    let sawRpc = false;
    for (const l of ports) {
      if (l.port === httpPort) continue;
      const { reply } = await rawExchange(l.port, Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcLookupPath', params: { mountId: 1, path: '/' } })}\n`), 1500);
      if (!reply.includes('jsonrpc')) continue;
      sawRpc = true;
      assert.match(reply, /"code":-32001/, reply);
      assert.match(reply, /EACCES/, reply);
      const mount = await rawExchange(l.port, Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcMount', params: { volume: 'default', token: 'wrong' } })}\n`), 1500);
      assert.match(mount.reply, /"code":-32001/, mount.reply);
      assert.ok(mount.closedByServer, 'a bad token closes the connection');
    }
    assert.ok(sawRpc, 'the RPC port answered');
    // Metrics carry no file data and no credentials; they are served without auth, on loopback only.
    let metrics = false;
    for (const l of ports) {
      const r = await fetch(`http://127.0.0.1:${l.port}/metrics`).catch(() => undefined);
      if (r?.status === 200 && (await r.text()).includes('silt_')) metrics = true;
    }
    assert.ok(metrics, 'metrics served');
  });

  test('a non-root user on the mount: allowed in (allow_other), held to mode bits and ownership', async () => {
    const p = (s: string): string => path.join(mnt, s);
    fs.writeFileSync(p('roots'), 'root data');
    fs.chmodSync(p('roots'), 0o644);
    fs.mkdirSync(p('shared'), { mode: 0o777 });
    fs.chmodSync(p('shared'), 0o777);
    fs.mkdirSync(p('locked'), { mode: 0o755 });
    fs.writeFileSync(p('locked/file'), 'x');
    fs.symlinkSync('/etc/hostname', p('outside'));
    fs.symlinkSync('../../../../../../etc/hostname', p('climb'));
    const ok = async (cmd: string): Promise<string> => {
      const r = await asNobody(cmd);
      assert.equal(r.code, 0, `as nobody this must work: ${cmd}\n${r.stderr}`);
      return r.stdout;
    };
    const no = async (cmd: string): Promise<void> => {
      const r = await asNobody(cmd);
      assert.notEqual(r.code, 0, `as nobody this must fail: ${cmd}`);
      assert.match(r.stderr, /Permission denied|Operation not permitted/, `${cmd}: ${r.stderr}`);
    };
    assert.match(await ok(`ls ${q(mnt)}`), /roots/);
    assert.equal(await ok(`cat ${q(p('roots'))}`), 'root data');
    await no(`truncate -s 0 ${q(p('roots'))}`);
    await no(`touch -d 2000-01-01 ${q(p('roots'))}`);
    await no(`chmod 666 ${q(p('roots'))}`);
    await no(`mv ${q(p('locked/file'))} ${q(p('shared/stolen'))}`);
    await no(`rm -f ${q(p('locked/file'))}`);
    await no(`ln -s x ${q(p('locked/new'))}`);
    await no(`mkdir ${q(p('locked/sub'))}`);
    // Created in a world-writable directory: owned by its creator.
    await ok(`echo mine > ${q(p('shared/mine'))}`);
    const st = fs.statSync(p('shared/mine'));
    assert.equal(st.uid, 65534);
    assert.equal(st.gid, 65534);
    // Symlinks: the stored text comes back unchanged, and the reader's kernel resolves it in the
    // reader's namespace (the volume is not a jail; nothing here lets it reach more than the
    // reader could anyway).
    assert.equal((await ok(`readlink ${q(p('outside'))}`)).trim(), '/etc/hostname');
    const hostname = fs.readFileSync('/etc/hostname', 'utf8');
    assert.equal(await ok(`cat ${q(p('outside'))}`), hostname);
    assert.equal(await ok(`cat ${q(p('climb'))}`), hostname);
    // Everything is still consistent (the server serves its own files only).
    assert.equal(fs.readFileSync(p('roots'), 'utf8'), 'root data');
  });
});

describe('RPC socket under hostile bytes', () => {
  let h: InProcess;
  before(async () => {
    h = await startInProcess();
  });
  after(async () => {
    await h?.close();
  });

  test(`2,000 malformed streams: the server answers or closes, never crashes, keeps serving (seed ${seed})`, async () => {
    const rnd = new Random(seed);
    const port = h.server.port;
    const good = (): Buffer => Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcMount', params: { volume: 'default', token: TOKEN } }) + '\n');
    const kinds: Record<string, number> = {};
    const streams: Array<() => Buffer> = [
      () => Buffer.from(rnd.bytes(1 + rnd.int(300))), // garbage
      () => {
        // A frame whose lengths lie (too long, too short, huge).
        const f = encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'RpcWrite', params: { mountId: 1, inode: 1, offset: 0 } }), Buffer.from(rnd.bytes(rnd.int(100))));
        const at = 1 + rnd.int(8);
        f[at] = rnd.int(256);
        return f;
      },
      () => encodeFrame(Buffer.from(rnd.bytes(rnd.int(200))).toString('latin1'), Buffer.from(rnd.bytes(rnd.int(50)))), // junk header
      () => encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'RpcRead', params: { mountId: 1, inode: 1, offset: 0, length: 10 } })).subarray(0, 1 + rnd.int(20)), // cut
      () => Buffer.concat([good(), encodeFrame('{', Buffer.alloc(rnd.int(10)))]), // authenticated, then a broken frame
      () => Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', id: 4, method: rnd.pick(['RpcRead', 'RpcWrite', 'RpcReaddir', 'RpcUnlink', 'RpcSnapShotCreate']), params: { mountId: rnd.int(5), inode: 1, name: 'x', offset: 0, length: 5 } })}\n`), // before auth
      () => Buffer.concat([Buffer.from([0]), Buffer.alloc(8, 0xff)]), // 4 GiB lengths
    ];
    const N = 2000;
    let closed = 0;
    let answered = 0;
    for (let i = 0; i < N; i += 40) {
      await Promise.all(
        Array.from({ length: Math.min(40, N - i) }, async () => {
          const k = rnd.int(streams.length);
          kinds[k] = (kinds[k] ?? 0) + 1;
          const { reply, closedByServer } = await rawExchange(port, streams[k]!(), 120);
          if (closedByServer) closed++;
          if (reply.length > 0) answered++;
          // Nothing unauthenticated ever gets data back.
          if (k === 5) assert.doesNotMatch(reply, /"result"/, `a data method before auth succeeded: ${reply}`);
        }),
      );
    }
    // Still serving an authenticated client.
    const { reply } = await rawExchange(port, Buffer.concat([good(), Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'RpcPing', params: {} })}\n`)]), 1000);
    assert.match(reply, /"mountId"/);
    assert.match(reply, /"id":9,"result"/);
    console.log(`# rpc socket fuzz: ${N} streams by kind ${JSON.stringify(kinds)}, ${answered} answered, ${closed} closed by the server (seed ${seed})`);
  });
});
