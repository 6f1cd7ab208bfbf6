/**
 * Real clients no one here wrote, against the object API of an in-process volume: the Debian
 * `swift` client (python3-swiftclient) and the `aws` CLI (botocore's SigV4, multipart uploads,
 * ranged parallel downloads). Trees go up and come back byte for byte; files written through the
 * fs layer (as FUSE writes them) come down through both; ETags equal md5sum.
 *
 * A client that is not installed and cannot be installed fails its tests, saying why (never a skip).
 * SILT_OBJAPI_BIG_MB sets the size of the aws multipart upload (default 100, as issue 7 asks: 13
 * parts of 8 MB); the store's PUT bytes during that upload must be about the object's size, so
 * the completion cannot have copied the parts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { KEY, REGION, USER, http, startFixture, type Fixture } from '../support/objapi-fixture.ts';
import { O_WRONLY, rootIdentity as root } from '../../src/fs/index.ts';
import { CountingStore } from '../../bench/counting-store.ts';

const REPO = new URL('../..', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string>, cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: cwd, LANG: 'C.UTF-8', ...env }, cwd, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function ok(p: Promise<Run>, what: string): Promise<string> {
  const r = await p;
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** Every file under a directory: relative path -> MD5 (empty directories as 'dir'). */
async function manifest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    if (entries.length === 0 && d !== dir) out.set(relative(dir, d), 'dir');
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(dir, p), createHash('md5').update(await readFile(p)).digest('hex'));
    }
  };
  await walk(dir);
  return out;
}

async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'sub', 'deep'), { recursive: true });
  await mkdir(join(dir, 'empty'), { recursive: true });
  await writeFile(join(dir, 'a.txt'), 'hello\n');
  await writeFile(join(dir, 'sub', 'big.bin'), randomBytes(3_000_000));
  await writeFile(join(dir, 'sub', 'deep', 'sp ace+plus&amp.txt'), 'odd name');
  await writeFile(join(dir, 'sub', '\u00fcn\u00efc\u00f8d\u00e9 \u{1F600}.txt'), 'unicode');
  await writeFile(join(dir, 'zero'), '');
  for (let i = 0; i < 20; i++) await writeFile(join(dir, 'sub', `small-${String(i).padStart(3, '0')}`), randomBytes(i * 97));
}

let f: Fixture;
let counting: CountingStore | undefined;
let work: string;

before(async () => {
  f = await startFixture({}, (s) => (counting = new CountingStore(s)));
  work = await mkdtemp(join(tmpdir(), 'silt-objapi-clients-'));
  await makeTree(join(work, 'tree'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
  const r = await f.close();
  assert.ok(r.clean, r.problems.join('\n'));
});

/** Write a file through the fs layer, as a FUSE client would (no fsync). */
async function writeViaFs(path: string, data: Buffer): Promise<void> {
  const parts = path.split('/');
  let dir = 1;
  for (const p of parts.slice(0, -1)) {
    try {
      dir = (await f.fs.lookup(root, dir, p)).ino;
    } catch {
      dir = (await f.fs.mkdir(root, dir, p, 0o755)).ino;
    }
  }
  const a = await f.fs.create(root, dir, parts[parts.length - 1]!, 0o644);
  await f.fs.open(root, a.ino, O_WRONLY);
  for (let o = 0; o < data.length; o += 1 << 20) await f.fs.write(root, a.ino, o, data.subarray(o, o + (1 << 20)));
  await f.fs.release(a.ino, true);
}

const md5 = (d: Buffer | string): string => createHash('md5').update(d).digest('hex');

async function swiftClient(): Promise<string | undefined> {
  const inst = await run('bash', [join(REPO, 'scripts/ensure-packages.sh'), 'python3-swiftclient'], {}, REPO, 300_000);
  if (inst.code !== 0) return `python3-swiftclient is not installed and could not be: ${inst.stderr.trim()}`;
  const v = await run('swift', ['--version'], {}, REPO);
  return v.code === 0 ? undefined : 'the swift command does not run';
}

async function awsClient(): Promise<string | undefined> {
  let v = await run('aws', ['--version'], {}, REPO);
  if (v.code !== 0) {
    await run('bash', [join(REPO, 'scripts/ensure-packages.sh'), 'awscli'], {}, REPO, 300_000);
    v = await run('aws', ['--version'], {}, REPO);
  }
  return v.code === 0 ? undefined : 'the aws command is not available';
}

describe('the swift client (python3-swiftclient)', async () => {
  const missing = await swiftClient();
  before(() => {
    if (missing) throw new Error(`the swift client tests cannot run: ${missing}`);
  });
  const env = (): Record<string, string> => ({ ST_AUTH: `${f.url}/auth/v1.0`, ST_USER: USER, ST_KEY: KEY });
  const sw = (args: string[], cwd = work): Promise<string> => ok(run('swift', args, env(), cwd), `swift ${args.join(' ')}`);

  test('upload a tree, list it, download it, compare', async () => {
    await sw(['upload', 'cont', 'tree']);
    const listed = (await sw(['list', 'cont'])).trimEnd().split('\n').sort();
    const local = [...(await manifest(join(work, 'tree'))).keys()].map((p) => `tree/${p}`).sort();
    assert.deepEqual(listed, local);
    await sw(['download', 'cont', '--output-dir', join(work, 'swift-down')]);
    assert.deepEqual(await manifest(join(work, 'swift-down', 'tree')), await manifest(join(work, 'tree')));
    // the mount sees the same tree: the empty directory is a directory
    const e = await f.fs.lookupPath(root, 'cont/tree/empty');
    assert.equal(e.mode & 0o170000, 0o040000);
  });

  test('stat shows ETag = md5sum; post metadata; files written through the fs layer download intact', async () => {
    const st = await sw(['stat', 'cont', 'tree/sub/big.bin']);
    assert.match(st, new RegExp(`ETag: ${md5(await readFile(join(work, 'tree/sub/big.bin')))}`));
    await sw(['post', '-m', 'Color:blue', 'cont', 'tree/a.txt']);
    assert.match(await sw(['stat', 'cont', 'tree/a.txt']), /Meta Color: blue/);
    const viaFs = randomBytes(5_000_000);
    await writeViaFs('cont/fromfuse/file.bin', viaFs);
    await sw(['download', 'cont', 'fromfuse/file.bin', '--output', join(work, 'fromfuse.bin')]);
    assert.equal(md5(await readFile(join(work, 'fromfuse.bin'))), md5(viaFs));
    assert.match(await sw(['stat', 'cont', 'fromfuse/file.bin']), new RegExp(`ETag: ${md5(viaFs)}`));
  });

  test('delete the container with everything in it', async () => {
    await sw(['delete', 'cont']);
    assert.ok(!(await sw(['list'])).split('\n').includes('cont'));
  });
});

describe('the aws CLI', async () => {
  const missing = await awsClient();
  before(() => {
    if (missing) throw new Error(`the aws CLI tests cannot run: ${missing}`);
  });
  const bigMb = Number(process.env['SILT_OBJAPI_BIG_MB'] ?? 100);
  const env = (): Record<string, string> => ({
    AWS_ACCESS_KEY_ID: USER,
    AWS_SECRET_ACCESS_KEY: KEY,
    AWS_DEFAULT_REGION: REGION,
    AWS_CONFIG_FILE: join(work, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  });
  const aws = (args: string[], cwd = work): Promise<string> => ok(run('aws', ['--endpoint-url', f.url, ...args], env(), cwd, 300_000), `aws ${args.join(' ')}`);

  before(async () => {
    // SigV4 for presigned URLs too (the CLI presigns with SigV2 unless told)
    await writeFile(join(work, 'aws-config'), '[default]\ns3 =\n  multipart_threshold = 8MB\n  multipart_chunksize = 8MB\n  signature_version = s3v4\n');
    await writeFile(join(work, 'aws-credentials'), '');
  });

  test('mb, cp, ls, sync up and down, compare', async () => {
    await aws(['s3', 'mb', 's3://awsbkt']);
    await aws(['s3', 'sync', join(work, 'tree'), 's3://awsbkt/tree', '--no-progress']);
    const ls = (await aws(['s3', 'ls', '--recursive', 's3://awsbkt/tree/'])).trimEnd().split('\n');
    const files = [...(await manifest(join(work, 'tree'))).entries()].filter(([, v]) => v !== 'dir');
    assert.equal(ls.length, files.length, ls.join('\n'));
    await aws(['s3', 'sync', 's3://awsbkt/tree', join(work, 'aws-down'), '--no-progress']);
    const want = new Map([...(await manifest(join(work, 'tree'))).entries()].filter(([, v]) => v !== 'dir'));
    assert.deepEqual(await manifest(join(work, 'aws-down')), want);
    // a second sync transfers nothing
    assert.equal((await aws(['s3', 'sync', join(work, 'tree'), 's3://awsbkt/tree', '--no-progress'])).trim(), '');
  });

  test(`multipart upload of ${bigMb} MB; head-object ETag = md5sum; ranged parallel download`, async () => {
    const big = join(work, 'big.bin');
    const data = randomBytes(bigMb * 1_000_000);
    await writeFile(big, data);
    const t0 = Date.now();
    const put0 = counting!.putBytes;
    await aws(['s3', 'cp', big, 's3://awsbkt/big/big.bin', '--no-progress']);
    const t1 = Date.now();
    // parts (each written once) plus metadata: a completion that copied would double it
    const putBytes = counting!.putBytes - put0;
    assert.ok(putBytes < data.length * 1.1 + 4_000_000, `the upload put ${putBytes} bytes into the store for ${data.length}`);
    const head = JSON.parse(await aws(['s3api', 'head-object', '--bucket', 'awsbkt', '--key', 'big/big.bin'])) as { ETag: string; ContentLength: number };
    assert.equal(head.ContentLength, data.length);
    assert.equal(head.ETag, `"${md5(data)}"`);
    await aws(['s3', 'cp', 's3://awsbkt/big/big.bin', join(work, 'big.down'), '--no-progress']);
    const t2 = Date.now();
    assert.equal(md5(await readFile(join(work, 'big.down'))), md5(data));
    console.log(`aws s3 cp ${bigMb} MB: up ${((bigMb * 1000) / (t1 - t0)).toFixed(1)} MB/s (multipart), down ${((bigMb * 1000) / (t2 - t1)).toFixed(1)} MB/s (ranged GETs)`);
    const a = await f.fs.lookupPath(root, 'awsbkt/big/big.bin');
    assert.equal(a.size, data.length);
    assert.equal((await stat(big)).size, data.length);
  });

  test('files written through the fs layer: cp down, ETag = md5sum; presign', async () => {
    const viaFs = randomBytes(9_000_000);
    await writeViaFs('awsbkt/fromfuse/f.bin', viaFs);
    const head = JSON.parse(await aws(['s3api', 'head-object', '--bucket', 'awsbkt', '--key', 'fromfuse/f.bin'])) as { ETag: string };
    assert.equal(head.ETag, `"${md5(viaFs)}"`);
    await aws(['s3', 'cp', 's3://awsbkt/fromfuse/f.bin', join(work, 'f.down'), '--no-progress']);
    assert.equal(md5(await readFile(join(work, 'f.down'))), md5(viaFs));
    const url = new URL((await aws(['s3', 'presign', 's3://awsbkt/tree/a.txt', '--expires-in', '60'])).trim());
    const r = await http(f.port, { path: url.pathname + url.search });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello\n');
  });

  test('rb --force empties and removes the bucket', async () => {
    await aws(['s3', 'rb', '--force', 's3://awsbkt']);
    assert.ok(!(await aws(['s3', 'ls'])).includes('awsbkt'));
    await assert.rejects(f.fs.lookupPath(root, 'awsbkt'), /ENOENT/);
  });
});
