/**
 * Object API credentials: how `silt serve --http` builds its user list (repeated --http-user and
 * --http-key, or the configuration file's httpUser/httpKey lists, which fill the same options,
 * else SILT_HTTP_USER/SILT_HTTP_KEY), that every listed user can use both dialects, and that no
 * request gets in without one (no anonymous access: an API with no users refuses everything).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { http, s3, startFixture, swift, swiftLogin } from '../support/objapi-fixture.ts';
import { httpCredentials } from '../../src/cli/objapi.ts';

const cliError = (re: RegExp) => (e: unknown) => e instanceof Error && re.test(e.message);

test('httpCredentials: pairs by position from flags or lists, else the environment; refuses mismatches and nothing', () => {
  const env = { SILT_HTTP_USER: 'env:user', SILT_HTTP_KEY: 'env-key' };
  assert.deepEqual(httpCredentials({ httpUser: ['acc:alice', 'bob'], httpKey: ['ka', 'kb'] }, env), [
    { user: 'acc:alice', key: 'ka' },
    { user: 'bob', key: 'kb' },
  ]);
  assert.deepEqual(httpCredentials({ httpUser: 'one', httpKey: 'k1' }, {}), [{ user: 'one', key: 'k1' }]);
  // commander's default for the repeatable flags is [], which means "not given"
  assert.deepEqual(httpCredentials({ httpUser: [], httpKey: [] }, env), [{ user: 'env:user', key: 'env-key' }]);
  assert.deepEqual(httpCredentials({}, { SILT_HTTP_USER: 'a, b', SILT_HTTP_KEY: 'x,y' }), [
    { user: 'a', key: 'x' },
    { user: 'b', key: 'y' },
  ]);
  assert.throws(() => httpCredentials({}, {}), cliError(/no anonymous access/));
  assert.throws(() => httpCredentials({ httpUser: [], httpKey: [] }, {}), cliError(/needs credentials/));
  assert.throws(() => httpCredentials({ httpUser: ['a', 'b'], httpKey: ['k'] }, {}), cliError(/2 users but 1 keys/));
  assert.throws(() => httpCredentials({ httpUser: ['a'], httpKey: [] }, env), cliError(/needs credentials/));
  assert.throws(() => httpCredentials({ httpUser: ['a', 'a'], httpKey: ['k', 'l'] }, {}), cliError(/given twice/));
  assert.throws(() => httpCredentials({ httpUser: ['a b'], httpKey: ['k'] }, {}), cliError(/spaces/));
});

test('every configured user works in both dialects; each key only for its own user', async () => {
  const f = await startFixture({ credentials: httpCredentials({ httpUser: ['acc:alice', 'bob'], httpKey: ['alice-key', 'bob-key'] }, {}) });
  try {
    const a = await swiftLogin(f.port, 'acc:alice', 'alice-key');
    const b = await swiftLogin(f.port, 'bob', 'bob-key');
    assert.equal((await swift(f.port, a, 'PUT', '/shared')).status, 201);
    assert.equal((await swift(f.port, b, 'PUT', '/shared/from-bob', {}, 'b')).status, 201);
    await assert.rejects(swiftLogin(f.port, 'bob', 'alice-key'), /401/);
    const viaS3 = await s3(f.port, { path: '/shared/from-bob' }, { accessKey: 'acc:alice', secret: 'alice-key' });
    assert.equal(viaS3.status, 200);
    assert.equal(viaS3.text, 'b');
    assert.equal((await s3(f.port, { path: '/shared/from-bob' }, { accessKey: 'bob', secret: 'bob-key' })).status, 200);
    assert.equal((await s3(f.port, { path: '/shared/from-bob' }, { accessKey: 'bob', secret: 'alice-key' })).status, 403);
    assert.equal((await s3(f.port, { path: '/shared/from-bob' }, { accessKey: 'carol', secret: 'bob-key' })).status, 403);
  } finally {
    const r = await f.close();
    assert.ok(r.clean, r.problems.join('\n'));
  }
});

test('no anonymous access: without credentials every request is refused', async () => {
  const f = await startFixture({ credentials: [] });
  try {
    assert.equal((await http(f.port, { path: '/auth/v1.0', headers: { 'x-auth-user': '', 'x-auth-key': '' } })).status, 401);
    assert.equal((await http(f.port, { path: '/auth/v1.0' })).status, 401);
    assert.equal((await http(f.port, { path: '/v1/AUTH_default' })).status, 401, 'Swift account without a token');
    assert.equal((await http(f.port, { path: '/v1/AUTH_default/c/o' })).status, 401, 'Swift object without a token');
    assert.equal((await http(f.port, { path: '/' })).status, 403, 'S3 ListBuckets unsigned');
    assert.equal((await http(f.port, { method: 'PUT', path: '/bkt' })).status, 403, 'S3 CreateBucket unsigned');
    assert.equal((await http(f.port, { method: 'PUT', path: '/bkt/o', body: 'x' })).status, 403, 'S3 PutObject unsigned');
    assert.equal((await s3(f.port, { path: '/' })).status, 403, 'S3 signed by a user the server does not have');
  } finally {
    const r = await f.close();
    assert.ok(r.clean, r.problems.join('\n'));
  }
});
