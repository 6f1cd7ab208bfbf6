/**
 * The dispatcher without sockets: thousands of garbage and mutated request lines from a seeded
 * PRNG (SILT_SEED replays one) never throw, never produce an internal error, and always produce a
 * valid JSON-RPC reply whose error carries {errno, code}; authentication, parameter validation,
 * mount ownership, batches and notifications.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MountTable, openFileSystem, type SiltFileSystem } from '../../src/fs/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { Dispatcher, METHOD_NAMES, RPC_ERROR, type Session } from '../../src/rpc/index.ts';
import { ERRNO, Random } from '../../src/util/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';

const TOKEN = 'secret-token';
const SEED = process.env['SILT_SEED'] ? Number(process.env['SILT_SEED']) : Date.now() % 1_000_000;

interface Reply {
  jsonrpc: string;
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string; data: { errno: string; code: number; issues?: { path: string; message: string }[] } };
}

/** Assert `line` is a valid JSON-RPC 2.0 reply (or batch of them); return the replies. */
function checkReply(line: string, ctx: string): Reply[] {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    assert.fail(`${ctx}: reply is not JSON: ${line.slice(0, 200)}`);
  }
  const list = Array.isArray(v) ? v : [v];
  assert.ok(list.length > 0, `${ctx}: empty batch reply`);
  for (const r of list as Reply[]) {
    assert.equal(r.jsonrpc, '2.0', ctx);
    assert.ok('id' in r, `${ctx}: reply without id`);
    assert.ok(r.id === null || typeof r.id === 'string' || typeof r.id === 'number', `${ctx}: bad id`);
    assert.ok(('result' in r) !== ('error' in r), `${ctx}: exactly one of result/error`);
    if (r.error) {
      assert.ok(Number.isInteger(r.error.code), `${ctx}: error code`);
      assert.equal(typeof r.error.message, 'string', ctx);
      assert.ok(r.error.data && r.error.data.errno in ERRNO, `${ctx}: data.errno ${JSON.stringify(r.error)}`);
      assert.equal(r.error.data.code, ERRNO[r.error.data.errno as keyof typeof ERRNO], `${ctx}: data.code`);
      assert.notEqual(r.error.code, RPC_ERROR.INTERNAL, `${ctx}: internal error: ${r.error.message}`);
    }
  }
  return list as Reply[];
}

async function setup(): Promise<{ d: Dispatcher; fsys: SiltFileSystem; store: MemoryStore; s: Session; mountId: number; line: (m: string, p?: unknown, id?: unknown) => Promise<Reply> }> {
  const store = new MemoryStore();
  const fsys = await openFileSystem({ store, create: true, flushIntervalMs: 0 });
  const d = new Dispatcher({ mounts: new MountTable([['default', fsys]]), token: TOKEN });
  const s = d.newSession('test');
  let n = 1;
  const line = async (method: string, params?: unknown, id: unknown = n++): Promise<Reply> => {
    const out = await d.handleLine(s, JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) }));
    assert.ok(out !== undefined);
    return checkReply(out, method)[0]!;
  };
  const m = await line('RpcMount', { volume: 'default', token: TOKEN });
  const mountId = (m.result as { mountId: number }).mountId;
  return { d, fsys, store, s, mountId, line };
}

// ------------------------------------------------------------------------------ random inputs

const KEYS = [
  'mountId', 'inode', 'name', 'mode', 'uid', 'gid', 'groups', 'offset', 'length', 'data', 'size', 'cookie', 'limit',
  'plus', 'path', 'target', 'targetInode', 'newInode', 'newName', 'value', 'flags', 'wrote', 'mask', 'whence',
  'count', 'atime', 'mtime', 'ctime', 'caller', 'volume', 'token', 'create', 'replace', 'noReplace', 'exchange',
  'dataOnly', 'rdev', '__proto__', 'constructor',
];

function randomString(r: Random, max = 40): string {
  const alphabets = ['abcxyz', '0123456789', 'AZaz+/=', '\u0000\n\r\t"\\/', 'é日🙂\ud800', '. ..'];
  const a = r.pick(alphabets);
  let s = '';
  const n = r.int(max);
  for (let i = 0; i < n; i++) s += a[r.int(a.length)] ?? 'x';
  return s;
}

function randomValue(r: Random, depth = 0, inodes: number[] = [1]): unknown {
  switch (r.int(depth > 2 ? 9 : 12)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.int(10);
    case 3: return r.pick([-1, 0, 1, 1.5, 2 ** 53, 2 ** 53 - 1, -(2 ** 63), 1e308, 0o644, 0o40755, 4096, 8 * 1024 * 1024 + 1, 2 ** 32]);
    case 4: return r.pick(inodes);
    case 5: return randomString(r);
    case 6: return r.pick(['0', '1', '18446744073709551615', '18446744073709551616', '-1', 'now', 'aGVsbG8=', 'aGVsbG8', '====', '']);
    case 7: return Buffer.from(r.bytes(r.int(64))).toString('base64');
    case 8: return 'x'.repeat(r.pick([255, 256, 4096, 20000]));
    case 9: return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1, inodes));
    case 10:
    case 11: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(5); i > 0; i--) o[r.pick(KEYS)] = randomValue(r, depth + 1, inodes);
      return o;
    }
  }
  return null;
}

/** Well-formed params for `method` (names and inodes drawn from small pools so calls collide). */
function validParams(r: Random, method: string, mountId: number, inodes: number[]): Record<string, unknown> {
  const ino = r.pick(inodes);
  const name = `n${r.int(12)}`;
  const b64 = Buffer.from(r.bytes(r.int(3000))).toString('base64');
  const base = { mountId, inode: ino };
  switch (method) {
    case 'RpcPing': return {};
    case 'RpcMount': return { volume: 'default', token: TOKEN, ...(r.chance(0.3) && { uid: 1000, gid: 1000 }) };
    case 'RpcLookupPath': return { mountId, path: `/${name}/${r.pick(['', name, '..'])}` };
    case 'RpcLookup': case 'RpcUnlink': case 'RpcRmdir': case 'RpcGetXAttr': case 'RpcRemoveXAttr':
      return { ...base, name: method.includes('XAttr') ? `user.${name}` : name };
    case 'RpcCreate': case 'RpcMkdir': return { ...base, name, mode: r.pick([0o644, 0o755, 0o7777, 0]) };
    case 'RpcMknod': return { ...base, name, mode: r.pick([0o010644, 0o140644, 0o100600, 0o020644]), rdev: r.int(300) };
    case 'RpcSymlink': return { ...base, name, target: r.pick(['a', '../b', '/abs', 'x'.repeat(300)]) };
    case 'RpcLink': return { ...base, name, targetInode: r.pick(inodes) };
    case 'RpcRename': return { ...base, name, newInode: r.pick(inodes), newName: `n${r.int(12)}`, ...(r.chance(0.2) && { exchange: true }), ...(r.chance(0.2) && { noReplace: true }) };
    case 'RpcSetStat': return { ...base, ...(r.chance(0.5) && { mode: 0o640 }), ...(r.chance(0.3) && { size: r.int(100_000) }), ...(r.chance(0.3) && { atime: r.pick(['now', '1700000000000000000']) }), ...(r.chance(0.2) && { uid: 1000 }) };
    case 'RpcResize': return { ...base, size: r.pick([0, r.int(1 << 20), 2 ** 40]) };
    case 'RpcReaddir': return { ...base, cookie: r.pick(['0', '1', '2', '123456789']), limit: 1 + r.int(20), plus: r.chance(0.5) };
    case 'RpcOpen': return { ...base, flags: r.pick([0, 1, 2, 0o1002]) };
    case 'RpcRelease': return { mountId, inode: ino, wrote: r.chance(0.5) };
    case 'RpcRead': return { ...base, offset: r.int(200_000), length: r.int(100_000) };
    case 'RpcWrite': return { ...base, offset: r.pick([0, r.int(200_000), 2 ** 40]), data: b64 };
    case 'RpcFlush': return { mountId, inode: ino };
    case 'RpcFallocate': return { ...base, mode: r.pick([0, 1, 3, 8]), offset: r.int(100_000), length: r.int(100_000) };
    case 'RpcSeek': return { ...base, offset: r.int(100_000), whence: r.pick([3, 4]) };
    case 'RpcAccess': return { ...base, mask: r.int(8) };
    case 'RpcPin': case 'RpcUnpin': return { mountId, inode: ino, count: 1 + r.int(3) };
    case 'RpcSetXAttr': return { ...base, name: `${r.pick(['user', 'trusted', 'security', 'os2'])}.${name}`, value: b64.slice(0, 4 * r.int(100)) };
    case 'RpcSnapShotCreate': case 'RpcSnapShotDelete': return { mountId, name };
    default: return method === 'RpcSync' || method === 'RpcStatVFS' || method === 'RpcSnapShotList' ? { mountId } : base;
  }
}

/** A request for a real method: well-formed params, often with one or two mutations. */
function mutatedRequest(r: Random, id: number, mountId: number, inodes: number[]): string {
  const method = r.chance(0.97) ? r.pick(METHOD_NAMES.filter((m) => m !== 'RpcAuth' && m !== 'RpcUnmount')) : randomString(r, 12);
  const params = validParams(r, method, mountId, inodes);
  if (r.chance(0.1)) params['caller'] = r.chance(0.7) ? { uid: 1000, gid: 1000 } : randomValue(r);
  for (let i = r.chance(0.5) ? 0 : 1 + r.int(2); i > 0; i--) {
    const keys = Object.keys(params);
    const op = r.int(3);
    if (op === 0 && keys.length) delete params[r.pick(keys)];
    else if (op === 1 && keys.length) params[r.pick(keys)] = randomValue(r, 0, inodes);
    else params[r.pick(KEYS)] = randomValue(r, 0, inodes);
  }
  const msg: Record<string, unknown> = { jsonrpc: '2.0', id, method };
  if (r.chance(0.98)) msg['params'] = r.chance(0.98) ? params : randomValue(r);
  return JSON.stringify(msg);
}

/** Not a valid request in any way: garbage bytes, broken JSON, non-objects, bad envelopes. */
function garbageLine(r: Random, id: number): string {
  const valid = JSON.stringify({ jsonrpc: '2.0', id, method: 'RpcPing', params: {} });
  switch (r.int(9)) {
    case 0: return Buffer.from(r.bytes(1 + r.int(200))).toString('utf8').replace(/\n/g, ' ');
    case 1: return valid.slice(0, r.int(valid.length - 1));
    case 2: return JSON.stringify(r.pick([1, 'str', null, true, [], [[]], 3.5]));
    case 3: return JSON.stringify({ jsonrpc: r.pick(['1.0', '2', 2, null]), id, method: 'RpcPing' });
    case 4: return JSON.stringify({ jsonrpc: '2.0', id: r.pick([{}, [], true, false]), method: 'RpcPing' });
    case 5: return JSON.stringify({ jsonrpc: '2.0', id, method: r.pick([1, null, {}, []]) });
    case 6: return JSON.stringify({ jsonrpc: '2.0', id, method: 'RpcPing', params: {}, extra: 1 });
    case 7: return valid.replace('"', r.pick(["'", '', '\\"', '""']));
    default: return '{'.repeat(r.int(2000) + 1) + '}'.repeat(r.int(2000));
  }
}

test(`fuzz: thousands of garbage and mutated lines, 0 crashes, every reply valid (seed ${SEED})`, async () => {
  const r = new Random(SEED);
  const { d, s, mountId, fsys, store, line } = await setup();
  const inodes = [1];
  for (let i = 0; i < 5; i++) {
    const c = await line('RpcCreate', { mountId, inode: 1, name: `f${i}`, mode: 0o644 });
    inodes.push((c.result as { inode: number }).inode);
  }
  const dir = await line('RpcMkdir', { mountId, inode: 1, name: 'dir', mode: 0o755 });
  inodes.push((dir.result as { inode: number }).inode, 2 ** 40, 999);
  let errors = 0;
  let results = 0;
  for (let i = 0; i < 2000; i++) {
    const g = garbageLine(r, i);
    const out = await d.handleLine(s, g);
    assert.ok(out !== undefined, `garbage got no reply: ${g.slice(0, 100)} (SILT_SEED=${SEED})`);
    for (const rep of checkReply(out, `garbage #${i} (SILT_SEED=${SEED}): ${g.slice(0, 100)}`)) {
      assert.ok(rep.error, `garbage succeeded: ${g.slice(0, 100)} (SILT_SEED=${SEED})`);
      errors++;
    }
  }
  for (let i = 0; i < 3000; i++) {
    const req = mutatedRequest(r, i, mountId, inodes);
    const out = await d.handleLine(s, req);
    assert.ok(out !== undefined, `no reply: ${req.slice(0, 200)}`);
    for (const rep of checkReply(out, `request #${i} (SILT_SEED=${SEED}): ${req.slice(0, 300)}`)) {
      if (rep.error) errors++;
      else results++;
      const res = rep.result as { inode?: unknown } | undefined;
      if (typeof res?.inode === 'number' && !inodes.includes(res.inode)) inodes.push(res.inode);
    }
  }
  assert.ok(results > 300, `many mutated requests succeed (${results})`);
  assert.ok(errors > 2000);
  // The volume is still consistent after all that.
  await fsys.close();
  const rep = await checkVolume(store, 'default');
  assert.deepEqual(rep.problems.filter((p) => p.severity === 'error'), [], `SILT_SEED=${SEED}`);
});

test('authentication: only RpcPing, RpcAuth and RpcMount before the token; a bad token asks to close', async () => {
  const { d } = await setup();
  const s = d.newSession('anon');
  const call = async (method: string, params: unknown = {}): Promise<Reply> =>
    checkReply((await d.handleLine(s, JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })))!, method)[0]!;
  assert.ok((await call('RpcPing')).result);
  for (const m of METHOD_NAMES.filter((x) => !['RpcPing', 'RpcAuth', 'RpcMount'].includes(x))) {
    const r = await call(m, { mountId: 1, inode: 1 });
    assert.equal(r.error?.code, RPC_ERROR.UNAUTHORIZED, m);
    assert.equal(r.error?.data.errno, 'EACCES');
  }
  const noToken = await call('RpcMount', { volume: 'default' });
  assert.equal(noToken.error?.code, RPC_ERROR.UNAUTHORIZED);
  assert.equal(s.closeRequested, false);
  const bad = await call('RpcMount', { volume: 'default', token: 'wrong' });
  assert.equal(bad.error?.code, RPC_ERROR.UNAUTHORIZED);
  assert.equal(s.closeRequested, true);
  assert.equal(s.authenticated, false);

  const s2 = d.newSession('good');
  const auth = await d.handleLine(s2, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcAuth', params: { token: TOKEN } }));
  assert.deepEqual(JSON.parse(auth!).result, {});
  const m = JSON.parse((await d.handleLine(s2, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'RpcMount', params: { volume: 'default' } })))!);
  assert.equal(typeof m.result.mountId, 'number');
  assert.equal(m.result.rootInode, 1);
});

test('parameter validation: -32602 with what was wrong', async () => {
  const { mountId, line } = await setup();
  const cases: [string, unknown, string][] = [
    ['RpcLookup', { mountId, inode: 1 }, 'name'],
    ['RpcLookup', { mountId, inode: 1, name: 'x', extra: 1 }, 'Unrecognized key'],
    ['RpcGetStat', { mountId, inode: 1.5 }, 'inode'],
    ['RpcGetStat', { mountId, inode: 2 ** 53 }, 'inode'],
    ['RpcGetStat', { mountId, inode: '1' }, 'inode'],
    ['RpcGetStat', { mountId, inode: 0 }, 'inode'],
    ['RpcGetStat', [mountId, 1], 'named parameters'],
    ['RpcReaddir', { mountId, inode: 1, cookie: 'abc' }, 'cookie'],
    ['RpcReaddir', { mountId, inode: 1, cookie: 5 }, 'cookie'],
    ['RpcReaddir', { mountId, inode: 1, limit: 100000 }, 'limit'],
    ['RpcSetStat', { mountId, inode: 1, atime: 'yesterday' }, 'atime'],
    ['RpcSetStat', { mountId, inode: 1, mtime: '99999999999999999999' }, 'mtime'],
    ['RpcWrite', { mountId, inode: 1, offset: 0, data: 'not base64!' }, 'data'],
    ['RpcWrite', { mountId, inode: 1, offset: 0, data: 'ab!d' }, 'not base64'],
    ['RpcWrite', { mountId, inode: 1, offset: 0, data: 'a=bc' }, 'not base64'],
    ['RpcWrite', { mountId, inode: 1, offset: 0, data: 'ab c' }, 'not base64'],
    ['RpcWrite', { mountId, inode: 1, offset: 0, data: 'aGVsbG8=aGVs' }, 'not base64'],
    ['RpcWrite', { mountId, inode: 1, offset: 0, data: 'aGVsbG8h\n' }, 'not base64'],
    ['RpcSetXAttr', { mountId, inode: 1, name: 'user.x', value: '====' }, 'not base64'],
    ['RpcWrite', { mountId, inode: 1, offset: -1, data: '' }, 'offset'],
    ['RpcRead', { mountId, inode: 1, offset: 0, length: 8 * 1024 * 1024 + 1 }, 'length'],
    ['RpcMount', { volume: 'default', token: TOKEN, uid: -1 }, 'uid'],
    ['RpcCreate', { mountId, inode: 1, name: 'x', mode: 0o1000000 }, 'mode'],
    ['RpcCreate', { mountId, inode: 1, name: 'x', caller: { uid: 1 } }, 'caller.gid'],
  ];
  for (const [method, params, want] of cases) {
    const r = await line(method, params);
    assert.equal(r.error?.code, RPC_ERROR.INVALID_PARAMS, `${method} ${JSON.stringify(params)}: ${JSON.stringify(r)}`);
    assert.equal(r.error?.data.errno, 'EINVAL');
    assert.ok(r.error!.message.includes(want), `${method}: '${r.error!.message}' should mention ${want}`);
  }
  // Valid base64 in both alphabets, with and without padding, decodes exactly.
  const f = (await line('RpcCreate', { mountId, inode: 1, name: 'b64', mode: 0o644 })).result as { inode: number };
  for (const [text, bytes] of [['aGVsbG8=', 'hello'], ['aGVsbA==', 'hell'], ['aGVs', 'hel'], ['', ''], ['-_-_', Buffer.from('-_-_', 'base64url').toString('latin1')]] as const) {
    await line('RpcResize', { mountId, inode: f.inode, size: 0 });
    const w = await line('RpcWrite', { mountId, inode: f.inode, offset: 0, data: text });
    assert.equal((w.result as { size: number }).size, bytes.length, text);
    const r = await line('RpcRead', { mountId, inode: f.inode, offset: 0, length: 100 });
    assert.equal(Buffer.from((r.result as { data: string }).data, 'base64').toString('latin1'), bytes);
  }
  // Defaults fill in: RpcReaddir needs no cookie or limit, RpcCreate no mode.
  assert.ok((await line('RpcReaddir', { mountId, inode: 1 })).result);
  const c = await line('RpcCreate', { mountId, inode: 1, name: 'dflt' });
  assert.equal((c.result as { attr: { mode: number } }).attr.mode & 0o777, 0o644);
});

test('errors carry errno; unknown methods -32601; mount ids belong to their session', async () => {
  const { d, mountId, line } = await setup();
  const r = await line('RpcLookup', { mountId, inode: 1, name: 'missing' });
  assert.equal(r.error?.code, RPC_ERROR.FS);
  assert.deepEqual(r.error?.data, { errno: 'ENOENT', code: 2 });
  assert.equal((await line('RpcNope', {})).error?.code, RPC_ERROR.METHOD_NOT_FOUND);
  assert.equal((await line('toString', {})).error?.code, RPC_ERROR.METHOD_NOT_FOUND);
  assert.equal((await line('__proto__', {})).error?.code, RPC_ERROR.METHOD_NOT_FOUND);
  // Another session cannot use this session's mount id.
  const other = d.newSession('other');
  await d.handleLine(other, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcAuth', params: { token: TOKEN } }));
  const stolen = JSON.parse((await d.handleLine(other, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'RpcGetStat', params: { mountId, inode: 1 } })))!);
  assert.equal(stolen.error.data.errno, 'ESTALE');
  // After RpcUnmount the id is gone.
  assert.deepEqual((await line('RpcUnmount', { mountId })).result, {});
  assert.equal((await line('RpcGetStat', { mountId, inode: 1 })).error?.data.errno, 'ESTALE');
  assert.equal((await line('RpcMount', { volume: 'other' })).error?.data.errno, 'ENOENT');
});

test('snapshots: create, list, delete (durable), errors, root only', async () => {
  const { d, mountId, line, store } = await setup();
  assert.deepEqual((await line('RpcSnapShotList', { mountId })).result, { snapshots: [] });
  await line('RpcCreate', { mountId, inode: 1, name: 'before', mode: 0o644 });
  const c = (await line('RpcSnapShotCreate', { mountId, name: 'first' })).result as { name: string; commit: number; createdMs: number };
  assert.equal(c.name, 'first');
  assert.ok(c.commit > 0 && c.createdMs > 0);
  assert.equal((await line('RpcSnapShotCreate', { mountId, name: 'first' })).error?.data.errno, 'EEXIST');
  assert.equal((await line('RpcSnapShotCreate', { mountId, name: '../x' })).error?.data.errno, 'EINVAL');
  const list = (await line('RpcSnapShotList', { mountId })).result as { snapshots: { name: string }[] };
  assert.deepEqual(list.snapshots.map((x) => x.name), ['first']);
  // Durable at return: a fresh open of the store sees it.
  const { Volume } = await import('../../src/headhunter/index.ts');
  assert.deepEqual((await Volume.open(store, 'default', {})).snapshots.map((x) => x.name), ['first']);
  // A non-root mount may list but not create or delete.
  const u = d.newSession('user');
  const mu = JSON.parse((await d.handleLine(u, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcMount', params: { volume: 'default', token: TOKEN, uid: 1000 } })))!);
  const ucall = async (method: string, params: unknown) =>
    JSON.parse((await d.handleLine(u, JSON.stringify({ jsonrpc: '2.0', id: 2, method, params })))!) as Reply;
  assert.equal((await ucall('RpcSnapShotCreate', { mountId: mu.result.mountId, name: 'mine' })).error?.data.errno, 'EPERM');
  assert.equal((await ucall('RpcSnapShotDelete', { mountId: mu.result.mountId, name: 'first' })).error?.data.errno, 'EPERM');
  assert.equal(((await ucall('RpcSnapShotList', { mountId: mu.result.mountId })).result as { snapshots: unknown[] }).snapshots.length, 1);
  assert.deepEqual((await line('RpcSnapShotDelete', { mountId, name: 'first' })).result, {});
  assert.equal((await line('RpcSnapShotDelete', { mountId, name: 'first' })).error?.data.errno, 'ENOENT');
  assert.deepEqual((await line('RpcSnapShotList', { mountId })).result, { snapshots: [] });
});

test('pathological lines are refused fast: deep nesting, huge strings', async () => {
  const { d, s } = await setup();
  for (const line of ['['.repeat(5_000_000), '{"a":'.repeat(1_000_000) + '1' + '}'.repeat(1_000_000), '[' + '"\\\\",'.repeat(100_000) + '[[[[[[[[[1]]]]]]]]]]']) {
    const t0 = performance.now();
    const r = checkReply((await d.handleLine(s, line))!, 'deep')[0]!;
    assert.equal(r.error?.code, RPC_ERROR.INVALID_REQUEST);
    assert.match(r.error!.message, /nested deeper/);
    assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
  }
  // Quotes and brackets inside strings do not count.
  const ok = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'RpcPing', params: {} });
  assert.ok(JSON.parse((await d.handleLine(s, ok))!).result);
  const tricky = JSON.stringify({ jsonrpc: '2.0', id: '[[[[[[[[[[\\"{{{{{{{{{{', method: 'RpcPing' });
  assert.equal(JSON.parse((await d.handleLine(s, tricky))!).id, '[[[[[[[[[[\\"{{{{{{{{{{');
  const huge = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'RpcAuth', params: { token: 'x'.repeat(10_000_000) } });
  assert.equal(JSON.parse((await d.handleLine(s, huge))!).error.code, RPC_ERROR.INVALID_PARAMS);
});

test('batches and notifications (JSON-RPC 2.0 section 6)', async () => {
  const { d, s, mountId } = await setup();
  const req = (id: number | undefined, method: string, params: unknown) => ({ jsonrpc: '2.0', ...(id !== undefined && { id }), method, params });
  const out = await d.handleLine(s, JSON.stringify([req(1, 'RpcPing', {}), req(undefined, 'RpcPing', {}), req(2, 'RpcGetStat', { mountId, inode: 1 }), 5]));
  const list = checkReply(out!, 'batch');
  assert.equal(list.length, 3);
  assert.deepEqual(list.map((x) => x.id).sort(), [1, 2, null].sort());
  assert.equal(list.find((x) => x.id === null)?.error?.code, RPC_ERROR.INVALID_REQUEST);
  // Notifications only: no reply at all; errors in notifications are not reported.
  assert.equal(await d.handleLine(s, JSON.stringify([req(undefined, 'RpcPing', {}), req(undefined, 'RpcNope', {})])), undefined);
  assert.equal(await d.handleLine(s, JSON.stringify(req(undefined, 'RpcGetStat', { mountId, inode: 1 }))), undefined);
  assert.equal(checkReply((await d.handleLine(s, '[]'))!, 'empty')[0]!.error?.code, RPC_ERROR.INVALID_REQUEST);
  const big = JSON.stringify(Array.from({ length: 65 }, (_, i) => req(i, 'RpcPing', {})));
  assert.equal(checkReply((await d.handleLine(s, big))!, 'big')[0]!.error?.data.errno, 'E2BIG');
  // An id of null is a request (discouraged) and gets a reply with id null.
  assert.equal(checkReply((await d.handleLine(s, JSON.stringify({ jsonrpc: '2.0', id: null, method: 'RpcPing' })))!, 'null id')[0]!.id, null);
  assert.equal(checkReply((await d.handleLine(s, JSON.stringify({ jsonrpc: '2.0', id: 'abc', method: 'RpcPing' })))!, 'str id')[0]!.id, 'abc');
});
