/**
 * The TCP transport: framing (oversized, split and pipelined lines, CRLF, invalid UTF-8),
 * garbage on the socket, a bad token closing the connection, half-closed clients, timeouts
 * (authentication, partial line, idle), the in-flight bound, the connection bound, and 200
 * concurrent clients on one volume (fsck clean afterwards).
 */
import { test } from 'node:test';
import * as net from 'node:net';
import assert from 'node:assert/strict';
import { MountTable, type Attr, type FileSystem } from '../../src/fs/index.ts';
import { startRpcServer, RPC_ERROR } from '../../src/rpc/index.ts';
import { encodeFrame, FrameReader } from '../../src/rpc/protocol.ts';
import { Random } from '../../src/util/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { LineClient, startInProcess, TOKEN } from '../support/rpc-harness.ts';

const SEED = process.env['SILT_SEED'] ? Number(process.env['SILT_SEED']) : Date.now() % 1_000_000;

async function mounted(port: number): Promise<{ c: LineClient; mountId: number }> {
  const c = await LineClient.connect(port);
  const m = await c.ok('RpcMount', { volume: 'default', token: TOKEN });
  return { c, mountId: m.mountId as number };
}

test('framing: oversized lines are refused and skipped, split/pipelined/CRLF lines work', async () => {
  const srv = await startInProcess({ limits: { frameBytesMax: 4096 } });
  try {
    const { c, mountId } = await mounted(srv.server.port);
    // Oversized, arriving in pieces; the connection stays usable after the newline.
    c.write('{"jsonrpc":"2.0","id":1,"method":"RpcPing","params":{"pad":"' + 'x'.repeat(3000));
    await new Promise((r) => setTimeout(r, 20));
    c.write('y'.repeat(3000) + '"}}\n');
    const big = JSON.parse((await c.next())!);
    assert.equal(big.id, null);
    assert.equal(big.error.code, RPC_ERROR.INVALID_REQUEST);
    assert.equal(big.error.data.errno, 'E2BIG');
    assert.ok((await c.ok('RpcPing')).pong);
    // A request split byte by byte.
    const line = JSON.stringify({ jsonrpc: '2.0', id: 'split', method: 'RpcGetStat', params: { mountId, inode: 1 } }) + '\r\n';
    for (const ch of line) c.write(ch);
    const split = JSON.parse((await c.next())!);
    assert.equal(split.id, 'split');
    assert.equal(split.result.inode, 1);
    // 500 requests in one write, blank lines between them.
    const many = Array.from({ length: 500 }, (_, i) => JSON.stringify({ jsonrpc: '2.0', id: i, method: 'RpcGetStat', params: { mountId, inode: 1 } })).join('\n\n');
    c.write(many + '\n');
    const ids = new Set<number>();
    for (let i = 0; i < 500; i++) ids.add(JSON.parse((await c.next())!).id as number);
    assert.equal(ids.size, 500);
    c.close();
  } finally {
    await srv.close();
  }
});

test('binary frames: RpcWrite payload, RpcRead reply frame, split and mixed with lines; misuse refused', async () => {
  const srv = await startInProcess();
  try {
    const { c, mountId } = await mounted(srv.server.port);
    const f = await c.ok('RpcCreate', { mountId, inode: 1, name: 'bin', mode: 0o644 });
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff; // includes 0x00 and 0x0a bytes
    const w = encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 'w', method: 'RpcWrite', params: { mountId, inode: f.inode, offset: 0 } }), body);
    // Split at awkward places, followed at once by a JSON line.
    c.write(w.subarray(0, 3));
    c.write(w.subarray(3, 20));
    c.write(Buffer.concat([w.subarray(20), Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 'p', method: 'RpcPing' }) + '\n')]));
    const replies = [JSON.parse((await c.next())!), JSON.parse((await c.next())!)];
    assert.deepEqual(replies.find((r) => r.id === 'w').result, { size: body.length });
    assert.ok(replies.find((r) => r.id === 'p').result.pong);
    // RpcRead as a binary frame: the reply is a frame whose payload is the data.
    c.close();
    const raw = await new Promise<net.Socket>((resolve) => {
      const sock = net.connect({ port: srv.server.port, host: '127.0.0.1' }, () => resolve(sock));
    });
    const got = new Promise<{ header: any; payload: Buffer }[]>((resolve) => {
      const reader = new FrameReader(1 << 24, 1 << 24);
      const items: { header: any; payload: Buffer }[] = [];
      raw.on('data', (d: Buffer) => {
        for (const it of reader.push(d)) {
          if ('header' in it) items.push({ header: JSON.parse(it.header.toString()), payload: it.payload });
          if ('line' in it) items.push({ header: JSON.parse(it.line.toString()), payload: Buffer.alloc(0) });
          if (items.length === 3) resolve(items);
        }
      });
    });
    raw.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcAuth', params: { token: TOKEN } }) + '\n');
    const m2 = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'RpcMount', params: { volume: 'default' } }) + '\n';
    raw.write(m2);
    await new Promise((r) => setTimeout(r, 200));
    raw.write(encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'RpcRead', params: { mountId: 2, inode: f.inode, offset: 0, length: 1 << 20 } })));
    const items = await got;
    const read = items.find((x) => x.header.id === 3)!;
    assert.deepEqual(read.header.result, { eof: true, size: body.length });
    assert.ok(read.payload.equals(body));
    raw.destroy();

    // Misuse: a method other than RpcWrite/RpcRead; RpcWrite with data in params; RpcRead with a payload.
    const { c: m, mountId: id2 } = await mounted(srv.server.port);
    m.write(encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcGetStat', params: { mountId: id2, inode: 1 } })));
    assert.equal(JSON.parse((await m.next())!).error.code, RPC_ERROR.INVALID_REQUEST);
    m.write(encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'RpcWrite', params: { mountId: id2, inode: f.inode, offset: 0, data: '' } }), Buffer.from('x')));
    assert.equal(JSON.parse((await m.next())!).error.code, RPC_ERROR.INVALID_PARAMS);
    m.write(encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'RpcRead', params: { mountId: id2, inode: f.inode, offset: 0, length: 1 } }), Buffer.from('x')));
    assert.equal(JSON.parse((await m.next())!).error.code, RPC_ERROR.INVALID_PARAMS);
    m.write(encodeFrame('{not json', Buffer.from('x')));
    assert.equal(JSON.parse((await m.next())!).error.code, RPC_ERROR.PARSE);
    assert.ok((await m.ok('RpcPing')).pong);
    // A frame prefix out of bounds cannot be resynchronised: error, then the connection closes.
    const bad = Buffer.alloc(9);
    bad.writeUInt32BE(1 << 30, 1);
    m.write(bad);
    const e = JSON.parse((await m.next())!);
    assert.equal(e.error.data.errno, 'E2BIG');
    await m.waitClosed(5000);
  } finally {
    await srv.close();
  }
});

test(`garbage on the socket: one error reply per line, the server stays up (seed ${SEED})`, async () => {
  const srv = await startInProcess();
  const r = new Random(SEED);
  try {
    const { c } = await mounted(srv.server.port);
    const n = 1000;
    const chunks: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const b = Buffer.from(r.bytes(1 + r.int(300)));
      for (let k = 0; k < b.length; k++) if (b[k] === 0x0a || b[k] === 0x0d) b[k] = 0x20;
      // All-blank lines get no reply; make sure each line has something.
      b[0] = 0x7b;
      chunks.push(b, Buffer.from('\n'));
    }
    c.write(Buffer.concat(chunks));
    for (let i = 0; i < n; i++) {
      const line = await c.next();
      assert.ok(line !== null, `connection closed after ${i} replies (SILT_SEED=${SEED})`);
      const rep = JSON.parse(line);
      assert.equal(rep.jsonrpc, '2.0');
      assert.ok(rep.error && rep.error.data && typeof rep.error.data.errno === 'string', line);
    }
    assert.ok((await c.ok('RpcPing')).pong);
    c.close();
  } finally {
    await srv.close();
  }
});

test('a bad token gets an error and the connection is closed', async () => {
  const srv = await startInProcess();
  try {
    const c = await LineClient.connect(srv.server.port);
    const r = await c.call('RpcMount', { volume: 'default', token: 'nope' });
    assert.equal(r.error.code, RPC_ERROR.UNAUTHORIZED);
    await c.waitClosed(5000);
    // Before the token: an error, but the connection stays.
    const d = await LineClient.connect(srv.server.port);
    assert.equal((await d.call('RpcGetStat', { mountId: 1, inode: 1 })).error.code, RPC_ERROR.UNAUTHORIZED);
    assert.ok((await d.ok('RpcPing')).pong);
    d.close();
  } finally {
    await srv.close();
  }
});

test('a half-closed client still gets every reply, then the server closes', async () => {
  const srv = await startInProcess();
  try {
    const { c, mountId } = await mounted(srv.server.port);
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ jsonrpc: '2.0', id: i, method: 'RpcSync', params: { mountId } }));
    c.sock.end(lines.join('\n') + '\n');
    for (let i = 0; i < 50; i++) assert.ok(JSON.parse((await c.next())!).result);
    await c.waitClosed(5000);
  } finally {
    await srv.close();
  }
});

test('timeouts: no authentication, a dribbled partial line, an idle connection', async () => {
  const srv = await startInProcess({ limits: { authTimeoutMs: 200, frameTimeoutMs: 300, idleTimeoutMs: 400 } });
  try {
    const anon = await LineClient.connect(srv.server.port);
    await anon.waitClosed(5000);
    const { c: slow } = await mounted(srv.server.port);
    slow.write('{"jsonrpc":"2.0","id":1,');
    await slow.waitClosed(5000);
    const { c: idle } = await mounted(srv.server.port);
    const t = Date.now();
    await idle.waitClosed(5000);
    assert.ok(Date.now() - t >= 300);
  } finally {
    await srv.close();
  }
});

test('in-flight bound: at most inflightMax requests of a connection run at once; the rest wait', async () => {
  let running = 0;
  let peak = 0;
  const gates: (() => void)[] = [];
  const attr = { ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, crtimeNs: 0n, generation: 1 };
  const slowFs = {
    async getattr(): Promise<Attr> {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => gates.push(r));
      running--;
      return attr;
    },
  } as unknown as FileSystem;
  const server = await startRpcServer({ mounts: new MountTable([['default', slowFs]]), token: TOKEN, limits: { inflightMax: 4 } });
  try {
    const { c, mountId } = await mounted(server.port);
    const n = 40;
    c.write(Array.from({ length: n }, (_, i) => JSON.stringify({ jsonrpc: '2.0', id: i, method: 'RpcGetStat', params: { mountId, inode: 1 } }) + '\n').join(''));
    let answered = 0;
    c.sock.on('data', (d: string) => {
      for (const ch of d) if (ch === '\n') answered++;
    });
    for (let spins = 0; answered < n; spins++) {
      assert.ok(spins < 1000, `only ${answered} of ${n} answered`);
      await new Promise((r) => setTimeout(r, 20));
      assert.ok(running <= 4, `running ${running}`);
      for (const g of gates.splice(0)) g();
    }
    assert.equal(peak, 4);
    c.close();
  } finally {
    await server.close();
  }
});

test('connection bound: connections beyond connectionsMax are dropped; the others carry on', async () => {
  const srv = await startInProcess({ limits: { connectionsMax: 3 } });
  try {
    const keep = await Promise.all([0, 1, 2].map(() => mounted(srv.server.port)));
    const extra = await LineClient.connect(srv.server.port);
    await extra.waitClosed(5000);
    for (const k of keep) assert.ok((await k.c.ok('RpcPing')).pong);
    for (const k of keep) k.c.close();
  } finally {
    await srv.close();
  }
});

test('200 concurrent clients each write and read their own file; fsck is clean afterwards', async () => {
  const srv = await startInProcess();
  try {
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const { c, mountId } = await mounted(srv.server.port);
        const f = await c.ok('RpcCreate', { mountId, inode: 1, name: `client-${i}`, mode: 0o644 });
        const body = Buffer.from(`hello from client ${i}\n`.repeat(50));
        assert.equal((await c.ok('RpcWrite', { mountId, inode: f.inode, offset: 0, data: body.toString('base64') })).size, body.length);
        if (i % 10 === 0) await c.ok('RpcFlush', { mountId, inode: f.inode });
        const back = await c.ok('RpcRead', { mountId, inode: f.inode, offset: 0, length: 1 << 16 });
        assert.equal(Buffer.from(back.data, 'base64').toString(), body.toString());
        assert.equal((await c.ok('RpcGetStat', { mountId, inode: f.inode })).size, body.length);
        c.close();
      }),
    );
    const { c, mountId } = await mounted(srv.server.port);
    const page = await c.ok('RpcReaddir', { mountId, inode: 1, limit: 300 });
    assert.equal(page.entries.length, 202);
    assert.equal(page.eof, true);
    c.close();
  } finally {
    await srv.close();
  }
  const r = await checkVolume(srv.store, 'default');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), []);
});
