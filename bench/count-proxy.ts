/**
 * A counting HTTP proxy for the peer benchmark: listens on 127.0.0.1 (ephemeral port), forwards
 * every request unchanged to one upstream (Swift's proxy server, which also serves the S3 API) and
 * counts requests AT THE STORE's door, by container (or bucket) and method, with the request body
 * bytes. Every system in bench/peers.ts talks to Swift through it, so "PUTs a system sent" is what
 * arrived, not what the client says it sent.
 *
 * The Host header is passed through, so Swift's tempauth hands out storage URLs that point back at
 * this proxy, and S3 signatures (which cover Host) stay valid. Bodies are streamed both ways (a
 * 1 GiB PUT is never buffered).
 *
 * Attribution: Swift paths are /v1/AUTH_<account>/<container>/<object>; S3 path-style paths are
 * /<bucket>/<key>. Auth requests (/auth/...) count under "(auth)", account-level ones under
 * "(account)".
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface MethodCounts {
  requests: number;
  /** Request body bytes received from the client. */
  bytesIn: number;
}

/** container -> method -> counts */
export type CountTable = Record<string, Record<string, MethodCounts>>;

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

function forwardHeaders(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (!HOP.has(k) && v !== undefined) out[k] = v;
  return out;
}

/** Which container or bucket a request path addresses. */
export function containerOf(rawPath: string): string {
  const path = rawPath.split('?')[0] ?? '/';
  const parts = path.split('/').filter((p) => p.length > 0);
  if (parts[0] === 'auth' || parts[0] === 'info') return '(auth)';
  if (parts[0] === 'v1') return parts.length >= 3 ? decodeURIComponent(parts[2]!) : '(account)';
  return parts.length >= 1 ? decodeURIComponent(parts[0]!) : '(account)';
}

export class CountProxy {
  readonly counts: CountTable = {};
  /** Requests in flight now, and the most seen at once, by container (reset with resetPeaks). */
  readonly inflight: Record<string, number> = {};
  readonly inflightPeak: Record<string, number> = {};
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: http.Server,
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  static async start(upstreamHost: string, upstreamPort: number): Promise<CountProxy> {
    const server = http.createServer();
    const proxy = new CountProxy(server, upstreamHost, upstreamPort);
    server.keepAliveTimeout = 60_000;
    server.requestTimeout = 0; // a 1 GiB upload on a loaded machine may take minutes
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

  /** Forget the peaks of in-flight requests (call before a workload, read inflightPeak after). */
  resetPeaks(): void {
    for (const k of Object.keys(this.inflightPeak)) this.inflightPeak[k] = this.inflight[k] ?? 0;
  }

  /** A deep copy of the counts so far (take one before and one after a workload). */
  snapshot(): CountTable {
    return JSON.parse(JSON.stringify(this.counts)) as CountTable;
  }

  /** Requests of `method` to `container` between two snapshots. */
  static delta(before: CountTable, after: CountTable, container: string, method: string): MethodCounts {
    const a = after[container]?.[method] ?? { requests: 0, bytesIn: 0 };
    const b = before[container]?.[method] ?? { requests: 0, bytesIn: 0 };
    return { requests: a.requests - b.requests, bytesIn: a.bytesIn - b.bytesIn };
  }

  /** Every method's request count to `container` between two snapshots. */
  static deltaAll(before: CountTable, after: CountTable, container: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of Object.keys(after[container] ?? {})) {
      const n = CountProxy.delta(before, after, container, m).requests;
      if (n > 0) out[m] = n;
    }
    return out;
  }

  /** Request body bytes of every method sent to `container` between two snapshots. */
  static deltaBytes(before: CountTable, after: CountTable, container: string): number {
    let n = 0;
    for (const m of Object.keys(after[container] ?? {})) n += CountProxy.delta(before, after, container, m).bytesIn;
    return n;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const c = containerOf(path);
    const row = (this.counts[c] ??= {});
    const cell = (row[method] ??= { requests: 0, bytesIn: 0 });
    cell.requests++;
    req.on('data', (d: Buffer) => (cell.bytesIn += d.length));
    this.inflight[c] = (this.inflight[c] ?? 0) + 1;
    this.inflightPeak[c] = Math.max(this.inflightPeak[c] ?? 0, this.inflight[c]);
    res.on('close', () => (this.inflight[c] = (this.inflight[c] ?? 1) - 1));
    const up = http.request(
      { host: this.upstreamHost, port: this.upstreamPort, method, path, headers: forwardHeaders(req.headers), agent: this.agent },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.statusMessage, forwardHeaders(ures.headers));
        ures.pipe(res);
        ures.on('error', () => res.destroy());
      },
    );
    up.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end();
      } else res.destroy();
    });
    req.on('error', () => up.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
