/**
 * Silt on the local Swift all-in-one, beside the ceiling a plain HTTP client gets from the same
 * Swift in the same run.
 *
 *   npx tsx bench/swift.ts
 *
 * Not part of `npm test`. Brings Swift up with ensureSwift() (test/support/swift.ts), uses a fresh
 * container, and purges it in the background at the end.
 *
 * Raw (the ceiling): undici Pool straight at the Swift proxy, v1 auth token, no Silt code:
 *   - PUT then GET of BENCH_RAW_OBJECTS objects of 64 MiB, one at a time: MB/s;
 *   - BENCH_FILES PUTs of 4 KiB, one at a time: median / p99 latency, objects/s.
 * Silt (openFileSystem over openStore(swift URL), counted by a wrapper store):
 *   - one BENCH_BIG_MIB MiB file, 1 MiB sequential writes + fsync: MB/s;
 *   - cold read: the fs closed and reopened on a new store handle, sequential 1 MiB reads: MB/s;
 *   - BENCH_FILES files of 4 KiB (create+write+release) with 1 s periodic commits and a final sync:
 *     files/s, PUTs per 1,000 files.
 * Ratios are silt / raw (big file MB/s against raw 64 MiB PUT / GET; files/s against raw 4 KiB
 * PUTs/s, i.e. one PUT per file).
 *
 * Environment: BENCH_BIG_MIB (256), BENCH_FILES (1000), BENCH_RAW_OBJECTS (4).
 * A JSON copy goes to bench/results/swift-<date>.json.
 */
// Benchmarks run Swift without its updaters: their sweeps (a few CPU-seconds each on a store full
// of test containers) land at random in the timed runs. (scripts/swift-saio.sh restarts Swift
// when the setting differs from the running one.)
process.env['SWIFT_UPDATERS'] ??= '0';
import { CountingStore } from './counting-store.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { O_RDONLY, O_WRONLY, openFileSystem, rootIdentity as root } from '../src/fs/index.ts';
import { openStore, type ByteRange, type ListOptions, type ObjectStore, type PutOptions } from '../src/objstore/index.ts';
import { ensureSwift, purgeInBackground } from '../test/support/swift.ts';

const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 256);
const FILES = Number(process.env.BENCH_FILES ?? 1000);
const RAW_OBJECTS = Number(process.env.BENCH_RAW_OBJECTS ?? 4);
const MiB = 1024 * 1024;
const FILE_BYTES = 4096;
const now = () => performance.now();


function bigChunk(i: number): Buffer {
  const b = Buffer.alloc(MiB, (i * 7) & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}
function fileBody(i: number): Buffer {
  const b = Buffer.alloc(FILE_BYTES, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}
function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

async function main(): Promise<void> {
  const swift = await ensureSwift();
  process.env['SILT_SWIFT_USER'] = swift.user;
  process.env['SILT_SWIFT_KEY'] = swift.key;
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const rawContainer = `bench-raw-${runId}`;
  const siltContainer = `bench-silt-${runId}`;
  const out: Record<string, Record<string, number>> = {};

  try {
    // ---------------------------------------------------------------- raw ceiling
    const auth = await fetch(`${swift.endpoint}/auth/v1.0`, { headers: { 'x-auth-user': swift.user, 'x-auth-key': swift.key } });
    await auth.arrayBuffer();
    const token = auth.headers.get('x-auth-token')!;
    const storageUrl = new URL(auth.headers.get('x-storage-url')!);
    const pool = new Pool(storageUrl.origin, { connections: 4, pipelining: 1 });
    const base = `${storageUrl.pathname}/${rawContainer}`;
    const req = async (method: 'PUT' | 'GET', p: string, body?: Buffer): Promise<Buffer> => {
      const r = await pool.request({ method, path: p, headers: { 'x-auth-token': token, ...(body ? { 'content-length': String(body.length) } : {}) }, body });
      const b = Buffer.from(await r.body.arrayBuffer());
      if (r.statusCode >= 300) throw new Error(`${method} ${p}: HTTP ${r.statusCode}`);
      return b;
    };
    await req('PUT', base, Buffer.alloc(0));
    const big = Buffer.alloc(64 * MiB);
    for (let i = 0; i < 64; i++) bigChunk(i).copy(big, i * MiB);
    let t0 = now();
    for (let i = 0; i < RAW_OBJECTS; i++) await req('PUT', `${base}/big${i}`, big);
    const rawPut = (RAW_OBJECTS * 64) / ((now() - t0) / 1000);
    t0 = now();
    for (let i = 0; i < RAW_OBJECTS; i++) {
      const b = await req('GET', `${base}/big${i}`);
      if (b.length !== big.length) throw new Error('raw GET short');
    }
    const rawGet = (RAW_OBJECTS * 64) / ((now() - t0) / 1000);
    const lat: number[] = [];
    t0 = now();
    for (let i = 0; i < FILES; i++) {
      const s = now();
      await req('PUT', `${base}/small/f${i}`, fileBody(i));
      lat.push(now() - s);
    }
    const rawSmallSec = (now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    await pool.close();
    out.raw = {
      put64MiB_MBperSec: rawPut,
      get64MiB_MBperSec: rawGet,
      put4KiB_medianMs: pct(lat, 50),
      put4KiB_p99Ms: pct(lat, 99),
      put4KiB_perSec: FILES / rawSmallSec,
    };
    console.log('raw', out.raw);

    // ---------------------------------------------------------------- silt segment path
    const url = `${swift.storeUrl}?container=${siltContainer}`;
    let store = new CountingStore(await openStore(url));
    let fs = await openFileSystem({ store, volume: 'bench', create: true, flushIntervalMs: 1000 });
    const f = await fs.create(root, 1, 'big', 0o644);
    await fs.open(root, f.ino, O_WRONLY);
    const p0 = store.puts;
    t0 = now();
    for (let i = 0; i < BIG_MIB; i++) await fs.write(root, f.ino, i * MiB, bigChunk(i));
    await fs.fsync(f.ino, false);
    const writeSec = (now() - t0) / 1000;
    const bigPuts = store.puts - p0;
    await fs.release(f.ino, true);
    await fs.close();
    await store.close();

    store = new CountingStore(await openStore(url));
    fs = await openFileSystem({ store, volume: 'bench', flushIntervalMs: 1000 });
    const g = await fs.lookup(root, 1, 'big');
    await fs.open(root, g.ino, O_RDONLY);
    let bad = 0;
    t0 = now();
    for (let i = 0; i < BIG_MIB; i++) {
      const b = await fs.read(root, g.ino, i * MiB, MiB);
      if (b.length !== MiB || Buffer.from(b.buffer, b.byteOffset, 4).readUInt32LE(0) !== i || b[MiB - 1] !== ((i * 7) & 0xff)) bad++;
    }
    const readSec = (now() - t0) / 1000;
    if (bad) throw new Error(`${bad} MiB read back wrong`);
    const readGets = store.gets;
    await fs.release(g.ino, false);

    const d = await fs.mkdir(root, 1, 'small', 0o755);
    await fs.sync();
    const s0 = { puts: store.puts, log: store.logPuts, seg: store.segPuts };
    t0 = now();
    for (let i = 0; i < FILES; i++) {
      const h = await fs.create(root, d.ino, `f${i}`, 0o644);
      await fs.open(root, h.ino, O_WRONLY);
      await fs.write(root, h.ino, 0, fileBody(i));
      await fs.release(h.ino, true);
    }
    const tReturned = now();
    await fs.sync();
    const smallSec = (now() - t0) / 1000;
    const smallPuts = store.puts - s0.puts;
    await fs.close();
    await store.close();

    out.silt = {
      write_MBperSec: BIG_MIB / writeSec,
      writePuts: bigPuts,
      readCold_MBperSec: BIG_MIB / readSec,
      readGets,
      small_filesPerSecReturned: FILES / ((tReturned - t0) / 1000),
      small_filesPerSecDurable: FILES / smallSec,
      small_puts: smallPuts,
      small_commitPuts: store.logPuts - s0.log,
      small_dataSegmentPuts: store.segPuts - s0.seg,
      putsPer1000Files: (smallPuts / FILES) * 1000,
    };
    out.ratio = {
      write_vs_rawPut: out.silt.write_MBperSec! / rawPut,
      readCold_vs_rawGet: out.silt.readCold_MBperSec! / rawGet,
      smallDurableFilesPerSec_vs_raw4KiBPutsPerSec: out.silt.small_filesPerSecDurable! / out.raw.put4KiB_perSec!,
    };
    console.log('silt', out.silt);
    console.log('ratio silt/raw', out.ratio);
    const [l1, l5] = loadavg();
    out.env = { bigMiB: BIG_MIB, files: FILES, rawObjects: RAW_OBJECTS, load1: l1!, load5: l5! };
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `swift-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`);
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    console.log(`load average ${l1!.toFixed(1)} ${l5!.toFixed(1)}; written ${file}`);
  } finally {
    purgeInBackground(swift, [rawContainer, siltContainer], '');
  }
}

await main();
