/**
 * The RPC server's transport: newline-delimited JSON-RPC 2.0 over TCP. Frames requests into lines
 * (bounded), runs at most `inflightMax` of one connection's requests at once (reading pauses
 * beyond that, so a fast sender is slowed, not refused), pauses reading while the client does not
 * read its replies, and closes connections that do not authenticate in time, stay idle, or
 * dribble a partial line. Replies may come back in any order; the id matches them.
 */
import { isAscii } from 'node:buffer';
import * as net from 'node:net';
import { nullLogger, type Logger } from '../util/index.ts';
import { Dispatcher, type DispatcherOptions } from './dispatcher.ts';
import type { Session } from './methods.ts';
import { DEFAULT_LIMITS, RPC_ERROR, replyLine, rpcError, type RpcLimits } from './protocol.ts';

export interface RpcServerOptions extends DispatcherOptions {
  /** Address to bind; 127.0.0.1 unless told otherwise. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  limits?: Partial<RpcLimits>;
}

export interface RpcServer {
  readonly host: string;
  readonly port: number;
  readonly dispatcher: Dispatcher;
  /** Open connections. */
  readonly connections: number;
  /** Stop accepting, let in-flight requests finish (up to drainTimeoutMs), close every connection, drop their mounts. */
  close(): Promise<void>;
}

const NEWLINE = 0x0a;

class Connection {
  readonly session: Session;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private discarding = false;
  private readonly queue: string[] = [];
  private inflight = 0;
  private closed = false;
  private ending = false;
  private frameTimer: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  private idleCheck: Promise<void> | undefined;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly dispatcher: Dispatcher,
    private readonly limits: RpcLimits,
    private readonly log: Logger,
    private readonly onGone: (c: Connection) => void,
  ) {
    this.session = dispatcher.newSession(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.setTimeout(limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
    socket.on('timeout', () => {
      if (this.inflight === 0 && this.queue.length === 0) {
        this.log.debug('rpc: closing an idle connection', { remote: this.session.remote });
        this.destroy();
      }
    });
    socket.on('error', (err) => this.log.debug('rpc: connection error', { remote: this.session.remote, err: err.message }));
    socket.on('end', () => {
      // Half-close from the client: answer what is in flight, then close our side.
      this.ending = true;
      this.maybeFinish();
    });
    socket.on('close', () => this.gone());
    this.authTimer = setTimeout(() => {
      if (!this.session.authenticated) {
        this.log.debug('rpc: no authentication in time; closing', { remote: this.session.remote });
        this.destroy();
      }
    }, limits.authTimeoutMs);
    this.authTimer.unref();
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length && !this.closed) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.discarding) {
        if (nl !== -1) this.discarding = false;
      } else if (end > start) {
        this.pending.push(chunk.subarray(start, end));
        this.pendingBytes += end - start;
        if (this.pendingBytes > this.limits.frameBytesMax) {
          this.frameTooLarge();
          if (nl === -1) this.discarding = true;
        }
      }
      if (nl === -1) break;
      if (this.pending.length) {
        const line = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
        this.pending = [];
        this.pendingBytes = 0;
        this.enqueue(line);
      }
      start = nl + 1;
    }
    this.armFrameTimer();
    this.pump();
  }

  private frameTooLarge(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.log.warn('rpc: frame too large; skipped', { remote: this.session.remote, bytesMax: this.limits.frameBytesMax });
    this.send(
      replyLine(null, {
        error: rpcError(RPC_ERROR.INVALID_REQUEST, `request line longer than the limit of ${this.limits.frameBytesMax} bytes; skipped`, 'E2BIG'),
      }),
    );
  }

  private enqueue(line: Buffer): void {
    // Tolerate CRLF; skip blank lines.
    let end = line.length;
    if (end > 0 && line[end - 1] === 0x0d) end--;
    if (end === 0) return;
    const bytes = line.subarray(0, end);
    // Pure ASCII (every base64 payload) decodes as latin1 at a small fraction of UTF-8's cost.
    this.queue.push(bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8'));
  }

  /** A partial line that does not complete within frameTimeoutMs closes the connection. */
  private armFrameTimer(): void {
    if (this.pendingBytes === 0 && !this.discarding) {
      if (this.frameTimer) clearTimeout(this.frameTimer);
      this.frameTimer = undefined;
      return;
    }
    if (this.frameTimer) return;
    this.frameTimer = setTimeout(() => {
      this.log.debug('rpc: a request line did not complete in time; closing', { remote: this.session.remote });
      this.destroy();
    }, this.limits.frameTimeoutMs);
    this.frameTimer.unref();
  }

  private pump(): void {
    while (!this.closed && this.inflight < this.limits.inflightMax && this.queue.length > 0 && !this.session.closeRequested) {
      const line = this.queue.shift()!;
      this.inflight++;
      void this.run(line);
    }
    if (this.queue.length > 0 || this.inflight >= this.limits.inflightMax || this.socket.writableLength > this.limits.outputBytesMax) {
      this.socket.pause();
    }
  }

  private async run(line: string): Promise<void> {
    let reply: string | undefined;
    try {
      reply = await this.dispatcher.handleLine(this.session, line);
    } catch (err) {
      // The dispatcher never throws; this is a last line of defence.
      this.log.error('rpc: dispatcher threw', { err: String(err) });
      reply = replyLine(null, { error: rpcError(RPC_ERROR.INTERNAL, 'internal error', 'EIO') });
    }
    this.inflight--;
    if (reply !== undefined) this.send(reply);
    if (this.session.authenticated && this.authTimer) {
      clearTimeout(this.authTimer);
      this.authTimer = undefined;
    }
    if (this.session.closeRequested) {
      this.queue.length = 0;
      this.socket.end();
      return;
    }
    this.maybeResume();
    this.maybeFinish();
    if (this.inflight === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private send(line: string): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(line + '\n');
  }

  private maybeResume(): void {
    if (this.closed) return;
    this.pump();
    if (this.queue.length === 0 && this.inflight < this.limits.inflightMax && this.socket.writableLength <= this.limits.outputBytesMax) {
      this.socket.resume();
    }
  }

  private maybeFinish(): void {
    if (this.ending && this.inflight === 0 && this.queue.length === 0 && !this.closed) this.socket.end();
  }

  /** Resolves once nothing is in flight (or the connection is gone). */
  idle(): Promise<void> {
    if (this.closed || (this.inflight === 0 && this.queue.length === 0)) return Promise.resolve();
    this.idleCheck ??= new Promise<void>((resolve) => this.idleWaiters.push(resolve)).finally(() => {
      this.idleCheck = undefined;
    });
    return this.idleCheck;
  }

  /** Stop reading new requests (shutdown). */
  stopReading(): void {
    this.queue.length = 0;
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    if (this.frameTimer) clearTimeout(this.frameTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
    for (const w of this.idleWaiters.splice(0)) w();
    this.onGone(this);
    this.dispatcher.endSession(this.session).catch((err: unknown) => this.log.warn('rpc: unmount on close failed', { err: String(err) }));
  }
}

/** Listen for RPC connections; resolves once listening. */
export async function startRpcServer(opts: RpcServerOptions): Promise<RpcServer> {
  const limits: RpcLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const log = opts.logger ?? nullLogger;
  const dispatcher = new Dispatcher({ ...opts, batchMax: opts.batchMax ?? limits.batchMax });
  const conns = new Set<Connection>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  server.maxConnections = limits.connectionsMax;
  server.on('connection', (socket) => {
    const c = new Connection(socket, dispatcher, limits, log, (gone) => conns.delete(gone));
    conns.add(c);
  });
  server.on('drop', (d) => log.warn('rpc: too many connections; dropped one', { remote: d?.remoteAddress, connectionsMax: limits.connectionsMax }));
  server.on('error', (err) => log.error('rpc: server error', { err: err.message }));

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port: opts.port ?? 0 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    host: addr.address,
    port: addr.port,
    dispatcher,
    get connections() {
      return conns.size;
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of conns) c.stopReading();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([...conns].map((c) => c.idle())),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, limits.drainTimeoutMs);
          }),
        ]);
        clearTimeout(timer);
        for (const c of conns) c.destroy();
        await stopped;
        await dispatcher.mounts.unmountAll();
      })();
      return closing;
    },
  };
}
