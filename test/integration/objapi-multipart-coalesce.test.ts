/**
 * S3 multipart completion joins the parts without copying data: a 100 MB upload (20 parts, sent
 * out of order) completes with only metadata reaching the store (PUT bytes counted under the file
 * system), the object's extents name exactly the data records the parts had, the ETag and the
 * content equal the MD5 of the whole, and the volume fscks clean.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { md5hex, s3, startFixture, type Fixture } from '../support/objapi-fixture.ts';
import { rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { CountingStore } from '../../bench/counting-store.ts';

const MiB = 1024 * 1024;
const PARTS = 20;
const PART_BYTES = 5 * MiB;

let f: Fixture;
let counting: CountingStore | undefined;
before(async () => {
  f = await startFixture({}, (s) => (counting = new CountingStore(s)));
  assert.equal((await s3(f.port, { method: 'PUT', path: '/big' })).status, 200);
});
after(async () => {
  const r = await f.close();
  assert.ok(r.clean, r.problems.join('\n'));
});

const tag = (xml: string, t: string): string[] => [...xml.matchAll(new RegExp(`<${t}>([\\s\\S]*?)</${t}>`, 'g'))].map((m) => m[1]!);

/** "seg:off" of every data record an inode's extents name, with the bytes named. */
async function records(fs: SiltFileSystem, ino: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const i = await fs.inodes.get(ino);
  for await (const [, e] of fs.inodes.extentsOf(i).entries()) {
    const k = `${e.rec.seg}:${e.rec.off}`;
    out.set(k, (out.get(k) ?? 0) + e.n);
  }
  return out;
}

test('completing a 100 MB multipart upload moves the parts: metadata-only PUTs, same records, ETag = MD5', async () => {
  const key = 'data/100mb.bin';
  const c = await s3(f.port, { method: 'POST', path: `/big/${key}?uploads` });
  assert.equal(c.status, 200, c.text);
  const id = tag(c.text, 'UploadId')[0]!;
  const seed = randomBytes(PART_BYTES);
  const parts: Buffer[] = [];
  for (let n = 0; n < PARTS; n++) {
    const p = Buffer.from(seed);
    p.writeUInt32BE(n, 0); // distinct parts, cheap to make
    p.writeUInt32BE(n, PART_BYTES - 4);
    parts.push(p);
  }
  const last = randomBytes(3 * MiB + 17); // a short last part
  parts.push(last);
  const etags: string[] = new Array<string>(parts.length);
  // out of order: odd part numbers first
  const order = [...parts.keys()].sort((a, b) => (a % 2) - (b % 2) || a - b);
  for (const i of order) {
    const r = await s3(f.port, { method: 'PUT', path: `/big/${key}?partNumber=${i + 1}&uploadId=${id}`, body: parts[i]! });
    assert.equal(r.status, 200, r.text);
    etags[i] = String(r.headers.etag);
  }
  await f.fs.sync();
  const uploadDir = await f.fs.lookupPath(root, `.silt-objapi-uploads/${id}`);
  const before = new Map<string, number>();
  for (let i = 0; i < parts.length; i++) {
    const a = await f.fs.lookup(root, uploadDir.ino, `part.${String(i + 1).padStart(5, '0')}`);
    for (const [k, n] of await records(f.fs, a.ino)) before.set(k, (before.get(k) ?? 0) + n);
  }

  assert.ok(counting);
  const put0 = counting.putBytes;
  const puts0 = counting.puts;
  const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
  const t0 = performance.now();
  const done = await s3(f.port, { method: 'POST', path: `/big/${key}?uploadId=${id}`, body: xml });
  const ms = performance.now() - t0;
  assert.equal(done.status, 200, done.text);
  const putBytes = counting.putBytes - put0;
  const total = PARTS * PART_BYTES + last.length;
  console.log(`completion of ${total} bytes in ${parts.length} parts: ${counting.puts - puts0} PUTs, ${putBytes} bytes, ${ms.toFixed(0)} ms`);
  assert.ok(putBytes < 512 * 1024, `completion wrote ${putBytes} bytes to the store (the parts hold ${total})`);

  const h = createHash('md5');
  for (const p of parts) h.update(p);
  const md5 = h.digest('hex');
  assert.equal(tag(done.text, 'ETag')[0]!.replace(/&quot;/g, '"'), `"${md5}"`);
  const obj = await f.fs.lookupPath(root, `big/${key}`);
  assert.equal(obj.size, total);
  assert.deepEqual(await records(f.fs, obj.ino), before, 'the object names exactly the records the parts named');
  const head = await s3(f.port, { method: 'HEAD', path: `/big/${key}` });
  assert.equal(head.headers.etag, `"${md5}"`);
  const g = await s3(f.port, { path: `/big/${key}` });
  assert.equal(g.status, 200);
  assert.equal(md5hex(g.body), md5);
  // the upload and its parts are gone
  await assert.rejects(f.fs.lookupPath(root, `.silt-objapi-uploads/${id}`));
});
