/**
 * The RPC server's transport: newline-delimited JSON-RPC 2.0 over TCP. Frames requests into lines
 * (bounded), runs at most `inflightMax` of one connection's requests at once (reading pauses
 * beyond that, so a fast sender is slowed, not refused), pauses reading while the client does not
 * read its replies, and closes connections that do not authenticate in time, stay idle, or
 * dribble a partial line. Replies may come back in any order; the id matches them.
 */
import * as net from 'node:net';
import { nullLogger, type Logger } from '../util/index.ts';
import { Dispatcher, type DispatcherOptions } from './dispatcher.ts';
import type { Session } from './methods.ts';
import { DATA_BYTES_MAX, DEFAULT_LIMITS, FrameReader, RPC_ERROR, decodeText, replyLine, rpcError, type RpcLimits } from './protocol.ts';

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

/** A request waiting to run: a JSON line, or a binary frame's header and payload. */
type Work = string | { header: string; payload: Buffer };

class Connection {
  readonly session: Session;
  private readonly reader: FrameReader;
  private readonly queue: Work[] = [];
  private inflight = 0;
  private closed = false;
  /** A bad binary frame was seen: nothing more is read from this connection. */
  private refusing = false;
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
    this.reader = new FrameReader(limits.frameBytesMax, DATA_BYTES_MAX);
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
    if (this.closed || this.refusing) return;
    for (const item of this.reader.push(chunk)) {
      if ('line' in item) {
        if (item.line.length > 1 || item.line[0] !== 0x0d) this.queue.push(decodeText(item.line));
      } else if ('header' in item) {
        this.queue.push({ header: decodeText(item.header), payload: item.payload });
      } else if ('tooLong' in item) {
        this.log.warn('rpc: request line too long; skipped', { remote: this.session.remote, bytesMax: this.limits.frameBytesMax });
        this.send(
          replyLine(null, {
            error: rpcError(RPC_ERROR.INVALID_REQUEST, `request line longer than the limit of ${this.limits.frameBytesMax} bytes; skipped`, 'E2BIG'),
          }),
        );
      } else {
        // A binary frame's length prefix cannot be trusted: no way to find the next request.
        this.log.warn('rpc: bad binary frame; closing', { remote: this.session.remote, why: item.badFrame });
        this.send(replyLine(null, { error: rpcError(RPC_ERROR.INVALID_REQUEST, `${item.badFrame}; closing the connection`, 'E2BIG') }));
        this.queue.length = 0;
        this.refusing = true;
        this.socket.end();
        return;
      }
    }
    this.armFrameTimer();
    this.pump();
  }

  /** A partial line that does not complete within frameTimeoutMs closes the connection. */
  private armFrameTimer(): void {
    if (this.reader.partialBytes === 0) {
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
      const work = this.queue.shift()!;
      this.inflight++;
      void this.run(work);
    }
    if (this.queue.length > 0 || this.inflight >= this.limits.inflightMax || this.socket.writableLength > this.limits.outputBytesMax) {
      this.socket.pause();
    }
  }

  private async run(work: Work): Promise<void> {
    let reply: string | Buffer | undefined;
    try {
      reply =
        typeof work === 'string'
          ? await this.dispatcher.handleLine(this.session, work)
          : await this.dispatcher.handleFrame(this.session, work.header, work.payload);
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

  private send(reply: string | Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (typeof reply === 'string') this.socket.write(reply + '\n');
    else this.socket.write(reply);
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
