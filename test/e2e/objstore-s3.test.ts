/**
 * S3Store against the S3 layer (s3api) of a real Swift all-in-one on loopback. Swift 2.30's s3api
 * answers a conditional PutObject with 501, so the store must find at open that conditional
 * create is unsupported, say so in its capabilities, and refuse (or, opted in, emulate) it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { conformanceCases, assertBytes, assertStoreError } from '../integration/objstore-conformance.ts';
import { S3Store, parseS3Url, signV4 } from '../../src/objstore/s3.ts';
import { openStore } from '../../src/objstore/url.ts';
import '../../src/objstore/remote.ts';
import { Random, StoreError } from '../../src/util/index.ts';
import { ensureSwift, purgeInBackground, runPrefix, type LocalSwift } from '../support/swift.ts';

const BUCKET = 'silt-e2e-s3';
const MiB = 1024 * 1024;

let local: LocalSwift;
let store: S3Store;
const prefix = runPrefix('s3');

function open(extra: Partial<Parameters<typeof S3Store.open>[0]> = {}): Promise<S3Store> {
  return S3Store.open({ endpoint: local.endpoint, bucket: BUCKET, accessKeyId: local.user, secretAccessKey: local.key, ...extra });
}

before(async () => {
  local = await ensureSwift();
  store = await open();
});

after(async () => {
  await store?.close();
  if (local !== undefined) purgeInBackground(local, [BUCKET, `${BUCKET}+segments`], prefix);
});

describe('conformance: S3Store (Swift s3api)', () => {
  for (const [i, c] of conformanceCases.entries()) {
    test(c.name, () => c.run(store, `${prefix}case${String(i).padStart(2, '0')}/`));
  }
});

describe('S3Store', () => {
  test('SigV4 matches the AWS documentation example (GET object with a range)', () => {
    // From the S3 SigV4 docs ("Example: GET Object"): same inputs, same signature.
    const headers: Record<string, string> = { range: 'bytes=0-9' };
    signV4('GET', new URL('https://examplebucket.s3.amazonaws.com/test.txt'), headers, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', {
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      region: 'us-east-1',
      service: 's3',
    }, new Date('2013-05-24T00:00:00Z'));
    assert.equal(
      headers['authorization'],
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  test('store URL: bucket from the path, credentials and region from env, via openStore', async () => {
    const o = parseS3Url('s3+http://127.0.0.1:8080/b1?region=eu-west-3', { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 's' });
    assert.deepEqual([o.endpoint, o.bucket, o.accessKeyId, o.secretAccessKey, o.region], ['http://127.0.0.1:8080', 'b1', 'a', 's', 'eu-west-3']);
    assert.equal(parseS3Url('s3+https://h/b', { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 's' }).region, 'us-east-1');
    assert.throws(() => parseS3Url('s3+http://h:1/', { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 's' }), StoreError);
    assert.throws(() => parseS3Url('s3+http://h:1/b', {}), (e: unknown) => e instanceof StoreError && e.kind === 'auth');

    const saved = { a: process.env['AWS_ACCESS_KEY_ID'], s: process.env['AWS_SECRET_ACCESS_KEY'] };
    process.env['AWS_ACCESS_KEY_ID'] = local.user;
    process.env['AWS_SECRET_ACCESS_KEY'] = local.key;
    try {
      const s = await openStore(`${local.s3Base}/${BUCKET}`);
      try {
        assert.equal(s.capabilities.conditionalCreate, false);
        await s.put(`${prefix}via-url`, new Uint8Array([5]));
        assertBytes(await store.get(`${prefix}via-url`), new Uint8Array([5]));
      } finally {
        await s.close();
      }
    } finally {
      for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.a], ['AWS_SECRET_ACCESS_KEY', saved.s]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test('the probe at open finds that s3api refuses conditional PUTs (501), and leaves no probe object', async () => {
    assert.equal(store.capabilities.conditionalCreate, false);
    assert.match(store.conditionalCreateNote, /501/);
    assert.match(store.capabilities.description, /no conditional create/);
    assert.deepEqual((await store.list('.silt-probe/')).objects, []);
    // Forcing the capability on makes the server's refusal visible as 'unsupported'.
    const forced = await open({ conditionalCreate: true });
    try {
      await assertStoreError(forced.put(`${prefix}forced`, new Uint8Array(1), { ifNoneMatch: true }), 'unsupported');
      assert.equal(await forced.head(`${prefix}forced`), null);
    } finally {
      await forced.close();
    }
  });

  test('weak conditional create (opt-in): HEAD then PUT, by put and by putStream', async () => {
    const weak = await open({ weakConditionalCreate: true, partSizeBytes: 5 * MiB });
    try {
      assert.equal(weak.capabilities.conditionalCreate, false, 'still not atomic');
      assert.match(weak.capabilities.description, /weak/);
      const key = `${prefix}weak/lease`;
      await weak.put(key, new Uint8Array([1]), { ifNoneMatch: true });
      await assertStoreError(weak.put(key, new Uint8Array([2]), { ifNoneMatch: true }), 'precondition_failed');
      await assertStoreError(
        (async () => {
          const w = await weak.putStream(key, { ifNoneMatch: true });
          await w.write(new Uint8Array(6 * MiB));
          await w.close();
        })(),
        'precondition_failed',
      );
      assertBytes(await weak.get(key), new Uint8Array([1]));
      const w = await weak.putStream(`${prefix}weak/new`, { ifNoneMatch: true });
      await w.write(new Uint8Array(10));
      assert.equal((await w.close()).size, 10);
    } finally {
      await weak.close();
    }
  });

  test('a wrong secret is an auth error', async () => {
    await assert.rejects(open({ secretAccessKey: 'wrong' }), (e: unknown) => e instanceof StoreError && e.kind === 'auth' && !e.retryable);
  });

  test('multipart: a 17 MiB stream in 5 MiB parts, written in odd-sized chunks, reads back exactly', async () => {
    const s = await open({ partSizeBytes: 5 * MiB, partsInFlight: 3 });
    try {
      const data = new Random(11).bytes(17 * MiB + 333);
      const w = await s.putStream(`${prefix}mp`);
      for (let off = 0; off < data.length; ) {
        const n = 1 + ((off * 7919) % 700_000);
        await w.write(data.subarray(off, off + n));
        off += n;
      }
      const info = await w.close();
      assert.equal(info.size, data.length);
      assert.match(info.etag ?? '', /-4$/, 'four parts');
      const md5s = [0, 1, 2, 3].map((i) => createHash('md5').update(data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)).digest());
      assert.equal(info.etag, `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-4`);
      assertBytes(await s.get(`${prefix}mp`), data);
      assertBytes(await s.get(`${prefix}mp`, { offset: 5 * MiB - 10, length: 20 }), data.subarray(5 * MiB - 10, 5 * MiB + 10), 'across a part boundary');
      // An aborted multipart upload leaves nothing.
      const a = await s.putStream(`${prefix}mp-aborted`);
      await a.write(data.subarray(0, 11 * MiB));
      await a.abort();
      assert.equal(await s.head(`${prefix}mp-aborted`), null);
    } finally {
      await s.close();
    }
  });

  test('list fills a page across server pages and pages with after (start-after)', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `${prefix}pages/${String(i).padStart(3, '0')}`);
    await Promise.all(keys.map((k) => store.put(k, new Uint8Array([1]))));
    const first = await store.list(`${prefix}pages/`, { limit: 12 });
    assert.deepEqual(first.objects.map((o) => o.key), keys.slice(0, 12));
    assert.equal(first.next, keys[11]);
    const rest = await store.list(`${prefix}pages/`, { after: first.next as string, limit: 1000 });
    assert.deepEqual(rest.objects.map((o) => o.key), keys.slice(12));
    assert.equal(rest.next, undefined);
    // More than one server page (s3api caps max-keys at 1000): followed with continuation tokens.
    const many = conformanceCases.findIndex((c) => c.name.startsWith('list pages through 2,500 keys'));
    assert.ok(many >= 0);
    const big = await store.list(`${prefix}case${String(many).padStart(2, '0')}/many/`, { limit: 2200 });
    assert.equal(big.objects.length, 2200);
    assert.equal(big.next, big.objects[2199]?.key);
    assert.ok(big.objects.every((o, i) => i === 0 || (big.objects[i - 1] as { key: string }).key < o.key));
  });
});
