/**
 * Object API throughput for one big object, beside the fs layer it sits on (same process, same
 * LocalStore in a temporary directory), so the overhead of HTTP, hashing and the write-aside
 * rename shows as a ratio even on a busy machine:
 *
 *   node --import tsx test/support/objapi-bench.ts [MiB=64] [rounds=3]
 *
 * Rows: durable fs write (write + fsync) and fs read; Swift PUT (201 = durable) and GET; S3 PUT
 * (UNSIGNED-PAYLOAD, so the client does not hash) and GET; GET of a file written through the fs
 * layer, first (MD5 computed, then served: two reads) and second (MD5 stamped). Medians in MB/s
 * (10^6 bytes per second).
 */
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { O_WRONLY, rootIdentity as root } from '../../src/fs/index.ts';
import { signS3, startFixture, swiftLogin } from './objapi-fixture.ts';

const mib = Number(process.argv[2] ?? 64);
const rounds = Number(process.argv[3] ?? 3);
const N = mib * 1024 * 1024;
const data = randomBytes(N);

function send(port: number, method: string, path: string, headers: Record<string, string | number>, body?: Buffer): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body) for (let o = 0; o < body.length; o += 1 << 20) r.write(body.subarray(o, o + (1 << 20)));
    r.end();
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return N / 1e6 / ((performance.now() - t) / 1000);
}

const f = await startFixture();
try {
  const s = await swiftLogin(f.port);
  await send(f.port, 'PUT', `${s.account}/bench`, { 'x-auth-token': s.token });
  const bucket = (await f.fs.lookupPath(root, 'bench')).ino;
  const rows = new Map<string, number[]>();
  const add = (k: string, v: number): void => void rows.set(k, [...(rows.get(k) ?? []), v]);
  for (let i = 0; i < rounds; i++) {
    let ino = 0;
    add('fs write + fsync', await timed(async () => {
      const a = await f.fs.create(root, bucket, `fs${i}`, 0o644);
      ino = a.ino;
      await f.fs.open(root, ino, O_WRONLY);
      for (let o = 0; o < N; o += 4 << 20) await f.fs.write(root, ino, o, data.subarray(o, o + (4 << 20)));
      await f.fs.release(ino, true);
      await f.fs.fsync(ino, false);
    }));
    add('fs read (4 x 1 MiB in flight)', await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let o = next; o < N; o = next) {
          next += 1 << 20;
          await f.fs.read(root, ino, o, 1 << 20);
        }
      }));
    }));
    add('GET, written through fs, 1st (MD5 computed)', await timed(async () => {
      const r = await send(f.port, 'GET', `${s.account}/bench/fs${i}`, { 'x-auth-token': s.token });
      if (r.bytes !== N) throw new Error(`GET returned ${r.bytes} bytes`);
    }));
    add('GET, written through fs, 2nd (MD5 stamped)', await timed(() => send(f.port, 'GET', `${s.account}/bench/fs${i}`, { 'x-auth-token': s.token })));
    add('Swift PUT (201 after fsync)', await timed(async () => {
      const r = await send(f.port, 'PUT', `${s.account}/bench/sw${i}`, { 'x-auth-token': s.token, 'content-length': N }, data);
      if (r.status !== 201) throw new Error(`PUT ${r.status}`);
    }));
    add('Swift GET', await timed(() => send(f.port, 'GET', `${s.account}/bench/sw${i}`, { 'x-auth-token': s.token })));
    const put = signS3(f.port, { method: 'PUT', path: `/bench/s3${i}`, headers: { 'content-length': N } }, { payloadHash: 'UNSIGNED-PAYLOAD' });
    add('S3 PUT (UNSIGNED-PAYLOAD)', await timed(async () => {
      const r = await send(f.port, 'PUT', put.path, put.headers as Record<string, string>, data);
      if (r.status !== 200) throw new Error(`S3 PUT ${r.status}`);
    }));
    const get = signS3(f.port, { path: `/bench/s3${i}` });
    add('S3 GET', await timed(() => send(f.port, 'GET', get.path, get.headers as Record<string, string>)));
  }
  const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  console.log(`object API, ${mib} MiB object, ${rounds} rounds, medians (MB/s):`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(46)} ${median(v).toFixed(0).padStart(6)}   (${v.map((x) => x.toFixed(0)).join(', ')})`);
} finally {
  await f.close();
}
