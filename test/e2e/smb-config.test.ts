/**
 * The smb.conf `silt smb` writes, checked by Samba's own parser (testparm from Debian's
 * samba-common-bin): it loads without complaint, every directory Samba writes is under the state
 * directory, and `--smb-option` share parameters come after Silt's settings, so they win. Bad
 * option text is refused before it can reach the file. Fast (no smbd, no mount).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { parseSmbOption, renderSmbConf, stateLayout } from '../../src/smb/index.ts';
import { ensureSamba, run, tempDir } from '../support/smb.ts';

let dir: string;

before(async () => {
  await ensureSamba();
  dir = tempDir('silt-smb-conf-');
  // silt smb makes these before Samba runs; testparm checks they exist.
  const l = stateLayout(path.join(dir, 'state'));
  for (const d of [l.private, l.lock, l.state, l.cache, l.pid, l.ncalrpc, l.binddns, l.log]) fs.mkdirSync(d, { recursive: true });
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function conf(shareOptions: string[]): string {
  const layout = stateLayout(path.join(dir, 'state'));
  return renderSmbConf({
    layout,
    share: 'files',
    path: path.join(dir, 'mnt'),
    port: 4450,
    listen: '127.0.0.1',
    users: ['alice', 'bob'],
    readOnlyUsers: ['bob'],
    vfsObjects: ['streams_xattr', 'acl_xattr'],
    shareOptions,
  });
}

/** testparm's view of the file: exit code, stderr, and `parameter = value` of the share section. */
async function testparm(text: string): Promise<{ code: number; stderr: string; share: Map<string, string>; global: Map<string, string> }> {
  const file = path.join(dir, `smb-${Math.random().toString(36).slice(2)}.conf`);
  fs.writeFileSync(file, text);
  const r = await run('testparm', ['-s', file]);
  const sections = new Map<string, Map<string, string>>();
  let cur = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const sec = /^\[(.+)\]$/.exec(line.trim());
    if (sec) {
      cur = new Map();
      sections.set(sec[1]!, cur);
      continue;
    }
    const kv = /^\s*([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv) cur.set(kv[1]!, kv[2]!);
  }
  return { code: r.code, stderr: r.stderr, share: sections.get('files') ?? new Map(), global: sections.get('global') ?? new Map() };
}

test('the generated smb.conf loads in testparm, keeps Samba state under the state directory, and applies the share settings', async () => {
  const t = await testparm(conf([]));
  assert.equal(t.code, 0, t.stderr);
  assert.doesNotMatch(t.stderr, /Unknown parameter|Ignoring unknown|ERROR/i, t.stderr);
  const state = path.join(dir, 'state');
  for (const k of ['private dir', 'lock directory', 'state directory', 'cache directory', 'pid directory', 'ncalrpc dir', 'binddns dir']) {
    assert.ok(t.global.get(k)?.startsWith(state), `${k} = ${t.global.get(k)} is under ${state}`);
  }
  assert.equal(t.global.get('smb ports'), '4450');
  assert.equal(t.share.get('path'), path.join(dir, 'mnt'));
  assert.equal(t.share.get('strict sync'), undefined, 'strict sync = yes is the default testparm -s omits');
  assert.equal(t.share.get('read list'), 'bob');
  assert.equal(t.share.get('valid users'), 'alice bob');
  assert.equal(t.share.get('vfs objects'), 'streams_xattr acl_xattr');
});

test('--smb-option share parameters come after Silt’s and win', async () => {
  const t = await testparm(conf(['strict sync = no', 'Oplocks=no', 'aio read size = 0']));
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.share.get('strict sync'), 'No');
  assert.equal(t.share.get('oplocks'), 'No');
  assert.equal(t.share.get('aio read size'), '0');
});

test('--smb-option text that is not one `name = value` line is refused', () => {
  assert.equal(parseSmbOption('  Use Sendfile =  yes '), 'use sendfile = yes');
  for (const bad of ['no equals sign', '= value', 'a = b\n[global]', 'x = [y]', 'path = /x\0']) {
    assert.throws(() => parseSmbOption(bad), /must be 'name = value'/, JSON.stringify(bad));
    assert.throws(() => conf([bad]), /must be 'name = value'/, JSON.stringify(bad));
  }
});
