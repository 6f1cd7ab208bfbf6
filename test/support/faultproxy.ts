/**
 * A fault-injecting HTTP proxy for tests: listens on 127.0.0.1 (ephemeral port), forwards to one
 * upstream (Swift's proxy), and with seeded probabilities
 *   - answers 503 without forwarding,
 *   - resets the connection part way through the request body (the upstream sees a cut request),
 *   - forwards, then resets the connection before answering (the request took effect but its
 *     answer is lost),
 *   - truncates the response body (headers promise more, the socket closes early),
 *   - truncates it "consistently" (Content-Length rewritten to the short length, as a broken
 *     middlebox would: only checksums can tell),
 *   - delays the request,
 *   - stalls: takes the request and never answers (the client's timeout must fire; the request
 *     is not forwarded).
 * One seeded Random decides every request in arrival order, so a failure names its seed. The
 * Host header is forwarded unchanged, so Swift's tempauth hands out storage URLs that point back
 * at the proxy. Bounded: at most `maxConnections` client sockets, `upstreamSockets` upstream.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Random } from '../../src/util/index.ts';

export type FaultName = 'error503' | 'resetRequest' | 'resetResponse' | 'truncate' | 'truncateConsistent' | 'delay' | 'stall';

export type FaultRates = Partial<Record<FaultName, number>>;

export interface FaultProxyOptions {
  upstreamHost: string;
  upstreamPort: number;
  seed: number;
  rates: FaultRates;
  /** Delay range for 'delay' faults. Default [20, 200]. */
  delayMs?: [number, number];
  /** Only requests for which this is true get faults (default: all). */
  applies?: (method: string, path: string) => boolean;
  maxConnections?: number;
  upstreamSockets?: number;
}

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

function forwardHeaders(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (!HOP.has(k) && v !== undefined) out[k] = v;
  return out;
}

export class FaultProxy {
  /** Faults injected so far, by name, plus 'requests' and 'forwarded'. */
  readonly counts: Record<FaultName | 'requests' | 'forwarded', number> = {
    requests: 0,
    forwarded: 0,
    error503: 0,
    resetRequest: 0,
    resetResponse: 0,
    truncate: 0,
    truncateConsistent: 0,
    delay: 0,
    stall: 0,
  };
  rates: FaultRates;
  private readonly random: Random;
  private readonly agent: http.Agent;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: http.Server,
    private readonly opts: FaultProxyOptions,
  ) {
    this.rates = { ...opts.rates };
    this.random = new Random(opts.seed);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.upstreamSockets ?? 32 });
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const server = http.createServer();
    const proxy = new FaultProxy(server, opts);
    server.maxConnections = opts.maxConnections ?? 64;
    server.keepAliveTimeout = 30_000;
    server.on('connection', (s: Socket) => {
      proxy.sockets.add(s);
      s.on('close', () => proxy.sockets.delete(s));
    });
    server.on('request', (req, res) => proxy.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  totalFaults(): number {
    const c = this.counts;
    return c.error503 + c.resetRequest + c.resetResponse + c.truncate + c.truncateConsistent + c.delay + c.stall;
  }

  private pick(method: string, path: string): FaultName | undefined {
    // Always draw, so the sequence of decisions depends only on the order of requests.
    const u = this.random.next();
    if (this.opts.applies !== undefined && !this.opts.applies(method, path)) return undefined;
    let acc = 0;
    for (const name of ['error503', 'resetRequest', 'resetResponse', 'truncate', 'truncateConsistent', 'delay', 'stall'] as const) {
      acc += this.rates[name] ?? 0;
      if (u < acc) return name;
    }
    return undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.counts.requests++;
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    let fault = this.pick(method, path);
    // Faults that need a response body to cut only make sense for GETs.
    if ((fault === 'truncate' || fault === 'truncateConsistent') && method !== 'GET') fault = 'resetResponse';
    if (fault !== undefined) this.counts[fault]++;
    const cut = this.random.next();
    const kill = (): void => {
      req.socket.destroy();
    };

    if (fault === 'stall') {
      // Swallow the request; the socket stays open until the client gives up and closes it.
      req.resume();
      return;
    }

    if (fault === 'error503') {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '16' });
      res.end('fault injected\r\n');
      return;
    }

    const go = (): void => {
      this.counts.forwarded++;
      const up = http.request({
        host: this.opts.upstreamHost,
        port: this.opts.upstreamPort,
        method,
        path,
        headers: forwardHeaders(req.headers),
        agent: this.agent,
      });
      up.on('error', () => kill());
      req.on('aborted', () => up.destroy());
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
      });
      if (fault === 'resetRequest') {
        // Forward part of the body, then cut both sides: the upstream must discard the request.
        const limit = Math.floor(cut * Number(req.headers['content-length'] ?? 65536));
        let seen = 0;
        req.on('data', (chunk: Buffer) => {
          if (seen + chunk.length >= limit) {
            up.write(chunk.subarray(0, Math.max(0, limit - seen)));
            up.destroy();
            kill();
            return;
          }
          seen += chunk.length;
          up.write(chunk);
        });
        req.on('end', () => {
          up.destroy();
          kill();
        });
        return;
      }
      req.pipe(up);
      up.on('response', (ur) => {
        if (fault === 'resetResponse') {
          ur.resume();
          ur.on('end', kill);
          return;
        }
        const headers = forwardHeaders(ur.headers);
        const len = Number(ur.headers['content-length'] ?? NaN);
        if ((fault === 'truncate' || fault === 'truncateConsistent') && Number.isSafeInteger(len) && len > 1) {
          const keep = Math.floor(cut * len);
          if (fault === 'truncateConsistent') headers['content-length'] = String(keep);
          res.writeHead(ur.statusCode ?? 502, headers);
          let sent = 0;
          let done = false;
          const finish = (): void => {
            if (done) return;
            done = true;
            ur.destroy();
            // Consistent: a clean, short response. Plain: flush the partial body, then cut the
            // socket, so the client waits for bytes that never come and sees a reset.
            if (fault === 'truncateConsistent') res.end();
            else res.once('finish', kill).end();
          };
          if (keep === 0) finish();
          ur.on('data', (chunk: Buffer) => {
            if (done) return;
            const part = chunk.subarray(0, keep - sent);
            sent += part.length;
            res.write(part);
            if (sent >= keep) finish();
          });
          ur.on('end', finish);
          return;
        }
        res.writeHead(ur.statusCode ?? 502, headers);
        ur.pipe(res);
      });
    };

    if (fault === 'delay') {
      const [lo, hi] = this.opts.delayMs ?? [20, 200];
      setTimeout(go, lo + Math.floor(cut * (hi - lo)));
    } else {
      go();
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }
}
