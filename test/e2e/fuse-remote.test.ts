import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const silt = resolve(import.meta.dirname, '../../bin/silt.mjs');

test('agent mount: silt mount --remote serves a volume owned by silt serve; the data lands in its store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'silt-remote-'));
  const store = `file:${join(dir, 'store')}`;
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = { ...process.env, SILT_TOKEN: 'remote-test-token' };
  const server = spawn(process.execPath, [silt, 'serve', '--store', store, '--mkfs', '--listen', `127.0.0.1:${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (b: Buffer) => (out += b.toString()));
  server.stderr.on('data', (b: Buffer) => (out += b.toString()));
  try {
    for (let i = 0; i < 200 && !out.includes('serving volume'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /serving volume/, `silt serve did not start:\n${out}`);
    await run(process.execPath, [silt, 'mount', '--remote', `127.0.0.1:${port}`, mnt, '--background'], { env });
    writeFileSync(join(mnt, 'hello.txt'), 'through the agent\n');
    mkdirSync(join(mnt, 'sub'));
    writeFileSync(join(mnt, 'sub', 'big'), Buffer.alloc(3 * 1024 * 1024, 9));
    assert.deepEqual(readdirSync(mnt).sort(), ['hello.txt', 'sub']);
    assert.equal(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'through the agent\n');
    await run(process.execPath, [silt, 'umount', mnt], { env });
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  // The server committed on SIGTERM: the store holds the files, fsck is clean.
  const { stdout } = await run(process.execPath, [silt, 'fsck', '--store', store, '--json']);
  const report = JSON.parse(stdout) as { clean: boolean; stats: { files: number; fileBytes: number } };
  assert.equal(report.clean, true);
  assert.equal(report.stats.files, 2);
  assert.equal(report.stats.fileBytes, 3 * 1024 * 1024 + 'through the agent\n'.length);
  rmSync(dir, { recursive: true, force: true });
});
