/**
 * Cold sequential read of one big file on the local Swift, through the engine (fs layer), beside a
 * raw GET of the same segment objects in the same run: the ceiling the read path is held to.
 *
 *   npx tsx bench/cold-read.ts
 *
 * Patterns: `seq1m` (1 MiB reads one at a time) and `fuse` (128 KiB reads, BENCH_INFLIGHT (8) in
 * flight and issued out of order within each group, as the kernel's FUSE read-ahead does).
 * BENCH_OLD_SRC=<dir> also runs each pattern with the `src` tree in <dir> (e.g. an older
 * reader) on the same volume, interleaved, for a before/after in one run. Figures: MB/s, ratio to
 * raw GET, GETs, CPU seconds of this process. Environment: BENCH_BIG_MIB (256).
 */
// Benchmarks run Swift without its updaters: their sweeps (a few CPU-seconds each on a store full
// of test containers) land at random in the timed runs. (scripts/swift-saio.sh restarts Swift
// when the setting differs from the running one.)
process.env['SWIFT_UPDATERS'] ??= '0';
import { CountingStore } from './counting-store.ts';
import { openStore } from '../src/objstore/index.ts';
import * as cur from '../src/fs/index.ts';
import { ensureSwift } from '../test/support/swift.ts';

const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 256);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 8);
const MiB = 1024 * 1024;
const now = () => performance.now();
type FsMod = typeof cur;

function chunk(i: number): Buffer {
  const b = Buffer.alloc(MiB, (i * 7) & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

async function main(): Promise<void> {
  const swift = await ensureSwift();
  process.env['SILT_SWIFT_USER'] = swift.user;
  process.env['SILT_SWIFT_KEY'] = swift.key;
  const url = `${swift.storeUrl}?container=bench-cold-${Date.now().toString(36)}`;
  const root = cur.rootIdentity;
  {
    const store = await openStore(url);
    const fs = await cur.openFileSystem({ store, volume: 'cold', create: true, flushIntervalMs: 1000 });
    const f = await fs.create(root, 1, 'big', 0o644);
    await fs.open(root, f.ino, cur.O_WRONLY);
    for (let i = 0; i < BIG_MIB; i++) await fs.write(root, f.ino, i * MiB, chunk(i));
    await fs.fsync(f.ino, false);
    await fs.release(f.ino, true);
    await fs.close();
    await store.close();
  }
  const segKeys: string[] = [];
  {
    const store = await openStore(url);
    let after: string | undefined;
    for (;;) {
      const page = await store.list('cold/seg/', after !== undefined ? { after } : {});
      for (const o of page.objects) segKeys.push(o.key);
      if (!page.next) break;
      after = page.next;
    }
    await store.close();
  }
  const raw = async (): Promise<Record<string, number>> => {
    const store = await openStore(url);
    const c0 = process.cpuUsage();
    const t0 = now();
    let bytes = 0;
    for (const k of segKeys) bytes += (await store.get(k)).length;
    const sec = (now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    await store.close();
    return { MBps: bytes / MiB / sec, gets: segKeys.length, cpuSec: (c.user + c.system) / 1e6, MiB: bytes / MiB };
  };
  const run = async (mod: FsMod, pattern: 'seq1m' | 'fuse'): Promise<Record<string, number>> => {
    const store = new CountingStore(await openStore(url));
    const fs = await mod.openFileSystem({ store, volume: 'cold', flushIntervalMs: 1000 });
    const g = await fs.lookup(root, 1, 'big');
    await fs.open(root, g.ino, mod.O_RDONLY);
    const g0 = store.gets;
    let bad = 0;
    const check = (off: number, b: Uint8Array, len: number): void => {
      const i = Math.floor(off / MiB);
      if (b.length !== len || b[len - 1] !== ((i * 7) & 0xff) || (off % MiB === 0 && Buffer.from(b.buffer, b.byteOffset, 4).readUInt32LE(0) !== i)) bad++;
    };
    const c0 = process.cpuUsage();
    const t0 = now();
    if (pattern === 'seq1m') {
      for (let i = 0; i < BIG_MIB; i++) check(i * MiB, await fs.read(root, g.ino, i * MiB, MiB), MiB);
    } else {
      const piece = 128 * 1024;
      const n = (BIG_MIB * MiB) / piece;
      let next = 0;
      const inflight = new Set<Promise<void>>();
      while (next < n || inflight.size) {
        while (next < n && inflight.size < INFLIGHT) {
          // Out of order within a group of four: +1, +0, +3, +2.
          const base = next - (next % 4);
          const j = Math.min(n - 1, base + [1, 0, 3, 2][next % 4]!);
          next++;
          const p: Promise<void> = fs.read(root, g.ino, j * piece, piece).then((b) => check(j * piece, b, piece)).finally(() => inflight.delete(p));
          inflight.add(p);
        }
        await Promise.race(inflight);
      }
    }
    const sec = (now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (bad) throw new Error(`${bad} reads came back wrong`);
    const gets = store.gets - g0;
    await fs.release(g.ino, false);
    await fs.close();
    await store.close();
    return { MBps: BIG_MIB / sec, gets, cpuSec: (c.user + c.system) / 1e6 };
  };
  const old: FsMod | null = process.env.BENCH_OLD_SRC ? ((await import(`${process.env.BENCH_OLD_SRC}/src/fs/index.ts`)) as FsMod) : null;
  const rows: Record<string, Record<string, number>> = {};
  const rawRuns: number[] = [];
  const add = (name: string, r: Record<string, number>): void => {
    rows[name] = r;
    console.log(name, JSON.stringify(r));
  };
  add('raw#1', await raw());
  rawRuns.push(rows['raw#1']!.MBps!);
  for (const pattern of ['seq1m', 'fuse'] as const) {
    if (old) add(`before ${pattern}`, await run(old, pattern));
    add(`after ${pattern}`, await run(cur, pattern));
  }
  add('raw#2', await raw());
  rawRuns.push(rows['raw#2']!.MBps!);
  const rawMean = (rawRuns[0]! + rawRuns[1]!) / 2;
  console.log(`\nfile ${BIG_MIB} MiB in ${segKeys.length} segments; raw GET mean ${rawMean.toFixed(1)} MB/s`);
  for (const [k, r] of Object.entries(rows)) {
    if (k.startsWith('raw')) continue;
    console.log(`${k.padEnd(14)} ${r.MBps!.toFixed(1).padStart(7)} MB/s  ${(r.MBps! / rawMean).toFixed(2)}x raw  GETs ${r.gets}  cpu ${r.cpuSec!.toFixed(1)} s`);
  }
}

await main();
