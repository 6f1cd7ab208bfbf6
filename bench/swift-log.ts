/**
 * Request counts for the peer benchmark (bench/peers.ts), read from the local Swift's own access
 * log, so nothing sits in the data path: every system talks to Swift directly, and the bench
 * process only reads a few lines of a file after a workload.
 *
 * scripts/swift-saio.sh runs the proxy with "-v", so its proxy-logging middleware writes one line
 * per request to <state>/log/proxy.log when the request completes (Swift's default access-log
 * format; every field URL-quoted, so the line splits on spaces):
 *
 *   proxy-server: client_ip remote_addr datetime method path protocol status referer user_agent
 *     auth_token bytes_recvd bytes_sent client_etag transaction_id headers request_time source
 *     log_info start_time end_time policy_index
 *
 * Which lines are the clients' requests (checked against Swift 2.30 with curl and aws s3api):
 *  - proxy-logging is in the pipeline twice. The left one logs the request as the client sent it
 *    and marks its environment as logged; the right one (next to the proxy app) logs only what has
 *    no mark: subrequests that middlewares make in a new environment, with swift.source set
 *    ('VW'/'OV' container-info HEADs, 'SLO' segment GETs and HEADs, 'BD' bulk deletes, 'S3'
 *    container checks, 'SSC' copy sinks...). A client request has source '-'; only those count.
 *  - An S3 request is logged once, by the left logger, with the path the client sent
 *    (path-style: /<bucket>/<key>?<query>) and source '-'. The Swift request s3api translates it
 *    into (/v1/AUTH_<account>/<bucket>/<key>, source 'S3') runs in a copy of the environment that
 *    already carries the mark, so it is not logged (unless s3api's force_swift_request_proxy_log
 *    is set: then it shows with source 'S3' and is left out like any subrequest).
 *  - The path is req.path_qs quoted once more: decode the field once for the path as it was on
 *    the wire, split at the first '?', then decode each segment.
 *
 * Attribution as in the old counting proxy: Swift paths /v1/AUTH_<account>/<container>/<object>
 * count under <container> (account-level requests under "(account)"), S3 paths /<bucket>/<key>
 * under <bucket>, auth and info requests under "(auth)". Bytes are bytes_recvd: the request body
 * bytes the proxy read. A window counts the client requests that STARTED in it (start_time), so
 * a request still running when a workload ends is counted with it once it completes (window()
 * waits for the log to go quiet). Requests in flight at once come from each line's start_time and
 * end_time.
 */
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';

export interface MethodCounts {
  requests: number;
  /** Request body bytes the proxy read from the client. */
  bytesIn: number;
}

/** container -> method -> counts */
export type CountTable = Record<string, Record<string, MethodCounts>>;

/** One access-log line of a client request (or a subrequest: see source). */
export interface AccessLine {
  method: string;
  /** The container or bucket addressed (see containerOf). */
  container: string;
  /** The request path as it was on the wire (percent-encoded), without the query. */
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** swift.source: '-' for requests a client sent, else the middleware that made the subrequest. */
  source: string;
  userAgent: string;
  /** Epoch seconds. */
  start: number;
  end: number;
}

const FIELDS = 21;

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Which container or bucket a request path (as on the wire, no query) addresses. */
export function containerOf(path: string): string {
  const parts = path.split('/').filter((p) => p.length > 0);
  if (parts[0] === 'auth' || parts[0] === 'info') return '(auth)';
  if (parts[0] === 'v1') return parts.length >= 3 ? decode(parts[2]!) : '(account)';
  return parts.length >= 1 ? decode(parts[0]!) : '(account)';
}

/** Parse one line of proxy.log; undefined for anything that is not an access-log line. */
export function parseLine(line: string): AccessLine | undefined {
  if (!line.startsWith('proxy-server: ')) return undefined;
  const f = line.slice('proxy-server: '.length).trimEnd().split(' ');
  if (f.length !== FIELDS) return undefined;
  const method = f[3]!;
  const status = Number(f[6]);
  const start = Number(f[18]);
  const end = Number(f[19]);
  if (!/^[A-Z]+$/.test(method) || !Number.isInteger(status) || !(start > 0) || !(end >= start)) return undefined;
  const pathQs = decode(f[4]!);
  const q = pathQs.indexOf('?');
  const path = q < 0 ? pathQs : pathQs.slice(0, q);
  const num = (s: string) => (s === '-' ? 0 : Number(s) || 0);
  return {
    method,
    container: containerOf(path),
    path,
    status,
    bytesIn: num(f[10]!),
    bytesOut: num(f[11]!),
    source: f[16]!,
    userAgent: decode(f[8]!),
    start,
    end,
  };
}

/** A place in the log and the wall-clock time it was taken (epoch seconds). */
export interface LogMark {
  offset: number;
  time: number;
}

/** The client requests of one window (see SwiftLog.window). */
export class LogWindow {
  constructor(readonly lines: readonly AccessLine[]) {}

  private of(container: string, method?: string): AccessLine[] {
    return this.lines.filter((l) => l.container === container && (method === undefined || l.method === method));
  }

  /** Requests to `container` (of one method, or all). */
  requests(container: string, method?: string): number {
    return this.of(container, method).length;
  }

  /** Request body bytes sent to `container` (of one method, or all). */
  bytesIn(container: string, method?: string): number {
    return this.of(container, method).reduce((n, l) => n + l.bytesIn, 0);
  }

  /** Requests to `container` by method. */
  byMethod(container: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const l of this.of(container)) out[l.method] = (out[l.method] ?? 0) + 1;
    return out;
  }

  /** Requests and request bytes by container and method. */
  counts(): CountTable {
    const t: CountTable = {};
    for (const l of this.lines) {
      const cell = ((t[l.container] ??= {})[l.method] ??= { requests: 0, bytesIn: 0 });
      cell.requests++;
      cell.bytesIn += l.bytesIn;
    }
    return t;
  }

  /** The most requests to `container` (of one method, or all) in flight at once, from start and end times. */
  inflightPeak(container: string, method?: string): number {
    const ev: Array<[number, number]> = [];
    for (const l of this.of(container, method)) ev.push([l.start, 1], [l.end, -1]);
    // At equal times an end comes before a start: back-to-back requests do not overlap.
    ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let n = 0;
    let peak = 0;
    for (const [, d] of ev) peak = Math.max(peak, (n += d));
    return peak;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SwiftLog {
  /**
   * @param path the proxy's log (scripts/swift-saio.sh: <state dir>/log/proxy.log)
   * @param pollMs how long to wait before reading, and between reads until no new line of the window shows up
   * @param maxWaitMs give up waiting for the log to go quiet after this long
   */
  constructor(
    readonly path: string,
    private readonly pollMs = 300,
    private readonly maxWaitMs = 10_000,
  ) {}

  /** Where the log ends now, and when (take one before a workload and one after). */
  mark(): LogMark {
    const time = Date.now() / 1000;
    let offset = 0;
    try {
      offset = statSync(this.path).size;
    } catch {
      // not there yet: every line will be new
    }
    return { offset, time };
  }

  /**
   * The client requests (source '-') that started between two marks, to the given containers (or
   * any). Waits until the log is flushed: Swift writes a line when its request completes, so it
   * reads after pollMs, then again every pollMs until a read brings no new line of the window
   * (or maxWaitMs have passed).
   */
  async window(from: LogMark, to: LogMark, containers?: readonly string[]): Promise<LogWindow> {
    const want = containers === undefined ? undefined : new Set(containers);
    const t0 = from.time;
    const t1 = to.time + 0.001;
    const keep = (l: AccessLine) => l.source === '-' && l.start >= t0 && l.start <= t1 && (want === undefined || want.has(l.container));
    const lines: AccessLine[] = [];
    let offset = from.offset;
    const deadline = Date.now() + this.maxWaitMs;
    for (let round = 0; ; round++) {
      await sleep(this.pollMs);
      const r = await this.readFrom(offset);
      offset = r.next;
      let added = 0;
      for (const l of r.lines) {
        if (keep(l)) {
          lines.push(l);
          added++;
        }
      }
      if ((round > 0 && added === 0) || Date.now() > deadline) break;
    }
    return new LogWindow(lines);
  }

  /** Every whole access-log line from `offset` to the end; `next` is where the next read starts. */
  private async readFrom(offset: number): Promise<{ lines: AccessLine[]; next: number }> {
    let fh;
    try {
      fh = await open(this.path, 'r');
    } catch {
      return { lines: [], next: offset };
    }
    try {
      const size = (await fh.stat()).size;
      if (size < offset) offset = 0; // the log was truncated or replaced: the times sort it out
      const lines: AccessLine[] = [];
      const buf = Buffer.alloc(1 << 20);
      let rest = '';
      let pos = offset;
      let next = offset;
      while (pos < size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        const text = rest + buf.toString('latin1', 0, bytesRead);
        const cut = text.lastIndexOf('\n');
        if (cut < 0) {
          rest = text;
          continue;
        }
        for (const line of text.slice(0, cut).split('\n')) {
          const l = parseLine(line);
          if (l !== undefined) lines.push(l);
        }
        rest = text.slice(cut + 1);
        next = pos - Buffer.byteLength(rest, 'latin1');
      }
      return { lines, next };
    } finally {
      await fh.close();
    }
  }

  /**
   * Check that the proxy logs client requests where we read them: send a request with a unique
   * user agent and wait for its line. Throws with what to look at when it does not show up (a
   * proxy log level above INFO, e.g. SWIFT_LOG_LEVEL=WARNING, logs no requests).
   */
  async probe(endpoint: string, tag: string): Promise<void> {
    const m = this.mark();
    const ua = `silt-bench-probe-${tag}`;
    const r = await fetch(`${endpoint}/info`, { headers: { 'user-agent': ua } });
    await r.arrayBuffer();
    const deadline = Date.now() + this.maxWaitMs;
    for (;;) {
      await sleep(100);
      const { lines } = await this.readFrom(m.offset);
      if (lines.some((l) => l.userAgent === ua && l.source === '-')) return;
      if (Date.now() > deadline) {
        throw new Error(`no line for a probe request in Swift's access log ${this.path} after ${this.maxWaitMs / 1000} s: the bench counts requests from it (is the proxy's log level INFO? see SWIFT_LOG_LEVEL in scripts/swift-saio.sh)`);
      }
    }
  }
}
