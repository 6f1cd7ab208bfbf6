/**
 * The admin HTTP server: routing, authentication, CSRF, security headers, and the one place where
 * failures become HTTP statuses (`statusOf`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { SiltFileSystem } from '../fs/index.ts';
import { validateSnapshotName } from '../headhunter/index.ts';
import { FsError, StoreError, CorruptionError, assert, nullLogger, type Logger } from '../util/index.ts';
import { AdminAuth, type AdminCredential, type Principal } from './auth.ts';
import {
  browsePage,
  confirmDeletePage,
  errorPage,
  jobsFragment,
  jobsPage,
  loginPage,
  overviewFragment,
  overviewPage,
  snapshotsPage,
  type PageContext,
} from './html.ts';
import { OverviewCollector, browse, listSnapshots, openForDownload } from './info.ts';
import { JOB_KINDS, JobRunner, type FsckJobOptions, type GcJobOptions, type JobKind } from './jobs.ts';
import { RateSampler, SERIES, type SeriesName } from './sampler.ts';

export interface AdminServerOptions {
  fs: SiltFileSystem;
  /** The volume's name (as served). */
  volume: string;
  listen: { host: string; port: number };
  /** The object API's (user, key) pairs; at least one (there is no anonymous access). */
  credentials: readonly AdminCredential[];
  /** Other doors of this server, shown on the overview (e.g. { 'JSON-RPC': '127.0.0.1:8091' }). */
  endpoints?: Record<string, string>;
  logger?: Logger;
  /** Rate sampling (default every 2 s, 10 minutes kept). */
  sampleIntervalMs?: number;
  sampleWindowMs?: number;
  /** gc deletes an object only after it stayed unreferenced this long (default 5 s). */
  gcGraceMs?: number;
  /** Sessions last this long after login (default 8 h); at most `sessionsMax` (default 256). */
  sessionTtlMs?: number;
  sessionsMax?: number;
  /** How often the pages refresh their live parts (default 2 s overview, 1 s jobs). */
  refreshMs?: number;
  nowMs?: () => number;
}

export interface AdminServer {
  readonly url: string;
  readonly address: { host: string; port: number };
  readonly jobs: JobRunner;
  close(): Promise<void>;
}

const BODY_BYTES_MAX = 64 * 1024;
const DOWNLOAD_CHUNK_BYTES = 1024 * 1024;
const BROWSE_LIMIT_DEFAULT = 500;
const BROWSE_LIMIT_MAX = 5000;

/** Map a failure to an HTTP status and a message: the only place that does. */
export function statusOf(err: unknown): { status: number; errno: string; message: string } {
  if (err instanceof HttpError) return { status: err.status, errno: err.errno, message: err.message };
  if (err instanceof FsError) {
    const by: Partial<Record<string, number>> = {
      ENOENT: 404, EEXIST: 409, EBUSY: 409, EROFS: 409, ENOTEMPTY: 409, ECANCELED: 503,
      EINVAL: 400, ENAMETOOLONG: 400, ENOTDIR: 400, EISDIR: 400, E2BIG: 413,
      EACCES: 403, EPERM: 403, ENOSPC: 507,
    };
    return { status: by[err.errno] ?? 500, errno: err.errno, message: err.message };
  }
  if (err instanceof StoreError) return { status: 502, errno: 'EIO', message: `object store: ${err.message}` };
  if (err instanceof CorruptionError) return { status: 500, errno: 'EIO', message: `the volume is damaged: ${err.message}` };
  return { status: 500, errno: 'EIO', message: err instanceof Error ? err.message : String(err) };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errno = 'EINVAL',
  ) {
    super(message);
  }
}

interface Req {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  nonce: string;
  principal: Principal | undefined;
  isApi: boolean;
}

function securityHeaders(nonce: string): Record<string, string> {
  return {
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > BODY_BYTES_MAX) throw new HttpError(413, `request body over ${BODY_BYTES_MAX} bytes`, 'E2BIG');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A form (urlencoded) or JSON body as string fields. */
async function readFields(req: IncomingMessage): Promise<Record<string, string>> {
  const text = await readBody(req);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    if (text.trim() === '') return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'the body is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'the body must be a JSON object');
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed)) if (v !== null && v !== undefined) out[k] = String(v);
    return out;
  }
  return Object.fromEntries(new URLSearchParams(text));
}

function bool(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined || v === '') return dflt;
  return ['1', 'true', 'on', 'yes'].includes(v.toLowerCase());
}

export async function startAdminServer(o: AdminServerOptions): Promise<AdminServer> {
  const log = o.logger ?? nullLogger;
  const nowMs = o.nowMs ?? Date.now;
  const startedMs = nowMs();
  const refreshMs = o.refreshMs ?? 2000;
  assert(o.fs.volume.readOnlySnapshot === undefined, 'admin: serve the volume itself, not a snapshot view');
  const auth = new AdminAuth(o.credentials, { sessionTtlMs: o.sessionTtlMs ?? 8 * 3600_000, sessionsMax: o.sessionsMax ?? 256, nowMs });
  const sampler = new RateSampler({
    intervalMs: o.sampleIntervalMs ?? 2000,
    windowMs: o.sampleWindowMs ?? 10 * 60_000,
    dirtyBytes: () => o.fs.volume.writer.bufferedBytes,
    nowMs,
  });
  const jobs = new JobRunner({ fs: o.fs, volume: o.volume, gcGraceMs: o.gcGraceMs ?? 5000, historyMax: 50, logger: log, nowMs });
  const collector = new OverviewCollector({ fs: o.fs, volume: o.volume, startedMs, endpoints: o.endpoints ?? {}, nowMs, listingMaxAgeMs: 10_000 });
  let cookieName = 'silt_admin';

  const ctx = (r: Req, current: PageContext['current']): PageContext => ({
    nonce: r.nonce,
    volume: o.volume,
    user: r.principal?.user ?? '',
    csrf: r.principal?.csrf ?? '',
    current,
  });

  const sendHtml = (r: Req, status: number, html: string, extra: Record<string, string> = {}): void => {
    r.res.writeHead(status, { ...securityHeaders(r.nonce), 'content-type': 'text/html; charset=utf-8', ...extra }).end(html);
  };
  const sendJson = (r: Req, status: number, body: unknown, extra: Record<string, string> = {}): void => {
    r.res.writeHead(status, { ...securityHeaders(r.nonce), 'content-type': 'application/json; charset=utf-8', ...extra }).end(JSON.stringify(body, null, 2) + '\n');
  };
  const redirect = (r: Req, to: string, extra: Record<string, string> = {}): void => {
    r.res.writeHead(303, { ...securityHeaders(r.nonce), location: to, ...extra }).end();
  };
  const fail = (r: Req, err: unknown): void => {
    const s = statusOf(err);
    if (s.status >= 500) log.warn('admin request failed', { path: r.url.pathname, err: s.message });
    if (r.res.headersSent) {
      r.res.destroy();
      return;
    }
    if (r.isApi) sendJson(r, s.status, { error: { status: s.status, errno: s.errno, message: s.message } });
    else sendHtml(r, s.status, errorPage(ctx(r, 'overview'), s.status, s.message));
  };

  const rates = (): { intervalMs: number; windowMs: number; series: Record<SeriesName, Array<[number, number]>>; units: Record<SeriesName, string> } => {
    const series = {} as Record<SeriesName, Array<[number, number]>>;
    const units = {} as Record<SeriesName, string>;
    for (const n of Object.keys(SERIES) as SeriesName[]) {
      series[n] = sampler.history().map((s) => [s.timeMs, s.values[n]]);
      units[n] = SERIES[n].unit;
    }
    return { intervalMs: sampler.intervalMs, windowMs: sampler.windowMs, series, units };
  };

  const jobOptions = (kind: JobKind, f: Record<string, string>): FsckJobOptions | GcJobOptions => {
    // The page's form sends verifyData=0 then, if ticked, verifyData=1 (the last one wins).
    if (kind === 'fsck') return { verifyData: bool(f['verifyData'], true) };
    const utilization = f['utilization'] === undefined || f['utilization'] === '' ? 0.5 : Number(f['utilization']);
    if (!(utilization >= 0 && utilization <= 1)) throw new HttpError(400, `utilization must be between 0 and 1, not ${f['utilization']}`);
    return { dryRun: bool(f['dryRun'], false), utilization };
  };
  const kindOf = (v: string | undefined): JobKind => {
    if (!JOB_KINDS.includes(v as JobKind)) throw new HttpError(400, `unknown job kind ${JSON.stringify(v)}: use ${JOB_KINDS.join(' or ')}`);
    return v as JobKind;
  };
  const startJob = (r: Req, f: Record<string, string>) => {
    const kind = kindOf(f['kind']);
    const job = jobs.start(kind, jobOptions(kind, f), r.principal!.user);
    if (kind === 'gc') {
      // The overview's store listing is stale once gc deleted something.
      void waitJob(job.id).then(() => collector.invalidate());
    }
    return job;
  };
  const waitJob = async (id: number): Promise<void> => {
    while (jobs.get(id).state === 'running') await new Promise((res) => setTimeout(res, 200));
  };

  const snapshotCreate = async (name: string | undefined): Promise<void> => {
    if (!name) throw new HttpError(400, 'a snapshot needs a name');
    validateSnapshotName(name);
    await o.fs.volume.createSnapshot(name);
    collector.invalidate();
    log.info('admin: snapshot created', { name });
  };
  const snapshotDelete = async (name: string | undefined): Promise<void> => {
    if (!name) throw new HttpError(400, 'which snapshot?');
    await o.fs.volume.deleteSnapshot(name);
    collector.invalidate();
    log.info('admin: snapshot deleted', { name });
  };

  const download = async (r: Req): Promise<void> => {
    const d = await openForDownload(o.fs, r.url.searchParams.get('path') ?? '');
    try {
      const name = d.path.split('/').pop() || 'download';
      r.res.writeHead(200, {
        ...securityHeaders(r.nonce),
        'content-type': 'application/octet-stream',
        'content-length': String(d.size),
        'content-disposition': `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      });
      for (let off = 0; off < d.size; off += DOWNLOAD_CHUNK_BYTES) {
        const chunk = await d.read(off, Math.min(DOWNLOAD_CHUNK_BYTES, d.size - off));
        if (chunk.length === 0) break; // truncated while we read: the client sees a short body
        if (!r.res.write(chunk)) {
          // A client that goes away never drains: 'close' ends the wait (and the download).
          await new Promise<void>((res) => {
            r.res.once('drain', res);
            r.res.once('close', res);
          });
        }
        if (r.res.destroyed || r.res.writableEnded) return;
      }
      r.res.end();
    } finally {
      await d.close();
    }
  };

  const browseLimit = (r: Req): number => {
    const l = r.url.searchParams.get('limit');
    if (l === null) return BROWSE_LIMIT_DEFAULT;
    const n = Number(l);
    if (!Number.isInteger(n) || n < 1 || n > BROWSE_LIMIT_MAX) throw new HttpError(400, `limit must be 1..${BROWSE_LIMIT_MAX}`);
    return n;
  };

  /** Authenticated routes. */
  const route = async (r: Req): Promise<void> => {
    const { req, url } = r;
    const p = url.pathname;
    const m = req.method ?? 'GET';
    const q = (k: string): string | undefined => url.searchParams.get(k) ?? undefined;
    const pageMsg = (): { text: string; error: boolean } | undefined => (q('done') ? { text: q('done')!, error: false } : undefined);

    if (m === 'GET' || m === 'HEAD') {
      switch (p) {
        case '/': {
          if (q('fresh')) collector.invalidate();
          const ov = await collector.overview();
          const frag = overviewFragment(ov, sampler.history(), sampler.windowMs, nowMs());
          return q('fragment') ? sendHtml(r, 200, frag) : sendHtml(r, 200, overviewPage(ctx(r, 'overview'), frag, refreshMs));
        }
        case '/api/overview':
          if (q('fresh')) collector.invalidate(); // a new store listing, not one up to 10 s old
          return sendJson(r, 200, { ...(await collector.overview()), rates: rates() });
        case '/jobs': {
          const frag = jobsFragment(jobs.list(), nowMs());
          if (q('fragment')) return sendHtml(r, 200, frag);
          return sendHtml(r, 200, jobsPage(ctx(r, 'jobs'), frag, Math.min(refreshMs, 1000), pageMsg()));
        }
        case '/api/jobs':
          return sendJson(r, 200, { jobs: jobs.list() });
        case '/snapshots':
          return sendHtml(r, 200, snapshotsPage(ctx(r, 'snapshots'), listSnapshots(o.fs), pageMsg()));
        case '/snapshots/delete': {
          const name = q('name');
          const s = listSnapshots(o.fs).find((x) => x.name === name);
          if (!s) throw new FsError('ENOENT', `no snapshot ${JSON.stringify(name ?? '')}`);
          return sendHtml(r, 200, confirmDeletePage(ctx(r, 'snapshots'), s));
        }
        case '/api/snapshots':
          return sendJson(r, 200, { snapshots: listSnapshots(o.fs) });
        case '/browse':
          return sendHtml(r, 200, browsePage(ctx(r, 'browse'), await browse(o.fs, q('path') ?? '/', { ...(q('cookie') !== undefined && { cookie: q('cookie')! }), limit: browseLimit(r) })));
        case '/api/browse': {
          const v = await browse(o.fs, q('path') ?? '/', { ...(q('cookie') !== undefined && { cookie: q('cookie')! }), limit: browseLimit(r) });
          return sendJson(r, 200, v);
        }
        case '/download':
        case '/api/download':
          return download(r);
        case '/api/csrf':
          return sendJson(r, 200, { user: r.principal!.user, via: r.principal!.via, csrf: r.principal!.csrf });
      }
      const jm = /^\/api\/jobs\/(\d{1,9})$/.exec(p);
      if (jm) return sendJson(r, 200, jobs.get(Number(jm[1])));
      throw new HttpError(404, `no page ${p}`, 'ENOENT');
    }

    // Everything else changes state: a CSRF token from a page (or GET /api/csrf) is required.
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && origin !== `http://${req.headers.host ?? ''}`) {
      throw new HttpError(403, `cross-origin request from ${origin} refused`, 'EACCES');
    }
    const fields = m === 'POST' ? await readFields(req) : {};
    const token = (req.headers['x-silt-csrf'] as string | undefined) ?? fields['csrf'];
    if (!auth.csrfValid(r.principal!, token)) {
      throw new HttpError(403, 'missing or wrong CSRF token (send the X-Silt-CSRF header from GET /api/csrf, or use the page form)', 'EACCES');
    }
    if (m === 'POST') {
      switch (p) {
        case '/logout':
          if (r.principal!.sessionId) auth.logout(r.principal!.sessionId);
          return redirect(r, '/login', { 'set-cookie': `${cookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` });
        case '/jobs': {
          try {
            const job = startJob(r, fields);
            return redirect(r, `/jobs#job-${job.id}`);
          } catch (err) {
            const s = statusOf(err);
            const frag = jobsFragment(jobs.list(), nowMs());
            return sendHtml(r, s.status, jobsPage(ctx(r, 'jobs'), frag, Math.min(refreshMs, 1000), { text: s.message, error: true }));
          }
        }
        case '/api/jobs':
          return sendJson(r, 202, startJob(r, fields), {});
        case '/snapshots':
        case '/snapshots/delete': {
          const name = fields['name'];
          try {
            if (p === '/snapshots') await snapshotCreate(name);
            else {
              if (fields['confirm'] !== name) throw new HttpError(400, 'deleting a snapshot needs confirmation (confirm=NAME)');
              await snapshotDelete(name);
            }
          } catch (err) {
            const s = statusOf(err);
            return sendHtml(r, s.status, snapshotsPage(ctx(r, 'snapshots'), listSnapshots(o.fs), { text: s.message, error: true }));
          }
          const what = p === '/snapshots' ? 'Created' : 'Deleted';
          return redirect(r, `/snapshots?done=${encodeURIComponent(`${what} snapshot ${name}.`)}`);
        }
        case '/api/snapshots':
          await snapshotCreate(fields['name']);
          return sendJson(r, 201, listSnapshots(o.fs).find((s) => s.name === fields['name']));
      }
    }
    if (m === 'DELETE') {
      const sm = /^\/api\/snapshots\/([^/]+)$/.exec(p);
      if (sm) {
        await snapshotDelete(decodeURIComponent(sm[1]!));
        return sendJson(r, 200, { deleted: decodeURIComponent(sm[1]!) });
      }
    }
    throw new HttpError(p.startsWith('/api/') || ['/logout', '/jobs', '/snapshots', '/snapshots/delete'].includes(p) ? 405 : 404, `${m} ${p} is not served`, 'EINVAL');
  };

  const login = async (r: Req): Promise<void> => {
    const next = (v: string | null | undefined): string => (v && v.startsWith('/') && !v.startsWith('//') && !v.startsWith('/\\') ? v : '/');
    if (r.req.method === 'GET') return sendHtml(r, 200, loginPage(ctx(r, 'login'), next(r.url.searchParams.get('next')), false));
    if (r.req.method !== 'POST') throw new HttpError(405, 'use GET or POST');
    const origin = r.req.headers.origin;
    if (origin !== undefined && origin !== 'null' && origin !== `http://${r.req.headers.host ?? ''}`) throw new HttpError(403, `cross-origin login from ${origin} refused`, 'EACCES');
    const f = await readFields(r.req);
    const p = auth.login(f['user'] ?? '', f['key'] ?? '');
    if (!p) {
      log.warn('admin: failed login', { user: f['user'] ?? '', from: r.req.socket.remoteAddress ?? '' });
      await new Promise((res) => setTimeout(res, 300)); // slows guessing
      return sendHtml(r, 401, loginPage(ctx(r, 'login'), next(f['next']), true));
    }
    log.info('admin: login', { user: p.user });
    return redirect(r, next(f['next']), { 'set-cookie': `${cookieName}=${p.sessionId}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor((o.sessionTtlMs ?? 8 * 3600_000) / 1000)}` });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const nonce = randomBytes(16).toString('base64');
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin.invalid');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const r: Req = { req, res, url, nonce, principal: undefined, isApi: url.pathname.startsWith('/api/') };
    try {
      if (url.pathname === '/login') return await login(r);
      r.principal = auth.authenticate(req.headers.cookie, req.headers.authorization, cookieName);
      if (!r.principal) {
        req.resume();
        if (r.isApi || (req.method !== 'GET' && req.method !== 'HEAD')) {
          return sendJson(r, 401, { error: { status: 401, errno: 'EACCES', message: 'log in first: a session cookie from /login, or HTTP Basic with the object API credentials' } }, { 'www-authenticate': 'Basic realm="silt admin", charset="UTF-8"' });
        }
        return redirect(r, `/login?next=${encodeURIComponent(url.pathname + url.search)}`);
      }
      await route(r);
    } catch (err) {
      fail(r, err);
    }
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  assert(typeof a === 'object' && a !== null, 'admin: no address');
  const address = { host: a.address, port: a.port };
  // Cookies are not isolated by port: one name per port keeps two servers on a host apart.
  cookieName = `silt_admin_${address.port}`;
  sampler.start();
  const hostPart = address.host.includes(':') ? `[${address.host}]` : address.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostPart}:${address.port}`,
    address,
    jobs,
    close: () =>
      (closing ??= (async () => {
        sampler.stop();
        jobs.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })()),
  };
}


