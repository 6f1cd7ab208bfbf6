/**
 * The admin server in process, over a memory store, without a browser: who gets in (session
 * cookie, HTTP Basic with a Swift-style "account:user", nothing else), CSRF and Origin checks on
 * every change, snapshot create/delete through the JSON API, one job per kind, directory paging,
 * path checks, escaping of hostile names in the HTML, and downloads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startAdminServer, type AdminServer } from '../../src/admin/index.ts';
import { openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';

const USER = 'acct:ops';
const KEY = 'k3y:with:colons';
const BASIC = { authorization: `Basic ${Buffer.from(`${USER}:${KEY}`).toString('base64')}` };

async function setup(): Promise<{ fs: SiltFileSystem; admin: AdminServer; base: string; data: Buffer }> {
  const fs = await openFileSystem({ store: new MemoryStore(), create: true, gcIntervalMs: 0, flushIntervalMs: 0 });
  const dir = await fs.mkdir(root, 1, 'd', 0o755);
  for (let i = 0; i < 7; i++) await fs.create(root, dir.ino, `f${i}`, 0o644);
  await fs.create(root, 1, '<img src=x onerror=alert(1)>.txt', 0o644);
  const f = await fs.create(root, 1, 'data.bin', 0o644);
  const data = randomBytes(2 * 1024 * 1024 + 123);
  await fs.write(root, f.ino, 0, data);
  await fs.sync();
  const admin = await startAdminServer({ fs, volume: 'default', listen: { host: '127.0.0.1', port: 0 }, credentials: [{ user: USER, key: KEY }], gcGraceMs: 100, sampleIntervalMs: 100 });
  return { fs, admin, base: admin.url, data };
}

test('admin API: authentication, CSRF, snapshots, jobs, browse, download', { timeout: 60_000 }, async () => {
  const { fs, admin, base, data } = await setup();
  try {
    // Nothing without credentials.
    assert.equal((await fetch(`${base}/api/overview`)).status, 401);
    const page = await fetch(`${base}/jobs`, { redirect: 'manual' });
    assert.equal(page.status, 303);
    assert.equal(page.headers.get('location'), '/login?next=%2Fjobs');
    const badBasic = { authorization: `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}` };
    assert.equal((await fetch(`${base}/api/overview`, { headers: badBasic })).status, 401);

    // Login form: a wrong key gets 401, a right one a session cookie and the page asked for.
    const form = (user: string, key: string): RequestInit => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user, key, next: '/jobs' }).toString(),
      redirect: 'manual',
    });
    assert.equal((await fetch(`${base}/login`, form(USER, 'wrong'))).status, 401);
    const ok = await fetch(`${base}/login`, form(USER, KEY));
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/jobs');
    const setCookie = ok.headers.get('set-cookie') ?? '';
    assert.match(setCookie, new RegExp(`^silt_admin_${admin.address.port}=[A-Za-z0-9_-]{43};.*HttpOnly.*SameSite=Strict`));
    const cookie = { cookie: setCookie.split(';')[0]! };
    const offsite = await fetch(`${base}/login`, { ...form(USER, KEY), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' } });
    assert.equal(offsite.status, 403, 'a login posted from another site is refused');

    // The CSRF token differs per session and per Basic user, and every change needs it.
    const csrfOf = async (h: Record<string, string>): Promise<string> => ((await (await fetch(`${base}/api/csrf`, { headers: h })).json()) as { csrf: string }).csrf;
    const sessionCsrf = await csrfOf(cookie);
    const basicCsrf = await csrfOf(BASIC);
    assert.notEqual(sessionCsrf, basicCsrf);
    const post = (h: Record<string, string>, body: unknown, extra: Record<string, string> = {}): Promise<Response> =>
      fetch(`${base}/api/snapshots`, { method: 'POST', headers: { ...h, 'content-type': 'application/json', ...extra }, body: JSON.stringify(body) });
    assert.equal((await post(cookie, { name: 'a' })).status, 403, 'no token');
    assert.equal((await post(cookie, { name: 'a' }, { 'x-silt-csrf': basicCsrf })).status, 403, "another caller's token");
    assert.equal((await post(cookie, { name: 'a' }, { 'x-silt-csrf': sessionCsrf, origin: 'http://evil.example' })).status, 403, 'foreign Origin');
    assert.equal(fs.volume.snapshots.length, 0, 'nothing refused changed anything');
    const created = await post(cookie, { name: 'a' }, { 'x-silt-csrf': sessionCsrf });
    assert.equal(created.status, 201);
    assert.equal(((await created.json()) as { name: string }).name, 'a');
    assert.equal((await post(BASIC, { name: 'a' }, { 'x-silt-csrf': basicCsrf })).status, 409, 'exists');
    assert.equal((await post(BASIC, { name: '../x' }, { 'x-silt-csrf': basicCsrf })).status, 400, 'bad name');
    assert.deepEqual(fs.volume.snapshots.map((s) => s.name), ['a']);
    const del = (name: string, h: Record<string, string>): Promise<Response> => fetch(`${base}/api/snapshots/${name}`, { method: 'DELETE', headers: h });
    assert.equal((await del('a', BASIC)).status, 403, 'DELETE needs the token too');
    assert.equal((await del('a', { ...BASIC, 'x-silt-csrf': basicCsrf })).status, 200);
    assert.equal((await del('a', { ...BASIC, 'x-silt-csrf': basicCsrf })).status, 404);
    assert.deepEqual(fs.volume.snapshots, []);

    // One job per kind at a time; both kinds may run together; reports at the end.
    const gc = admin.jobs.start('gc', { dryRun: false, utilization: 0.5 }, 'test');
    assert.throws(() => admin.jobs.start('gc', { dryRun: true, utilization: 0 }, 'test'), /EBUSY/);
    const fsckRes = await fetch(`${base}/api/jobs`, { method: 'POST', headers: { ...BASIC, 'x-silt-csrf': basicCsrf, 'content-type': 'application/json' }, body: '{"kind":"fsck"}' });
    assert.equal(fsckRes.status, 202);
    const fsckId = ((await fsckRes.json()) as { id: number }).id;
    const badKind = await fetch(`${base}/api/jobs`, { method: 'POST', headers: { ...BASIC, 'x-silt-csrf': basicCsrf, 'content-type': 'application/json' }, body: '{"kind":"scrub"}' });
    assert.equal(badKind.status, 400);
    const until = Date.now() + 20_000;
    while ((admin.jobs.get(gc.id).state === 'running' || admin.jobs.get(fsckId).state === 'running') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.equal(admin.jobs.get(gc.id).state, 'succeeded', admin.jobs.get(gc.id).error ?? '');
    const fsckJob = (await (await fetch(`${base}/api/jobs/${fsckId}`, { headers: BASIC })).json()) as { state: string; report: { clean: boolean; stats: { files: number } } };
    assert.equal(fsckJob.state, 'succeeded');
    assert.equal(fsckJob.report.clean, true);
    assert.equal(fsckJob.report.stats.files, 9);
    assert.equal((await fetch(`${base}/api/jobs/999`, { headers: BASIC })).status, 404);

    // Directory paging: every entry exactly once across pages.
    const names: string[] = [];
    let cookieParam = '';
    for (let pages = 0; pages < 10; pages++) {
      const r = (await (await fetch(`${base}/api/browse?path=/d&limit=3${cookieParam}`, { headers: BASIC })).json()) as { entries: Array<{ name: string }>; nextCookie: string | null };
      assert.ok(r.entries.length <= 3);
      names.push(...r.entries.map((e) => e.name));
      if (!r.nextCookie) break;
      cookieParam = `&cookie=${r.nextCookie}`;
    }
    assert.deepEqual(names.sort(), ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6']);
    assert.equal((await fetch(`${base}/api/browse?path=/d/../etc`, { headers: BASIC })).status, 400, '.. is refused');
    assert.equal((await fetch(`${base}/api/browse?path=/nothing`, { headers: BASIC })).status, 404);
    assert.equal((await fetch(`${base}/api/download?path=/d`, { headers: BASIC })).status, 400, 'a directory is not downloadable');

    // A hostile name is escaped in the HTML; the CSP allows only nonce'd inline script.
    const html = await fetch(`${base}/browse?path=/`, { headers: BASIC });
    const text = await html.text();
    assert.ok(!text.includes('<img src=x'), 'the name is escaped');
    assert.ok(text.includes('&lt;img src=x onerror=alert(1)&gt;.txt'));
    assert.match(html.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'nonce-/);

    // Download: every byte, in order, with a length and an attachment name.
    const dl = await fetch(`${base}/download?path=/data.bin`, { headers: BASIC });
    assert.equal(dl.status, 200);
    assert.equal(dl.headers.get('content-length'), String(data.length));
    assert.match(dl.headers.get('content-disposition') ?? '', /^attachment; filename="data.bin"/);
    assert.ok(Buffer.from(await dl.arrayBuffer()).equals(data));
    const file = (await (await fetch(`${base}/api/browse?path=/data.bin`, { headers: BASIC })).json()) as { extents: Array<{ length: number; object: string }>; segments: Array<{ bytes: number }> };
    assert.equal(file.extents.reduce((n, e) => n + e.length, 0), data.length);
    assert.equal(file.segments.reduce((n, s) => n + s.bytes, 0), data.length);
    for (const e of file.extents) assert.ok(await fs.volume.store.head(e.object), `${e.object} exists`);

    // Logging out ends the session on the server.
    const out = await fetch(`${base}/logout`, { method: 'POST', headers: { ...cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${encodeURIComponent(sessionCsrf)}`, redirect: 'manual' });
    assert.equal(out.status, 303);
    assert.equal((await fetch(`${base}/api/overview`, { headers: cookie })).status, 401);
  } finally {
    await admin.close();
    await fs.close();
  }
});
