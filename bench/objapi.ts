/**
 * The object API (Swift and S3 dialects of `silt serve --http`) beside the Swift that backs it, in
 * one run, with the same HTTP client (undici) and the same concurrency for both:
 *
 *   npx tsx bench/objapi.ts            (npm run bench:objapi)
 *
 * Native: straight at the local Swift proxy (v1 token), no Silt code. Silt: an in-process volume
 * on that Swift (openFileSystem over the swift+http store, as `silt serve` runs it), the object
 * API on a loopback port, and a FUSE mount of the same volume in the same process.
 *
 * Rows (each a PUT or GET of the big object, or of BENCH_SMALL small objects):
 *   - big PUT / GET, MB/s (10^6 bytes/s): native Swift; Silt Swift dialect (201 = durable);
 *   - GET of a big file written through the FUSE mount (dd, then close): first GET (the MD5 is
 *     computed, so the file is read twice) and second (MD5 stamped) through the Swift dialect,
 *     then through the S3 dialect;
 *   - small PUT / GET, objects/s, BENCH_CONC requests in flight.
 * Ratios are Silt / native. The issue's target: GET of a file written through FUSE >= 0.7x native.
 *
 * Environment: BENCH_BIG_MIB (1024), BENCH_SMALL (1000), BENCH_SMALL_BYTES (4096), BENCH_CONC (8).
 * Not part of `npm test`. A JSON copy goes to bench/results/objapi-<date>.json.
 */
// Benchmarks run Swift without its updaters: their sweeps (a few CPU-seconds each on a store full
// of test containers) land at random in the timed runs. (scripts/swift-saio.sh restarts Swift
// when the setting differs from the running one.)
process.env['SWIFT_UPDATERS'] ??= '0';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { openFileSystem } from '../src/fs/index.ts';
import { serveFuse } from '../src/fuse/index.ts';
import { startObjectApi } from '../src/objapi/index.ts';
import { openStore } from '../src/objstore/index.ts';
import { stderrLogger } from '../src/util/log.ts';
import { signS3 } from '../test/support/objapi-fixture.ts';
import { ensureSwift, purgeInBackground } from '../test/support/swift.ts';
import { CountingStore } from './counting-store.ts';

const MiB = 1024 * 1024;
const BIG_MIB = Number(process.env['BENCH_BIG_MIB'] ?? 1024);
const SMALL = Number(process.env['BENCH_SMALL'] ?? 1000);
const SMALL_BYTES = Number(process.env['BENCH_SMALL_BYTES'] ?? 4096);
const CONC = Number(process.env['BENCH_CONC'] ?? 8);
const BIG = BIG_MIB * MiB;
const USER = 'bench:user';
const KEY = 'bench-key';
const now = (): number => performance.now();

/** The big object's bytes, made on the fly (no 1 GiB buffer): MiB i is a pattern stamped with i. */
function chunk(i: number): Buffer {
  const b = Buffer.alloc(MiB, (i * 131) & 0xff);
  for (let o = 0; o < MiB; o += 4096) b.writeUInt32LE(i * 256 + o / 4096, o);
  return b;
}
async function* bigBody(): AsyncGenerator<Buffer> {
  for (let i = 0; i < BIG_MIB; i++) yield chunk(i);
}
function bigMd5(): string {
  const h = createHash('md5');
  for (let i = 0; i < BIG_MIB; i++) h.update(chunk(i));
  return h.digest('hex');
}
function smallBody(i: number): Buffer {
  const b = Buffer.alloc(SMALL_BYTES, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

interface Target {
  pool: Pool;
  /** Path of the container, e.g. /v1/AUTH_test/c */
  base: string;
  headers: Record<string, string>;
}

async function send(t: Target, method: 'PUT' | 'GET', path: string, body?: Buffer | AsyncIterable<Buffer>, length?: number, extra: Record<string, string> = {}): Promise<{ status: number; bytes: number; etag: string }> {
  const headers: Record<string, string> = { ...t.headers, ...extra };
  if (length !== undefined) headers['content-length'] = String(length);
  const r = await t.pool.request({
    method,
    path,
    headers,
    ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : Readable.from(body) }),
  });
  let bytes = 0;
  for await (const c of r.body) bytes += (c as Buffer).length;
  if (r.statusCode >= 300) throw new Error(`${method} ${path}: HTTP ${r.statusCode}`);
  return { status: r.statusCode, bytes, etag: String(r.headers['etag'] ?? '').replace(/"/g, '') };
}

async function parallel(n: number, conc: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
  return (now() - t0) / 1000;
}

async function swiftLogin(origin: string, user: string, key: string): Promise<{ token: string; account: string }> {
  const r = await fetch(`${origin}/auth/v1.0`, { headers: { 'x-auth-user': user, 'x-auth-key': key } });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`auth at ${origin}: ${r.status}`);
  return { token: r.headers.get('x-auth-token')!, account: new URL(r.headers.get('x-storage-url')!).pathname };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

/** A big-object PUT and GET and the small-object rounds against one target; MB/s and objects/s. */
async function rounds(t: Target, name: string, out: Record<string, number>, md5: string): Promise<void> {
  let t0 = now();
  const p = await send(t, 'PUT', `${t.base}/big`, bigBody(), BIG);
  out.bigPut_MBps = BIG / 1e6 / ((now() - t0) / 1000);
  if (p.etag !== md5) throw new Error(`${name}: PUT ETag ${p.etag}, expected ${md5}`);
  t0 = now();
  const g = await send(t, 'GET', `${t.base}/big`);
  out.bigGet_MBps = BIG / 1e6 / ((now() - t0) / 1000);
  if (g.bytes !== BIG) throw new Error(`${name}: GET returned ${g.bytes} bytes`);
  let s = await parallel(SMALL, CONC, async (i) => void (await send(t, 'PUT', `${t.base}/small/o${i}`, smallBody(i), SMALL_BYTES)));
  out.smallPut_perSec = SMALL / s;
  s = await parallel(SMALL, CONC, async (i) => {
    const r = await send(t, 'GET', `${t.base}/small/o${i}`);
    if (r.bytes !== SMALL_BYTES) throw new Error(`${name}: small GET ${i} returned ${r.bytes} bytes`);
  });
  out.smallGet_perSec = SMALL / s;
  console.log(name, out);
}

async function main(): Promise<void> {
  const swift = await ensureSwift();
  process.env['SILT_SWIFT_USER'] = swift.user;
  process.env['SILT_SWIFT_KEY'] = swift.key;
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const nativeContainer = `bench-objnative-${runId}`;
  const siltContainer = `bench-objsilt-${runId}`;
  const md5 = bigMd5();
  const out: Record<string, Record<string, number>> = { native: {}, silt: {}, ratio: {}, store: {} };
  const mnt = mkdtempSync(join(tmpdir(), 'silt-bench-objapi-mnt-'));
  let cleanup: Array<() => Promise<void>> = [];
  try {
    // ---------------------------------------------------------------- native Swift
    const na = await swiftLogin(swift.endpoint, swift.user, swift.key);
    const nativePool = new Pool(swift.endpoint, { connections: CONC, pipelining: 1 });
    cleanup.push(() => nativePool.close());
    const native: Target = { pool: nativePool, base: `${na.account}/${nativeContainer}`, headers: { 'x-auth-token': na.token } };
    await send(native, 'PUT', native.base, Buffer.alloc(0), 0);
    await rounds(native, 'native Swift', out.native!, md5);

    // ---------------------------------------------------------------- Silt on that Swift
    const store = new CountingStore(await openStore(`${swift.storeUrl}?container=${siltContainer}`));
    const fs = await openFileSystem({ store, volume: 'bench', create: true, flushIntervalMs: 1000, gcIntervalMs: 0 });
    cleanup.push(async () => {
      await fs.close();
      await store.close();
    });
    const api = await startObjectApi({ fs, listen: { host: '127.0.0.1', port: 0 }, credentials: [{ user: USER, key: KEY }], volume: 'bench' });
    cleanup = [() => api.close(), ...cleanup];
    const sa = await swiftLogin(api.url, USER, KEY);
    const siltPool = new Pool(api.url, { connections: CONC, pipelining: 1 });
    cleanup = [() => siltPool.close(), ...cleanup];
    const silt: Target = { pool: siltPool, base: `${sa.account}/b`, headers: { 'x-auth-token': sa.token } };
    await send(silt, 'PUT', silt.base, Buffer.alloc(0), 0);
    const put0 = store.putBytes;
    await rounds(silt, 'Silt object API (Swift dialect)', out.silt!, md5);
    out.store!.putBytesPerObjectByte = (store.putBytes - put0) / (BIG + SMALL * SMALL_BYTES);

    // ---------------------------------------------------------------- a file written through FUSE
    const fuse = await serveFuse(fs, mnt, { logger: stderrLogger('warn') });
    cleanup = [() => fuse.unmount({ lazy: true }), ...cleanup];
    const src = join(mnt, 'b', 'fuse.bin');
    let t0 = now();
    // The same bytes as the big object, written by a process through the kernel: a node child
    // writes 1 MiB at a time (no fsync: close is enough for read-after-write).
    const script = `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(src)},'w');const M=${MiB};for(let i=0;i<${BIG_MIB};i++){const b=Buffer.alloc(M,(i*131)&255);for(let o=0;o<M;o+=4096)b.writeUInt32LE(i*256+o/4096,o);fs.writeSync(fd,b)}fs.closeSync(fd)`;
    await run(process.execPath, ['-e', script]);
    out.silt!.fuseWrite_MBps = BIG / 1e6 / ((now() - t0) / 1000);
    for (const [label, key] of [
      ['fuseFileGet1st_MBps', 'first'],
      ['fuseFileGet2nd_MBps', 'second'],
    ] as const) {
      t0 = now();
      const g = await send(silt, 'GET', `${silt.base}/fuse.bin`);
      out.silt![label] = BIG / 1e6 / ((now() - t0) / 1000);
      if (g.bytes !== BIG || g.etag !== md5) throw new Error(`GET of the FUSE file (${key}): ${g.bytes} bytes, ETag ${g.etag}`);
    }
    const port = Number(new URL(api.url).port);
    const signed = signS3(port, { path: '/b/fuse.bin' }, { accessKey: USER, secret: KEY });
    t0 = now();
    const g3 = await send({ ...silt, headers: {} }, 'GET', signed.path, undefined, undefined, signed.headers as Record<string, string>);
    out.silt!.fuseFileGetS3_MBps = BIG / 1e6 / ((now() - t0) / 1000);
    if (g3.bytes !== BIG || g3.etag !== md5) throw new Error(`S3 GET of the FUSE file: ${g3.bytes} bytes, ETag ${g3.etag}`);
    console.log('Silt, file written through FUSE', out.silt);

    const n = out.native!;
    const s = out.silt!;
    out.ratio = {
      bigPut: s.bigPut_MBps! / n.bigPut_MBps!,
      bigGet: s.bigGet_MBps! / n.bigGet_MBps!,
      fuseFileGet1st: s.fuseFileGet1st_MBps! / n.bigGet_MBps!,
      fuseFileGet2nd: s.fuseFileGet2nd_MBps! / n.bigGet_MBps!,
      fuseFileGetS3: s.fuseFileGetS3_MBps! / n.bigGet_MBps!,
      smallPut: s.smallPut_perSec! / n.smallPut_perSec!,
      smallGet: s.smallGet_perSec! / n.smallGet_perSec!,
    };
    const [l1, l5] = loadavg();
    out.env = { bigMiB: BIG_MIB, small: SMALL, smallBytes: SMALL_BYTES, concurrency: CONC, load1: l1!, load5: l5! };
    const rows: Array<[string, number, number | undefined, string]> = [
      [`PUT ${BIG_MIB} MiB`, s.bigPut_MBps!, n.bigPut_MBps, 'MB/s'],
      [`GET ${BIG_MIB} MiB (PUT through the API)`, s.bigGet_MBps!, n.bigGet_MBps, 'MB/s'],
      [`GET ${BIG_MIB} MiB written through FUSE, 1st (MD5 computed)`, s.fuseFileGet1st_MBps!, n.bigGet_MBps, 'MB/s'],
      [`GET ${BIG_MIB} MiB written through FUSE, 2nd`, s.fuseFileGet2nd_MBps!, n.bigGet_MBps, 'MB/s'],
      [`GET ${BIG_MIB} MiB written through FUSE, S3 dialect`, s.fuseFileGetS3_MBps!, n.bigGet_MBps, 'MB/s'],
      [`PUT ${SMALL} x ${SMALL_BYTES} B, ${CONC} in flight`, s.smallPut_perSec!, n.smallPut_perSec, 'obj/s'],
      [`GET ${SMALL} x ${SMALL_BYTES} B, ${CONC} in flight`, s.smallGet_perSec!, n.smallGet_perSec, 'obj/s'],
      [`(FUSE write of the ${BIG_MIB} MiB file)`, s.fuseWrite_MBps!, undefined, 'MB/s'],
    ];
    console.log(`\n| operation | Silt object API | native Swift | ratio |\n|---|---:|---:|---:|`);
    for (const [what, sv, nv, unit] of rows) {
      console.log(`| ${what} | ${sv.toFixed(0)} ${unit} | ${nv === undefined ? '' : `${nv.toFixed(0)} ${unit}`} | ${nv === undefined ? '' : `${(sv / nv).toFixed(2)}x`} |`);
    }
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `objapi-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`);
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    console.log(`\nload average ${l1!.toFixed(1)} ${l5!.toFixed(1)}; written ${file}`);
  } finally {
    for (const c of cleanup) await c().catch((e: unknown) => console.error('cleanup:', e));
    rmSync(mnt, { recursive: true, force: true });
    purgeInBackground(swift, [nativeContainer, siltContainer], '');
  }
}

await main();
