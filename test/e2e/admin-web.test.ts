/**
 * The admin pages end to end: a real `silt serve --admin` process on a local store holding a few
 * files, driven by headless Debian Chromium through playwright-core. It logs in, checks the
 * overview against `silt stat --json`, runs gc from the page and watches it finish without a
 * reload, creates and deletes a snapshot (confirmed, and seen by `silt snapshot list`), browses to
 * a file, checks its extents name segment objects that exist, and downloads it (bytes equal).
 * Requests without credentials (or without a CSRF token) are refused at the HTTP level too, and
 * every JSON endpoint answers to HTTP Basic. Screenshots go to test-results/admin/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { openFileSystem, rootIdentity as root } from '../../src/fs/index.ts';
import { Volume } from '../../src/headhunter/index.ts';
import { openStore } from '../../src/objstore/index.ts';

const SILT = new URL('../../bin/silt.mjs', import.meta.url).pathname;
const SHOTS = new URL('../../test-results/admin/', import.meta.url).pathname;
const CHROMIUM = '/usr/bin/chromium';
const USER = 'ops:admin';
const KEY = 'admin-page-secret';
const BASIC = `Basic ${Buffer.from(`${USER}:${KEY}`).toString('base64')}`;

interface StatJson {
  volume: string;
  volumeId: string;
  commitSeq: number;
  inodes: number;
  segments: number;
  liveBytes: number;
  storedObjects: number;
  storedBytes: number;
  owner: { pid: number; state: string } | 'unknown';
}

/** Run the silt command to completion; its stdout. */
async function silt(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [SILT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `silt ${args.join(' ')} failed: ${err}`);
  return out;
}

/** A volume with a directory tree, a 1.5 MiB file (a data segment) and dead space for gc. */
async function populate(storeUrl: string, big: Buffer): Promise<void> {
  const store = await openStore(storeUrl, { create: true });
  const fs = await openFileSystem({ store, create: true, gcIntervalMs: 0 });
  const docs = await fs.mkdir(root, 1, 'docs', 0o755);
  await fs.mkdir(root, docs.ino, 'empty', 0o700);
  const f = await fs.create(root, docs.ino, 'big.bin', 0o644);
  await fs.write(root, f.ino, 0, big);
  const notes = await fs.create(root, 1, 'notes.txt', 0o600);
  // Rewritten three times, a commit each: the older commit segments end up holding nothing live.
  for (const round of [1, 2, 3]) {
    await fs.write(root, notes.ino, 0, Buffer.from(`round ${round} `.repeat(3000)));
    await fs.sync();
  }
  await fs.close();
  await store.close();
}

async function startServe(storeUrl: string): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null>; output: () => string }> {
  const env = { ...process.env, SILT_HTTP_USER: USER, SILT_HTTP_KEY: KEY };
  const child = spawn(process.execPath, [SILT, 'serve', '--store', storeUrl, '--listen', '127.0.0.1:0', '--token', 'rpc-token', '--admin', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const m = /admin pages for volume 'default' on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
    if (m) return { child, url: m[1]!, exited, output: () => out };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`silt serve --admin printed no admin line within 30 s (exit ${child.exitCode}):\n${out}`);
}

/** Snapshot names in the store's newest commit, read in this process (what a restart would see). */
async function durableSnapshots(storeUrl: string): Promise<string[]> {
  const store = await openStore(storeUrl);
  try {
    const v = await Volume.open(store, 'default', {});
    return v.snapshots.map((s) => s.name);
  } finally {
    await store.close();
  }
}

/** Objects under the volume's folder of a file: store. */
async function countObjects(dir: string): Promise<number> {
  let n = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else n++;
    }
  };
  await walk(join(dir, 'default'));
  return n;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function dataV(page: Page, key: string): Promise<string> {
  const v = await page.locator(`[data-k="${key}"]`).first().getAttribute('data-v');
  assert.ok(v !== null, `no data-v for ${key}`);
  return v;
}

test('admin pages: login, overview = silt stat, gc job, snapshots, browse and download; no access without credentials', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install the Debian chromium package (scripts/ensure-packages.sh does)`);
  const t0 = Date.now();
  const step = (what: string): void => console.log(`admin-web: ${((Date.now() - t0) / 1000).toFixed(1)} s ${what}`);
  const dir = await mkdtemp(join(tmpdir(), 'silt-admin-web-'));
  const storeUrl = `file:${dir}`;
  const big = randomBytes(1536 * 1024);
  await mkdir(SHOTS, { recursive: true });
  // Chromium starts while the volume is written and the server comes up (it takes seconds).
  const launching = chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  launching.catch(() => {}); // awaited below; a failure to launch fails the test there
  let serve: Awaited<ReturnType<typeof startServe>>;
  try {
    await populate(storeUrl, big);
    step('volume populated');
    serve = await startServe(storeUrl);
  } catch (err) {
    await (await launching.catch(() => undefined))?.close();
    throw err;
  }
  step(`silt serve --admin up at ${serve.url}`);
  const base = serve.url;
  let browser: Browser | undefined;
  try {
    // ---- HTTP level: nothing answers without credentials.
    const anon = await fetch(`${base}/`, { redirect: 'manual' });
    assert.equal(anon.status, 303);
    assert.match(anon.headers.get('location') ?? '', /^\/login\?next=/);
    const anonApi = await fetch(`${base}/api/overview`);
    assert.equal(anonApi.status, 401);
    assert.match(anonApi.headers.get('www-authenticate') ?? '', /^Basic /);
    const wrong = await fetch(`${base}/api/overview`, { headers: { authorization: `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}` } });
    assert.equal(wrong.status, 401);
    const anonDownload = await fetch(`${base}/download?path=%2Fdocs%2Fbig.bin`, { redirect: 'manual' });
    assert.equal(anonDownload.status, 303, 'a download without credentials is redirected to the login page, not served');
    const anonPost = await fetch(`${base}/api/snapshots`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"sneaky"}' });
    assert.equal(anonPost.status, 401);
    const noCsrf = await fetch(`${base}/api/snapshots`, { method: 'POST', headers: { authorization: BASIC, 'content-type': 'application/json' }, body: '{"name":"sneaky"}' });
    assert.equal(noCsrf.status, 403, 'Basic credentials alone do not make a POST: a CSRF token is needed');

    // ---- JSON endpoints with HTTP Basic (scripts).
    const api = async (path: string): Promise<Record<string, unknown>> => {
      const r = await fetch(`${base}${path}`, { headers: { authorization: BASIC } });
      assert.equal(r.status, 200, `${path}: ${r.status}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      return (await r.json()) as Record<string, unknown>;
    };
    assert.equal((await api('/api/csrf'))['user'], USER);
    assert.deepEqual(await api('/api/jobs'), { jobs: [] });
    assert.deepEqual(await api('/api/snapshots'), { snapshots: [] });
    const listing = (await api('/api/browse?path=%2Fdocs')) as { entries: Array<{ name: string; type: string }> };
    assert.deepEqual(listing.entries.map((e) => `${e.name}:${e.type}`).sort(), ['big.bin:file', 'empty:directory']);
    const apiOverview = (await api('/api/overview')) as { rates: { series: Record<string, unknown[]> } };
    assert.ok(Array.isArray(apiOverview.rates.series['storeRequestsPerSec']));

    step('HTTP-level checks done');
    // ---- The browser: a fresh profile, log in.
    browser = await launching;
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    await page.goto(`${base}/browse`);
    assert.match(page.url(), /\/login\?next=%2Fbrowse/, 'an unauthenticated page goes to the login form');
    await page.fill('#user', USER);
    await page.fill('#key', KEY);
    await shot(page, '01-login');
    await page.click('#login');
    assert.equal(new URL(page.url()).pathname, '/browse', 'login returns to the page asked for');
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name.startsWith('silt_admin_'));
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');

    step('logged in');
    // ---- Overview against `silt stat --json`.
    const compare = async (): Promise<string[]> => {
      const stat = JSON.parse(await silt(['stat', '--json', '--store', storeUrl])) as StatJson;
      await page.goto(`${base}/?fresh=1`);
      const diffs: string[] = [];
      for (const k of ['volumeId', 'commitSeq', 'inodes', 'segments', 'liveBytes', 'storedObjects', 'storedBytes'] as const) {
        const shown = await dataV(page, k);
        if (shown !== String(stat[k])) diffs.push(`${k}: page ${shown}, silt stat ${stat[k]}`);
      }
      const j = (await (await page.request.get(`${base}/api/overview`)).json()) as StatJson;
      for (const k of ['volumeId', 'commitSeq', 'inodes', 'segments', 'liveBytes', 'storedObjects', 'storedBytes'] as const) {
        if (j[k] !== stat[k]) diffs.push(`${k}: JSON ${j[k]}, silt stat ${stat[k]}`);
      }
      const pid = (x: StatJson): number | undefined => (x.owner === 'unknown' ? undefined : x.owner.pid);
      if (pid(j) !== serve.child.pid || pid(stat) !== serve.child.pid) diffs.push(`owner: JSON pid ${pid(j)}, silt stat pid ${pid(stat)}, server pid ${serve.child.pid}`);
      return diffs;
    };
    // The owner lease's heartbeat may land between the two listings; it cannot land twice in a row.
    let diffs = await compare();
    if (diffs.length) diffs = await compare();
    assert.deepEqual(diffs, [], 'the overview shows what silt stat --json says');
    assert.equal(await dataV(page, 'volume'), 'default');
    assert.equal(await page.locator('.chart svg polyline').count(), 6, 'six rate charts');
    // The live part refreshes itself (fragment HTML every 2 s).
    await page.waitForSelector('#live[data-refreshed]', { timeout: 6000 });
    await shot(page, '02-overview');
    step('overview matches silt stat');

    // ---- A gc from the page, followed live.
    await page.click('nav a[href="/jobs"]');
    await page.click('#start-gc');
    const job = page.locator('.job[data-kind="gc"]').first();
    assert.equal(await job.getAttribute('data-state'), 'running', 'the page shows the job running (grace period for reads in flight)');
    await shot(page, '03-jobs-running');
    const { csrf } = (await (await page.request.get(`${base}/api/csrf`)).json()) as { csrf: string };
    const second = await page.request.post(`${base}/api/jobs`, { headers: { 'x-silt-csrf': csrf }, data: { kind: 'gc' } });
    assert.equal(second.status(), 409, 'one gc at a time');
    await page.waitForSelector('.job[data-kind="gc"][data-state="succeeded"]', { timeout: 30_000 });
    const deleted = Number(await page.locator('.job[data-kind="gc"] [data-k="deleted"]').first().getAttribute('data-v'));
    assert.ok(deleted >= 1, `gc deleted ${deleted} objects; the rewritten file left dead commit segments`);
    await shot(page, '04-jobs-done');
    const jobsJson = (await (await page.request.get(`${base}/api/jobs`)).json()) as { jobs: Array<{ kind: string; state: string; report: { deleted: number } }> };
    assert.equal(jobsJson.jobs[0]!.state, 'succeeded');
    assert.equal(jobsJson.jobs[0]!.report.deleted, deleted);
    await page.goto(`${base}/?fresh=1`);
    assert.equal(await dataV(page, 'storedObjects'), String(await countObjects(dir)), 'the overview follows gc');
    step(`gc job done (deleted ${deleted})`);

    // ---- Snapshots: create, see it durable, delete with confirmation.
    await page.click('nav a[href="/snapshots"]');
    await page.fill('#snapshot-name', 'before-upgrade');
    await page.click('#create-snapshot');
    await page.waitForSelector('tr[data-snapshot="before-upgrade"]');
    assert.match(await page.locator('#message').innerText(), /Created snapshot before-upgrade/);
    assert.deepEqual(await durableSnapshots(storeUrl), ['before-upgrade'], 'the snapshot is durable in the store');
    await shot(page, '05-snapshots');
    await page.click('tr[data-snapshot="before-upgrade"] a.delete');
    assert.match(await page.locator('h1').innerText(), /Delete snapshot before-upgrade\?/);
    await shot(page, '06-snapshot-confirm');
    await page.click('#cancel');
    assert.equal(await page.locator('tr[data-snapshot="before-upgrade"]').count(), 1, 'cancel keeps it');
    await page.click('tr[data-snapshot="before-upgrade"] a.delete');
    await page.click('#confirm-delete');
    await page.waitForSelector('#message');
    assert.equal(await page.locator('tr[data-snapshot="before-upgrade"]').count(), 0);
    assert.deepEqual(await durableSnapshots(storeUrl), [], 'the deletion is durable');
    step('snapshot created and deleted');

    // ---- Browse to the file, its extents and segments, and download it.
    await page.click('nav a[href="/browse"]');
    await page.click('tr[data-name="docs"] a');
    await page.waitForSelector('tr[data-name="big.bin"]');
    await shot(page, '07-browse-dir');
    await page.click('tr[data-name="big.bin"] a');
    assert.equal(await dataV(page, 'size'), String(big.length));
    const objects = await page.locator('#extents [data-k="object"]').allInnerTexts();
    assert.ok(objects.length >= 1, 'the file has extents');
    for (const o of new Set(objects)) {
      assert.match(o, /^default\/(seg|log)\/[0-9a-f]{16}$/);
      assert.ok(existsSync(join(dir, o)), `extent names segment object ${o}, which is in the store`);
    }
    const fileJson = (await (await page.request.get(`${base}/api/browse?path=%2Fdocs%2Fbig.bin`)).json()) as { extents: Array<{ length: number; object: string }> };
    assert.equal(fileJson.extents.reduce((n, e) => n + e.length, 0), big.length, 'the extents cover the whole file');
    await shot(page, '08-browse-file');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    assert.equal(download.suggestedFilename(), 'big.bin');
    const got = await readFile((await download.path())!);
    assert.equal(got.length, big.length);
    assert.ok(got.equals(big), 'downloaded bytes equal the file');

    step('browsed and downloaded');
    // ---- Log out: the session is gone.
    await page.click('#logout');
    assert.match(page.url(), /\/login$/);
    assert.equal((await page.request.get(`${base}/api/overview`)).status(), 401, 'the old session no longer works');
    assert.deepEqual(pageErrors, [], 'no script errors or CSP violations in the pages');
    await context.close();
  } finally {
    await (browser ?? (await launching.catch(() => undefined)))?.close();
    serve.child.kill('SIGTERM');
    const killer = setTimeout(() => serve.child.kill('SIGKILL'), 15_000);
    const code = await serve.exited;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, `silt serve exit code; output:\n${serve.output()}`);
  }
  console.log(`admin-web: whole test ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
});
