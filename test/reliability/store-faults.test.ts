/**
 * The engine on a real Swift behind the fault-injecting proxy (test/support/faultproxy.ts).
 * test/e2e/objstore-faults.test.ts checks the store client alone; here a whole file-system
 * workload runs through it.
 *
 * - For each way a request can fail (503, connection reset before or after the upstream acted,
 *   a stall that only the client's timeout ends, a truncated body, a slow answer), 10% of requests
 *   fail that way while a workload writes, renames, truncates, unlinks and syncs through the
 *   engine, and a second, cold instance reads everything back through the proxy. The workload
 *   finishes, and the volume reopened straight on Swift (no proxy) holds exactly what was synced,
 *   fsck clean.
 * - A store that fails every request: sync and uncached reads fail with EIO (never a hang,
 *   never another error), what was synced before stays, and once the store answers again the
 *   volume is fsck clean and the synced data intact.
 * SILT_SEED replays the fault sequence.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openFileSystem, rootIdentity as who, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { SwiftStore } from '../../src/objstore/swift.ts';
import { FsError, Random, S_IFDIR, S_IFMT } from '../../src/util/index.ts';
import { FaultProxy, type FaultRates } from '../support/faultproxy.ts';
import { ensureSwift, purgeInBackground, type LocalSwift } from '../support/swift.ts';

const CONTAINER = 'silt-reliability-faults';
const seed = process.env['SILT_SEED'] !== undefined ? Number(process.env['SILT_SEED']) : Math.floor(Math.random() * 2 ** 31);
const runId = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
let local: LocalSwift;
const proxies: FaultProxy[] = [];
const stores: SwiftStore[] = [];
const volumes: string[] = [];
/** Faults injected over the whole file, by kind (docs/RELIABILITY.md quotes them). */
const injected: Record<string, number> = {};
let requestsThroughProxy = 0;

const engineOptions = { flushIntervalMs: 0, volumeOptions: { segmentBytesMax: 512 * 1024 }, inode: { largeRunBytes: 128 * 1024 } };

async function swift(endpoint: string, opts: { headersMs?: number; attempts?: number } = {}): Promise<SwiftStore> {
  const s = await SwiftStore.open({
    authUrl: `${endpoint}/auth/v1.0`,
    user: local.user,
    key: local.key,
    container: CONTAINER,
    retry: { attempts: opts.attempts ?? 10, baseDelayMs: 5, maxDelayMs: 150 },
    timeouts: { connectMs: 2_000, headersMs: opts.headersMs ?? 10_000, bodyIdleMs: 3_000 },
  });
  stores.push(s);
  return s;
}

async function proxy(seedOffset: number, rates: FaultRates): Promise<FaultProxy> {
  const p = await FaultProxy.start({ upstreamHost: local.host, upstreamPort: local.port, seed: seed + seedOffset, rates, delayMs: [50, 400] });
  proxies.push(p);
  return p;
}

function tally(p: FaultProxy): void {
  for (const [k, v] of Object.entries(p.counts)) if (k !== 'requests' && k !== 'forwarded') injected[k] = (injected[k] ?? 0) + v;
  requestsThroughProxy += p.counts.requests;
}

/** Everything in a volume: path -> content (files) or 'dir'. */
async function contents(fs: SiltFileSystem): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (ino: number, path: string): Promise<void> => {
    for (const e of await fs.readdir(who, ino, 0n, 100_000)) {
      if (e.name === '.' || e.name === '..') continue;
      const a = await fs.lookup(who, ino, e.name);
      const p = `${path}/${e.name}`;
      if ((a.mode & S_IFMT) === S_IFDIR) {
        out.set(p, 'dir');
        await walk(a.ino, p);
      } else {
        out.set(p, Buffer.from(await fs.read(who, a.ino, 0, a.size)).toString('base64'));
      }
    }
  };
  await walk(1, '');
  return out;
}

/** A seeded workload; returns what the volume holds after its last sync. */
async function workload(fs: SiltFileSystem, rnd: Random, rounds: number): Promise<Map<string, string>> {
  const dirs = [1];
  for (let d = 0; d < 3; d++) dirs.push((await fs.mkdir(who, 1, `d${d}`, 0o755)).ino);
  const files: Array<{ parent: number; name: string; ino: number }> = [];
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 6; i++) {
      const parent = rnd.pick(dirs);
      const name = `f${round}-${i}`;
      const a = await fs.create(who, parent, name, 0o644);
      const size = rnd.pick([0, 100, 5_000, 60_000, 300_000]);
      for (let off = 0; off < size; off += 64 * 1024) await fs.write(who, a.ino, off, rnd.bytes(Math.min(64 * 1024, size - off)));
      files.push({ parent, name, ino: a.ino });
    }
    // Overwrite, truncate, rename, unlink some of what exists.
    for (let i = 0; i < 4 && files.length > 2; i++) {
      const f = rnd.pick(files);
      const r = rnd.int(4);
      if (r === 0) await fs.write(who, f.ino, rnd.int(70_000), rnd.bytes(1 + rnd.int(20_000)));
      else if (r === 1) await fs.setattr(who, f.ino, { size: rnd.int(50_000) });
      else if (r === 2) {
        const to = rnd.pick(dirs);
        const name = `${f.name}-r`;
        await fs.rename(who, f.parent, f.name, to, name);
        f.parent = to;
        f.name = name;
      } else {
        await fs.unlink(who, f.parent, f.name);
        files.splice(files.indexOf(f), 1);
      }
    }
    await fs.sync();
  }
  return contents(fs);
}

function diff(a: Map<string, string>, b: Map<string, string>): string {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const bad = [...keys].filter((k) => a.get(k) !== b.get(k));
  return bad.length === 0 ? '' : `${bad.length} paths differ: ${bad.slice(0, 5).join(', ')}`;
}

before(async () => {
  console.log(`# store faults seed ${seed} (replay: SILT_SEED=${seed})`);
  local = await ensureSwift();
});

after(async () => {
  console.log(`# store faults injected: ${JSON.stringify(injected)} over ${requestsThroughProxy} requests`);
  for (const s of stores) await s.close();
  for (const p of proxies) await p.close();
  if (local !== undefined) for (const v of volumes) purgeInBackground(local, [CONTAINER], `${v}/`);
});

const kinds: Array<[string, FaultRates, { headersMs?: number }]> = [
  ['503', { error503: 0.1 }, {}],
  ['connection reset (before and after the upstream acted)', { resetRequest: 0.05, resetResponse: 0.05 }, {}],
  ['stall until the client times out', { stall: 0.1 }, { headersMs: 1_000 }],
  ['truncated body (cut, and cut with a rewritten Content-Length)', { truncate: 0.05, truncateConsistent: 0.05 }, {}],
  ['slow answers', { delay: 0.1 }, {}],
];

describe(`the engine on Swift through a faulty proxy (seed ${seed})`, { timeout: 600_000 }, () => {
  kinds.forEach(([what, rates, timeouts], k) => {
    test(`10% of requests fail by ${what}: the workload finishes, nothing synced is lost`, async () => {
      const volume = `${runId}-${k}`;
      volumes.push(volume);
      const p = await proxy(k * 7919, rates);
      const rnd = new Random(seed + k);
      // Write through the faults.
      const fs = await openFileSystem({ store: await swift(p.endpoint, timeouts), volume, create: true, ...engineOptions });
      const synced = await workload(fs, rnd, 3);
      await fs.close();
      // Read everything back cold, still through the faults (GETs are faulted too).
      const cold = await openFileSystem({ store: await swift(p.endpoint, timeouts), volume, ...engineOptions });
      assert.equal(diff(await contents(cold), synced), '', `${what}: read back through the faults (seed ${seed})`);
      await cold.close();
      tally(p);
      assert.ok(p.totalFaults() > 0, `${what}: no fault was injected over ${p.counts.requests} requests`);
      // Straight on Swift: exactly what was synced, and fsck clean.
      const direct = await swift(local.endpoint);
      const again = await openFileSystem({ store: direct, volume, ...engineOptions });
      assert.equal(diff(await contents(again), synced), '', `${what}: reopened without the proxy (seed ${seed})`);
      await again.close();
      const report = await checkVolume(direct, volume);
      assert.deepEqual(report.problems.filter((x) => x.severity === 'error'), [], `${what}: fsck`);
      console.log(`# ${what}: ${p.counts.requests} requests, faults ${JSON.stringify(p.counts)}, ${synced.size} paths verified`);
    });
  });

  test('a store that fails every request: EIO to the client, no damage, fsck clean once it recovers', async () => {
    const volume = `${runId}-down`;
    volumes.push(volume);
    const p = await proxy(99, {});
    const fs = await openFileSystem({ store: await swift(p.endpoint, { headersMs: 1_500, attempts: 3 }), volume, create: true, ...engineOptions });
    const rnd = new Random(seed ^ 0xdead);
    const synced = await workload(fs, rnd, 2);
    // The store goes down: every request fails, one way or another.
    for (const [what, rates] of [
      ['503', { error503: 1 }],
      ['reset', { resetRequest: 0.5, resetResponse: 0.5 }],
      ['stall', { stall: 1 }],
    ] as const) {
      p.rates = rates;
      const a = await fs.create(who, 1, `during-${what}`, 0o644);
      await fs.write(who, a.ino, 0, rnd.bytes(200_000)); // from memory: accepted
      const t0 = Date.now();
      await assert.rejects(fs.sync(), (e: unknown) => e instanceof FsError && e.errno === 'EIO', `${what}: sync is EIO`);
      assert.ok(Date.now() - t0 < 60_000, `${what}: sync failed in bounded time`);
    }
    // An uncached read through a second instance (opened while the store answered): EIO too.
    p.rates = {};
    const cold = await openFileSystem({ store: await swift(p.endpoint, { attempts: 2 }), volume, ...engineOptions });
    p.rates = { error503: 1 };
    await assert.rejects(contents(cold), (e: unknown) => e instanceof FsError && e.errno === 'EIO', 'an uncached read while the store is down is EIO');
    p.rates = {};
    await cold.close().catch(() => {});
    // The store recovers.
    p.rates = {};
    tally(p);
    let laterSync = 'ok';
    try {
      await fs.sync();
    } catch (e) {
      laterSync = `refused (${(e as FsError).errno ?? String(e)})`;
    }
    await fs.close().catch(() => {});
    const direct = await swift(local.endpoint);
    const report = await checkVolume(direct, volume);
    assert.deepEqual(report.problems.filter((x) => x.severity === 'error'), [], 'fsck after the store recovers');
    const again = await openFileSystem({ store: direct, volume, ...engineOptions });
    const now = await contents(again);
    await again.close();
    // Everything synced before the outage is there; what was written during it may or may not be.
    for (const [path, v] of synced) assert.equal(now.get(path), v, `${path} after the outage`);
    console.log(`# store down: sync after recovery ${laterSync}; ${now.size} paths, ${synced.size} synced before the outage intact`);
  });
});
