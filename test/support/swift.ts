/**
 * Bring the local Swift all-in-one up for end-to-end tests (scripts/swift-saio.sh up
 * <repo>/.state/swift): idempotent, about 0.5 s when it is already healthy, up to a minute (plus
 * the package install on a fresh machine) otherwise. When Swift cannot start, `ensureSwift`
 * throws with the script's output: the calling test fails, it never skips.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const swiftStateDir = process.env['SILT_SWIFT_STATE'] ?? join(repoRoot, '.state', 'swift');

export interface LocalSwift {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** swift+http://127.0.0.1:PORT/auth/v1.0 */
  storeUrl: string;
  /** s3+http://127.0.0.1:PORT (append /BUCKET) */
  s3Base: string;
  user: string;
  key: string;
  host: string;
  port: number;
}

let up: Promise<LocalSwift> | undefined;

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(repoRoot, 'scripts', 'swift-saio.sh'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Start (or find running) the local Swift; memoised per process. */
export function ensureSwift(): Promise<LocalSwift> {
  up ??= (async () => {
    const r = await run(['up', swiftStateDir], 10 * 60_000);
    if (r.code !== 0) {
      up = undefined;
      throw new Error(`scripts/swift-saio.sh up ${swiftStateDir} failed (exit ${r.code}):\n${r.output}`);
    }
    const port = Number(process.env['SWIFT_PROXY_PORT'] ?? 8080);
    const endpoint = `http://127.0.0.1:${port}`;
    return {
      endpoint,
      storeUrl: `swift+${endpoint}/auth/v1.0`,
      s3Base: `s3+${endpoint}`,
      user: 'test:tester',
      key: 'testing',
      host: '127.0.0.1',
      port,
    };
  })();
  return up;
}

/** A key prefix no other run shares. */
export function runPrefix(name: string): string {
  return `t-${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}/`;
}

async function swiftToken(local: LocalSwift): Promise<{ token: string; storageUrl: string }> {
  const res = await fetch(`${local.endpoint}/auth/v1.0`, { headers: { 'x-auth-user': local.user, 'x-auth-key': local.key } });
  await res.arrayBuffer();
  const token = res.headers.get('x-auth-token');
  const storageUrl = res.headers.get('x-storage-url');
  if (!res.ok || token === null || storageUrl === null) throw new Error(`swift auth failed: HTTP ${res.status}`);
  return { token, storageUrl };
}

/**
 * Delete every object under `prefix` in these containers (an S3 bucket is a container of the
 * same name; multipart segments live in BUCKET+segments) with Swift's bulk delete, 1,000 names
 * per request. Test cleanup: much faster than one DELETE per key.
 */
export async function purgeSwiftPrefix(local: LocalSwift, containers: string[], prefix: string): Promise<number> {
  const { token, storageUrl } = await swiftToken(local);
  let deleted = 0;
  for (const container of containers) {
    for (;;) {
      const q = new URLSearchParams({ format: 'json', prefix, limit: '1000' });
      const res = await fetch(`${storageUrl}/${encodeURIComponent(container)}?${q}`, { headers: { 'x-auth-token': token } });
      if (res.status === 404 || res.status === 204) {
        await res.arrayBuffer();
        break;
      }
      const rows = (await res.json()) as Array<{ name: string }>;
      if (rows.length === 0) break;
      const body = rows.map((r) => `/${encodeURIComponent(container)}/${encodeURIComponent(r.name)}`).join('\n');
      const del = await fetch(`${storageUrl}?bulk-delete`, {
        method: 'POST',
        headers: { 'x-auth-token': token, 'content-type': 'text/plain', accept: 'application/json' },
        body,
      });
      const out = (await del.json()) as { 'Number Deleted'?: number; Errors?: unknown[] };
      deleted += out['Number Deleted'] ?? 0;
      if ((out['Number Deleted'] ?? 0) === 0) throw new Error(`bulk delete in ${container} made no progress: ${JSON.stringify(out)}`);
    }
  }
  return deleted;
}

/**
 * Purge in a detached child process, so a test does not wait the minute Swift can take to delete
 * thousands of objects on a busy machine. Output goes to .state/swift-purge.log.
 */
export function purgeInBackground(local: LocalSwift, containers: string[], prefix: string): void {
  const self = fileURLToPath(import.meta.url);
  mkdirSync(join(repoRoot, '.state'), { recursive: true }); // absent when SILT_SWIFT_STATE points elsewhere
  const logFd = openSync(join(repoRoot, '.state', 'swift-purge.log'), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', self, 'purge', JSON.stringify({ local, containers, prefix })], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  child.unref();
  closeSync(logFd);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'purge') {
  const { local, containers, prefix } = JSON.parse(process.argv[3] ?? '{}') as { local: LocalSwift; containers: string[]; prefix: string };
  const t0 = Date.now();
  purgeSwiftPrefix(local, containers, prefix).then(
    (n) => console.log(`${new Date().toISOString()} purged ${n} objects under ${prefix} in ${containers.join(', ')} (${Date.now() - t0} ms)`),
    (err: unknown) => {
      console.log(`${new Date().toISOString()} purge of ${prefix} failed: ${String(err)}`);
      process.exitCode = 1;
    },
  );
}
