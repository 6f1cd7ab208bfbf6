/**
 * The S3 dialect of the object API through hand-signed SigV4 requests (test/support's signer,
 * written apart from the server's verifier) and through the objstore layer's S3Store (another
 * engineer's S3 client): buckets, objects, ranges, metadata, payload hashes, aws-chunked bodies,
 * presigned URLs, ListObjects v1/v2 paging against a model, CopyObject, DeleteObjects and
 * multipart upload. The volume must fsck clean at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { KEY, REGION, USER, awsEncode, http, md5hex, presign, s3, signS3, startFixture, swift, swiftLogin, type Fixture, type Resp } from '../support/objapi-fixture.ts';
import { rootIdentity as root } from '../../src/fs/index.ts';
import { S3Store } from '../../src/objstore/index.ts';

let f: Fixture;
before(async () => {
  f = await startFixture();
  assert.equal((await s3(f.port, { method: 'PUT', path: '/bkt' })).status, 200);
});
after(async () => {
  const r = await f.close();
  assert.ok(r.clean, r.problems.join('\n'));
});

const tag = (xml: string, t: string): string[] => [...xml.matchAll(new RegExp(`<${t}>([\\s\\S]*?)</${t}>`, 'g'))].map((m) => m[1]!);
const unq = (s: string): string => s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'");
const enc = (key: string): string => key.split('/').map(encodeURIComponent).join('/');

describe('buckets', () => {
  test('create, list, head, location, delete; names checked; existing 409; non-empty 409', async () => {
    assert.equal((await s3(f.port, { method: 'PUT', path: '/new-bucket.1' })).status, 200);
    assert.equal((await s3(f.port, { method: 'PUT', path: '/new-bucket.1' })).status, 409);
    for (const bad of ['/UPPER', '/ab', '/-dash', '/a..b', '/192.168.1.1']) assert.equal((await s3(f.port, { method: 'PUT', path: bad })).status, 400, bad);
    const l = await s3(f.port, { path: '/' });
    assert.equal(l.status, 200);
    assert.deepEqual(tag(l.text, 'Name').sort(), ['bkt', 'new-bucket.1']);
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/new-bucket.1' })).status, 200);
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/missing-bucket' })).status, 404);
    const loc = await s3(f.port, { path: '/new-bucket.1?location' });
    assert.match(loc.text, /<LocationConstraint[^>]*><\/LocationConstraint>/);
    await s3(f.port, { method: 'PUT', path: '/new-bucket.1/k', body: 'v' });
    const full = await s3(f.port, { method: 'DELETE', path: '/new-bucket.1' });
    assert.equal(full.status, 409);
    assert.deepEqual(tag(full.text, 'Code'), ['BucketNotEmpty']);
    assert.equal((await s3(f.port, { method: 'DELETE', path: '/new-bucket.1/k' })).status, 204);
    assert.equal((await s3(f.port, { method: 'DELETE', path: '/new-bucket.1' })).status, 204);
    const gone = await s3(f.port, { path: '/new-bucket.1?list-type=2' });
    assert.equal(gone.status, 404);
    assert.deepEqual(tag(gone.text, 'Code'), ['NoSuchBucket']);
    assert.equal((await s3(f.port, { path: '/bkt?acl' })).status, 501);
  });
});

describe('objects', () => {
  test('PUT/GET/HEAD/DELETE with metadata, content type, ETag = MD5; DELETE of a missing key is 204', async () => {
    const body = randomBytes(100_000);
    const p = await s3(f.port, { method: 'PUT', path: '/bkt/dir/obj.bin', body, headers: { 'content-type': 'application/x-test', 'x-amz-meta-origin': 'unit' } });
    assert.equal(p.status, 200);
    assert.equal(p.headers.etag, `"${md5hex(body)}"`);
    const g = await s3(f.port, { path: '/bkt/dir/obj.bin' });
    assert.equal(g.status, 200);
    assert.deepEqual(g.body, body);
    assert.equal(g.headers['content-type'], 'application/x-test');
    assert.equal(g.headers['x-amz-meta-origin'], 'unit');
    const h = await s3(f.port, { method: 'HEAD', path: '/bkt/dir/obj.bin' });
    assert.equal(h.headers['content-length'], '100000');
    assert.equal((await s3(f.port, { path: '/bkt/dir/none' })).status, 404);
    assert.deepEqual(tag((await s3(f.port, { path: '/bkt/dir/none' })).text, 'Code'), ['NoSuchKey']);
    assert.equal((await s3(f.port, { method: 'DELETE', path: '/bkt/dir/obj.bin' })).status, 204);
    assert.equal((await s3(f.port, { method: 'DELETE', path: '/bkt/dir/obj.bin' })).status, 204);
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/bkt/dir/obj.bin' })).status, 404);
  });

  test('GET with Range: 206, 416; response-* overrides', async () => {
    await s3(f.port, { method: 'PUT', path: '/bkt/r', body: 'abcdefghij' });
    const r = await s3(f.port, { path: '/bkt/r', headers: { range: 'bytes=2-5' } });
    assert.equal(r.status, 206);
    assert.equal(r.text, 'cdef');
    assert.equal(r.headers['content-range'], 'bytes 2-5/10');
    const bad = await s3(f.port, { path: '/bkt/r', headers: { range: 'bytes=10-' } });
    assert.equal(bad.status, 416);
    assert.deepEqual(tag(bad.text, 'Code'), ['InvalidRange']);
    const o = await s3(f.port, { path: '/bkt/r?response-content-type=text%2Fplain&response-content-disposition=attachment' });
    assert.equal(o.headers['content-type'], 'text/plain');
    assert.equal(o.headers['content-disposition'], 'attachment');
  });

  test('payload integrity: signed SHA-256 mismatch and Content-MD5 mismatch refuse the object; UNSIGNED-PAYLOAD works', async () => {
    const signed = signS3(f.port, { method: 'PUT', path: '/bkt/integrity', body: 'good body' });
    const r = await http(f.port, { ...signed, body: 'evil body' });
    assert.equal(r.status, 400);
    assert.deepEqual(tag(r.text, 'Code'), ['XAmzContentSHA256Mismatch']);
    const md5 = createHash('md5').update('other').digest('base64');
    assert.equal((await s3(f.port, { method: 'PUT', path: '/bkt/integrity', body: 'good body', headers: { 'content-md5': md5 } })).status, 400);
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/bkt/integrity' })).status, 404);
    const u = await s3(f.port, { method: 'PUT', path: '/bkt/integrity', body: 'unsigned', headers: { 'content-md5': createHash('md5').update('unsigned').digest('base64') } }, { payloadHash: 'UNSIGNED-PAYLOAD' });
    assert.equal(u.status, 200);
    assert.equal((await s3(f.port, { path: '/bkt/integrity' })).text, 'unsigned');
  });

  test('If-None-Match: * on PUT is 412 when the key exists', async () => {
    await s3(f.port, { method: 'PUT', path: '/bkt/once', body: '1' });
    assert.equal((await s3(f.port, { method: 'PUT', path: '/bkt/once', body: '2', headers: { 'if-none-match': '*' } })).status, 412);
    assert.equal((await s3(f.port, { path: '/bkt/once' })).text, '1');
  });

  test('aws-chunked with chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD); a tampered chunk is 403', async () => {
    const chunks = [randomBytes(70_000), randomBytes(12_345)];
    const whole = Buffer.concat(chunks);
    const build = (tamper: boolean): ReturnType<typeof signS3> => {
      const date = new Date();
      const base = signS3(
        f.port,
        { method: 'PUT', path: '/bkt/chunked-signed', headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(whole.length) } },
        { payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', date },
      );
      const h = base.headers as Record<string, string>;
      const amzDate = h['x-amz-date']!;
      const scope = `${amzDate.slice(0, 8)}/${REGION}/s3/aws4_request`;
      let prev = /Signature=([0-9a-f]{64})/.exec(h['authorization']!)![1]!;
      const hm = (k: Buffer | string, d: string): Buffer => createHmac('sha256', k).update(d).digest();
      const key = hm(hm(hm(hm('AWS4' + KEY, amzDate.slice(0, 8)), REGION), 's3'), 'aws4_request');
      const sha = (d: Buffer): string => createHash('sha256').update(d).digest('hex');
      const parts: Buffer[] = [];
      for (const c of [...chunks, Buffer.alloc(0)]) {
        const sig = createHmac('sha256', key).update(['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, prev, sha(Buffer.alloc(0)), sha(c)].join('\n')).digest('hex');
        prev = sig;
        const data = tamper && c.length === 12_345 ? Buffer.from(c).fill(1, 0, 1) : c;
        parts.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`), data, Buffer.from('\r\n'));
      }
      return { ...base, body: Buffer.concat(parts) };
    };
    const bad = await http(f.port, build(true));
    assert.equal(bad.status, 403);
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/bkt/chunked-signed' })).status, 404);
    const ok = await http(f.port, build(false));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers.etag, `"${md5hex(whole)}"`);
    assert.deepEqual((await s3(f.port, { path: '/bkt/chunked-signed' })).body, whole);
  });

  test('aws-chunked unsigned with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER); a wrong CRC is 400', async () => {
    const data = randomBytes(50_000);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(data));
    const body = (c: string): Buffer => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${c}\r\n\r\n`)]);
    const headers = { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length), 'x-amz-trailer': 'x-amz-checksum-crc32' };
    const opts = { payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' };
    const bad = await http(f.port, { ...signS3(f.port, { method: 'PUT', path: '/bkt/trailer', headers }, opts), body: body('AAAAAA==') });
    assert.equal(bad.status, 400);
    const ok = await http(f.port, { ...signS3(f.port, { method: 'PUT', path: '/bkt/trailer', headers }, opts), body: body(crc.toString('base64')) });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual((await s3(f.port, { path: '/bkt/trailer' })).body, data);
  });

  test('presigned GET works until it expires', async () => {
    await s3(f.port, { method: 'PUT', path: '/bkt/shared', body: 'shared' });
    assert.equal((await http(f.port, { path: presign(f.port, '/bkt/shared', 60) })).text, 'shared');
    const old = presign(f.port, '/bkt/shared', 60, { date: new Date(Date.now() - 120_000) });
    assert.equal((await http(f.port, { path: old })).status, 403);
    const altered = presign(f.port, '/bkt/shared', 60).replace('/bkt/shared', '/bkt/other');
    assert.equal((await http(f.port, { path: altered })).status, 403);
  });

  test('CopyObject (COPY and REPLACE metadata) and DeleteObjects', async () => {
    await s3(f.port, { method: 'PUT', path: '/bkt/c/src', body: 'copy me', headers: { 'x-amz-meta-a': '1' } });
    const c1 = await s3(f.port, { method: 'PUT', path: '/bkt/c/dst1', headers: { 'x-amz-copy-source': '/bkt/c/src' } });
    assert.equal(c1.status, 200, c1.text);
    assert.equal(unq(tag(c1.text, 'ETag')[0]!), `"${md5hex('copy me')}"`);
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/bkt/c/dst1' })).headers['x-amz-meta-a'], '1');
    await s3(f.port, { method: 'PUT', path: '/bkt/c/dst2', headers: { 'x-amz-copy-source': 'bkt/c/src', 'x-amz-metadata-directive': 'REPLACE', 'x-amz-meta-b': '2' } });
    const h2 = await s3(f.port, { method: 'HEAD', path: '/bkt/c/dst2' });
    assert.equal(h2.headers['x-amz-meta-a'], undefined);
    assert.equal(h2.headers['x-amz-meta-b'], '2');
    assert.equal((await s3(f.port, { method: 'PUT', path: '/bkt/c/dst3', headers: { 'x-amz-copy-source': '/bkt/c/nothing' } })).status, 404);
    const xml = '<Delete><Object><Key>c/src</Key></Object><Object><Key>c/dst1</Key></Object><Object><Key>c/../x</Key></Object><Object><Key>c/absent</Key></Object></Delete>';
    const d = await s3(f.port, { method: 'POST', path: '/bkt?delete', body: xml, headers: { 'content-md5': createHash('md5').update(xml).digest('base64') } });
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(tag(d.text, 'Key').sort(), ['c/../x', 'c/absent', 'c/dst1', 'c/src']);
    assert.equal(tag(d.text, 'Error').length, 1, 'the traversal key is refused, the rest deleted');
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/bkt/c/src' })).status, 404);
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/bkt/c/dst2' })).status, 200);
  });

  test('DeleteObjects takes every key exactly as sent: spaces, dots, percent signs, entities and long UTF-8 are never trimmed or decoded', async () => {
    // Regression: keys were trimmed, so deleting ' x ' removed 'x' (an object the client did not name).
    assert.equal((await s3(f.port, { method: 'PUT', path: '/exact' })).status, 200);
    const longUtf8 = '\u00fc'.repeat(100) + '\u{1F600}'.repeat(13); // 252 bytes in one component
    const kept = ['_', 'x', 'y', 'A', 'a. .', '100%', 'sp/ace', ' sp/ace', '\u00fc'.repeat(127)];
    const doomed = [' ', '_ ', ' x ', '  y', '%41', '. .', '100% ', 'sp/ace ', '\t', longUtf8];
    const putable = [...kept, ...doomed.filter((k) => k !== '\t')];
    for (const k of putable) assert.equal((await s3(f.port, { method: 'PUT', path: `/exact/${awsEncode(k, true)}`, body: `body of [${k}]` })).status, 200, JSON.stringify(k));
    const entity = (k: string): string => [...k].map((ch) => (ch === ' ' || ch === '\t' || ch === '%' ? `&#x${ch.codePointAt(0)!.toString(16)};` : ch)).join('');
    // ' ' literal, '_ ' literal, ' x ' and '  y' as character references, the rest literal; '\t' cannot be a file name here.
    const xmlKeys = doomed.map((k, i) => (i === 2 || i === 3 || k === '\t' ? entity(k) : k));
    const xml = `<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xmlKeys.map((k) => `<Object><Key>${k}</Key></Object>`).join('')}</Delete>`;
    const d = await s3(f.port, { method: 'POST', path: '/exact?delete', body: xml, headers: { 'content-md5': createHash('md5').update(xml).digest('base64') } });
    assert.equal(d.status, 200, d.text);
    const deleted = tag(d.text, 'Deleted').map((b) => unq(tag(b, 'Key')[0]!));
    const errors = tag(d.text, 'Error').map((b) => unq(tag(b, 'Key')[0]!));
    assert.deepEqual(deleted.sort(), doomed.filter((k) => k !== '\t').sort(), 'each named key reported deleted, as named');
    assert.deepEqual(errors, ['\t'], 'the control-character key is an error of its own');
    // What is left, through both APIs: every kept key with its own body, none of the doomed ones.
    for (const k of kept) {
      const g = await s3(f.port, { path: `/exact/${awsEncode(k, true)}` });
      assert.equal(g.status, 200, JSON.stringify(k));
      assert.equal(g.text, `body of [${k}]`);
    }
    for (const k of doomed.filter((k) => k !== '\t')) assert.equal((await s3(f.port, { method: 'HEAD', path: `/exact/${awsEncode(k, true)}` })).status, 404, JSON.stringify(k));
    const sw = await swiftLogin(f.port);
    const listed = await swift(f.port, sw, 'GET', '/exact?format=json');
    assert.equal(listed.status, 200, listed.text);
    const names = (JSON.parse(listed.text) as Array<{ name: string }>).map((o) => o.name);
    assert.deepEqual(names.sort(), [...kept].sort(), 'the Swift listing holds exactly the keys not named');
  });
});

describe('ListObjects', () => {
  const keys = ['top', 'a/1', 'a/2', 'a/b/3', 'a/b/4', 'a/c/5', 'a.txt', 'b/x y+z', 'b/\u00fc', 'c/d/e/f', 'z\u{1F600}', 'z\uE000'];
  before(async () => {
    assert.equal((await s3(f.port, { method: 'PUT', path: '/lst' })).status, 200);
    for (const k of keys) assert.equal((await s3(f.port, { method: 'PUT', path: `/lst/${enc(k)}`, body: k })).status, 200, k);
  });

  function model(prefix: string, delimiter: string): string[] {
    const out: string[] = [];
    for (const k of [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))) {
      if (!k.startsWith(prefix)) continue;
      const i = delimiter ? k.indexOf(delimiter, prefix.length) : -1;
      const name = i >= 0 ? k.slice(0, i + delimiter.length) : k;
      if (out[out.length - 1] !== name) out.push(name);
    }
    return out;
  }

  async function listV2(prefix: string, delimiter: string, maxKeys: number): Promise<{ all: string[]; pages: number }> {
    const all: string[] = [];
    let token: string | undefined;
    let pages = 0;
    for (;;) {
      const q = [`list-type=2`, `max-keys=${maxKeys}`, `encoding-type=url`];
      if (prefix) q.push(`prefix=${encodeURIComponent(prefix)}`);
      if (delimiter) q.push(`delimiter=${encodeURIComponent(delimiter)}`);
      if (token) q.push(`continuation-token=${encodeURIComponent(token)}`);
      const r = await s3(f.port, { path: `/lst?${q.join('&')}` });
      assert.equal(r.status, 200, r.text);
      pages++;
      const keysHere = tag(r.text, 'Key').map((k) => decodeURIComponent(k.replace(/\+/g, ' ')));
      const prefixes = tag(r.text, 'CommonPrefixes').map((c) => decodeURIComponent(tag(c, 'Prefix')[0]!.replace(/\+/g, ' ')));
      assert.equal(Number(tag(r.text, 'KeyCount')[0]), keysHere.length + prefixes.length);
      all.push(...[...keysHere, ...prefixes].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
      if (tag(r.text, 'IsTruncated')[0] !== 'true') break;
      token = unq(tag(r.text, 'NextContinuationToken')[0]!);
      assert.ok(pages < 100);
    }
    return { all, pages };
  }

  test('v2 with prefix, delimiter and continuation tokens matches the model at every page size', async () => {
    for (const prefix of ['', 'a', 'a/', 'a/b', 'b/', 'z', 'nothing']) {
      for (const delimiter of ['', '/', 'b']) {
        for (const maxKeys of [1, 2, 5, 1000]) {
          const { all } = await listV2(prefix, delimiter, maxKeys);
          assert.deepEqual(all, model(prefix, delimiter), JSON.stringify({ prefix, delimiter, maxKeys }));
        }
      }
    }
  });

  test('v2 sizes and ETags; start-after; bad token 400', async () => {
    const r = await s3(f.port, { path: '/lst?list-type=2&prefix=a%2Fb%2F' });
    assert.deepEqual(tag(r.text, 'Size'), ['5', '5']);
    assert.deepEqual(tag(r.text, 'ETag').map(unq), [`"${md5hex('a/b/3')}"`, `"${md5hex('a/b/4')}"`]);
    const sa = await s3(f.port, { path: '/lst?list-type=2&start-after=b%2F' });
    assert.deepEqual(tag(sa.text, 'Key')[0], 'b/x y+z');
    assert.equal((await s3(f.port, { path: '/lst?list-type=2&continuation-token=garbage' })).status, 400);
  });

  test('v1 with marker paging', async () => {
    const all: string[] = [];
    let marker = '';
    for (let i = 0; i < 50; i++) {
      const r = await s3(f.port, { path: `/lst?max-keys=3${marker ? `&marker=${encodeURIComponent(marker)}` : ''}` });
      const ks = tag(r.text, 'Key').map(unq);
      all.push(...ks);
      if (tag(r.text, 'IsTruncated')[0] !== 'true') break;
      marker = unq(tag(r.text, 'NextMarker')[0]!);
    }
    assert.deepEqual(all, model('', ''));
  });
});

describe('multipart upload', () => {
  const MiB = 1024 * 1024;
  async function create(key: string): Promise<string> {
    const r = await s3(f.port, { method: 'POST', path: `/bkt/${key}?uploads`, headers: { 'content-type': 'application/x-parts', 'x-amz-meta-kind': 'mpu' } });
    assert.equal(r.status, 200, r.text);
    return tag(r.text, 'UploadId')[0]!;
  }
  async function part(key: string, id: string, n: number, data: Buffer): Promise<string> {
    const r = await s3(f.port, { method: 'PUT', path: `/bkt/${key}?partNumber=${n}&uploadId=${id}`, body: data });
    assert.equal(r.status, 200, r.text);
    return String(r.headers.etag);
  }
  const completeXml = (parts: Array<[number, string]>): string =>
    `<CompleteMultipartUpload>${parts.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
  const complete = (key: string, id: string, parts: Array<[number, string]>): Promise<Resp> =>
    s3(f.port, { method: 'POST', path: `/bkt/${key}?uploadId=${id}`, body: completeXml(parts) });

  test('parts uploaded out of order complete into one file with the MD5 of the whole as ETag', async () => {
    const p1 = randomBytes(5 * MiB);
    const p2 = randomBytes(5 * MiB + 7);
    const p3 = randomBytes(1000);
    const id = await create('mp/joined.bin');
    const e3 = await part('mp/joined.bin', id, 3, p3);
    const e1 = await part('mp/joined.bin', id, 1, p1);
    const e2 = await part('mp/joined.bin', id, 2, p2);
    assert.equal(e1, `"${md5hex(p1)}"`);
    // parts are not objects
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/bkt/mp/joined.bin' })).status, 404);
    const r = await complete('mp/joined.bin', id, [[1, e1], [2, e2], [3, e3]]);
    assert.equal(r.status, 200, r.text);
    const whole = Buffer.concat([p1, p2, p3]);
    assert.equal(unq(tag(r.text, 'ETag')[0]!), `"${md5hex(whole)}"`);
    const g = await s3(f.port, { path: '/bkt/mp/joined.bin' });
    assert.equal(g.headers['content-type'], 'application/x-parts');
    assert.equal(g.headers['x-amz-meta-kind'], 'mpu');
    assert.ok(g.body.equals(whole));
    const a = await f.fs.lookupPath(root, 'bkt/mp/joined.bin');
    assert.equal(a.size, whole.length);
    // the upload is gone, and was never visible
    assert.equal((await complete('mp/joined.bin', id, [[1, e1]])).status, 404);
    const l = await s3(f.port, { path: '/' });
    assert.ok(!l.text.includes('.silt-objapi'), l.text);
  });

  test('completion errors: too small, wrong ETag, wrong order, unknown upload, wrong key; abort', async () => {
    const small = randomBytes(1000);
    const id = await create('mp/bad');
    const e1 = await part('mp/bad', id, 1, small);
    const e2 = await part('mp/bad', id, 2, small);
    const codeOf = async (p: Promise<Resp>): Promise<string> => tag((await p).text, 'Code')[0] ?? '';
    assert.equal(await codeOf(complete('mp/bad', id, [[1, e1], [2, e2]])), 'EntityTooSmall');
    assert.equal(await codeOf(complete('mp/bad', id, [[1, `"${md5hex('x')}"`]])), 'InvalidPart');
    assert.equal(await codeOf(complete('mp/bad', id, [[2, e2], [1, e1]])), 'InvalidPartOrder');
    assert.equal(await codeOf(complete('mp/bad', id, [[4, e1]])), 'InvalidPart');
    assert.equal(await codeOf(complete('mp/bad', '0'.repeat(32), [[1, e1]])), 'NoSuchUpload');
    assert.equal(await codeOf(complete('mp/other', id, [[1, e1]])), 'NoSuchUpload');
    assert.equal((await s3(f.port, { method: 'PUT', path: `/bkt/mp/bad?partNumber=0&uploadId=${id}`, body: 'x' })).status, 400);
    assert.equal((await s3(f.port, { method: 'PUT', path: `/bkt/mp/bad?partNumber=10001&uploadId=${id}`, body: 'x' })).status, 400);
    // a single small part is fine (the last part may be small)
    assert.equal((await complete('mp/bad', id, [[2, e2]])).status, 200);
    assert.deepEqual((await s3(f.port, { path: '/bkt/mp/bad' })).body, small);
    const id2 = await create('mp/aborted');
    await part('mp/aborted', id2, 1, small);
    assert.equal((await s3(f.port, { method: 'DELETE', path: `/bkt/mp/aborted?uploadId=${id2}` })).status, 204);
    assert.equal((await s3(f.port, { method: 'DELETE', path: `/bkt/mp/aborted?uploadId=${id2}` })).status, 404);
    const uploads = await f.fs.lookupPath(root, '.silt-objapi-uploads');
    const left = (await f.fs.readdir(root, uploads.ino, 0n, 100)).filter((e) => e.name !== '.' && e.name !== '..');
    assert.deepEqual(left.map((e) => e.name), []);
  });
});

describe('another S3 client: the objstore S3Store', () => {
  test('open (bucket probe, conditional-create probe), put, get ranges, list, multipart putStream, delete', async () => {
    const store = await S3Store.open({ endpoint: f.url, bucket: 'store-check', accessKeyId: USER, secretAccessKey: KEY, region: REGION, partSizeBytes: 5 * 1024 * 1024 });
    try {
      assert.equal(store.capabilities.conditionalCreate, true, 'If-None-Match: * is honoured');
      await store.put('seg/one', Buffer.from('first object'));
      assert.equal(Buffer.from(await store.get('seg/one')).toString(), 'first object');
      assert.equal(Buffer.from(await store.get('seg/one', { offset: 6, length: 6 })).toString(), 'object');
      await assert.rejects(store.put('seg/one', Buffer.from('again'), { ifNoneMatch: true }));
      const big = randomBytes(11 * 1024 * 1024 + 3);
      const w = await store.putStream('seg/big');
      for (let o = 0; o < big.length; o += 1024 * 1024) await w.write(big.subarray(o, o + 1024 * 1024));
      await w.close();
      assert.ok(Buffer.from(await store.get('seg/big')).equals(big));
      const page = await store.list('seg/');
      assert.deepEqual(page.objects.map((o) => o.key), ['seg/big', 'seg/one']);
      assert.equal((await store.head('seg/big'))?.size, big.length);
      await store.delete('seg/one');
      assert.equal(await store.head('seg/one'), null);
    } finally {
      await store.close();
    }
  });
});
