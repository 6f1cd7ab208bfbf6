/**
 * The JSON-RPC 2.0 dispatcher, independent of any socket: one request line in, one reply line
 * out (or none for a notification). It never throws: every input, however malformed, yields a
 * valid JSON-RPC reply, and every error carries `data: {errno, code}`. This is the one place
 * where errors become JSON-RPC errors.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import type { MountTable } from '../fs/index.ts';
import { FsError, asFsError, metrics, nullLogger, type Logger } from '../util/index.ts';
import { UNAUTHENTICATED_METHODS, RpcAuthError, handlers, type CallContext, type Session } from './methods.ts';
import {
  BINARY_METHODS,
  DEFAULT_LIMITS,
  RPC_ERROR,
  encodeFrame,
  replyLine,
  rpcError,
  toBase64,
  type RpcErrorObject,
  type RpcId,
} from './protocol.ts';
import { describeIssues, methodParams, writeFrameParams, type MethodName } from './schema.ts';

export interface DispatcherOptions {
  mounts: MountTable;
  /** The shared secret every connection presents (RpcAuth or RpcMount's token). */
  token: string;
  logger?: Logger;
  batchMax?: number;
  /** Names this server process (changes on restart); random if absent. */
  serverId?: string;
}

const methodTable = new Map<string, MethodName>(Object.keys(methodParams).map((k) => [k, k as MethodName]));

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deepest nesting a request needs is 5 (batch, request, params, caller, groups). */
export const NESTING_MAX = 8;

/**
 * Whether arrays/objects in `line` nest deeper than `max`, found without parsing: strings are
 * skipped with indexOf (a megabyte of base64 costs one memchr), so a well-formed request costs
 * little, and a pathological line ("[[[[..." by the million, which JSON.parse takes seconds over
 * while every other client waits) is refused after `max` characters.
 */
export function nestsDeeperThan(line: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      for (;;) {
        j = line.indexOf('"', j);
        if (j === -1) return false; // unterminated: JSON.parse reports it
        let backslashes = 0;
        for (let k = j - 1; line.charCodeAt(k) === 0x5c; k--) backslashes++;
        if (backslashes % 2 === 0) break;
        j++;
      }
      i = j;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

function validId(v: unknown): v is RpcId {
  return v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

export class Dispatcher {
  readonly mounts: MountTable;
  readonly serverId: string;
  private readonly tokenDigest: Buffer;
  private readonly log: Logger;
  private readonly batchMax: number;
  private nextSession = 1;

  constructor(opts: DispatcherOptions) {
    if (opts.token.length === 0) throw new Error('the RPC token must not be empty');
    this.mounts = opts.mounts;
    this.tokenDigest = digest(opts.token);
    this.log = opts.logger ?? nullLogger;
    this.batchMax = opts.batchMax ?? DEFAULT_LIMITS.batchMax;
    this.serverId = opts.serverId ?? randomBytes(8).toString('hex');
  }

  newSession(remote = 'local'): Session {
    return { id: this.nextSession++, remote, authenticated: false, mountIds: new Set(), closeRequested: false };
  }

  /** The connection is gone: give back its mounts (and their pins and opens). */
  async endSession(s: Session): Promise<void> {
    const ids = [...s.mountIds];
    s.mountIds.clear();
    for (const id of ids) await this.mounts.unmount(id);
  }

  /** One request line (a JSON object or a batch array) -> the reply line, or undefined if none is due. */
  async handleLine(s: Session, line: string): Promise<string | undefined> {
    if (nestsDeeperThan(line, NESTING_MAX)) {
      return replyLine(null, { error: rpcError(RPC_ERROR.INVALID_REQUEST, `JSON nested deeper than ${NESTING_MAX} levels`, 'EINVAL') });
    }
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      return replyLine(null, { error: rpcError(RPC_ERROR.PARSE, `parse error: ${(e as Error).message}`, 'EINVAL') });
    }
    if (Array.isArray(msg)) {
      if (msg.length === 0) return replyLine(null, { error: rpcError(RPC_ERROR.INVALID_REQUEST, 'empty batch', 'EINVAL') });
      if (msg.length > this.batchMax) {
        return replyLine(null, {
          error: rpcError(RPC_ERROR.INVALID_REQUEST, `batch of ${msg.length} requests exceeds ${this.batchMax}`, 'E2BIG'),
        });
      }
      const replies = (await Promise.all(msg.map((m) => this.handleMessage(s, m)))) as (string | undefined)[];
      const out = replies.filter((r): r is string => r !== undefined);
      return out.length ? `[${out.join(',')}]` : undefined;
    }
    return (await this.handleMessage(s, msg)) as string | undefined;
  }

  /**
   * One binary frame (a request object in `header`, RpcWrite's data in `payload`) -> its reply:
   * a binary frame for a successful RpcRead (the data as payload), else a JSON line.
   */
  async handleFrame(s: Session, header: string, payload: Buffer): Promise<string | Buffer | undefined> {
    if (nestsDeeperThan(header, NESTING_MAX)) {
      return replyLine(null, { error: rpcError(RPC_ERROR.INVALID_REQUEST, `JSON nested deeper than ${NESTING_MAX} levels`, 'EINVAL') });
    }
    let msg: unknown;
    try {
      msg = JSON.parse(header);
    } catch (e) {
      return replyLine(null, { error: rpcError(RPC_ERROR.PARSE, `parse error in a binary frame's header: ${(e as Error).message}`, 'EINVAL') });
    }
    return this.handleMessage(s, msg, payload);
  }

  /** One request object -> its reply (undefined for a valid notification). */
  async handleMessage(s: Session, msg: unknown, payload?: Buffer): Promise<string | Buffer | undefined> {
    if (!isPlainObject(msg)) {
      return replyLine(null, { error: rpcError(RPC_ERROR.INVALID_REQUEST, 'a request must be a JSON object', 'EINVAL') });
    }
    const hasId = Object.hasOwn(msg, 'id');
    const id: RpcId = hasId && validId(msg['id']) ? msg['id'] : null;
    const invalid = (why: string): string => replyLine(id, { error: rpcError(RPC_ERROR.INVALID_REQUEST, why, 'EINVAL') });
    if (msg['jsonrpc'] !== '2.0') return invalid('"jsonrpc" must be "2.0"');
    if (hasId && !validId(msg['id'])) return invalid('"id" must be a string, a number or null');
    if (typeof msg['method'] !== 'string') return invalid('"method" must be a string');
    for (const k of Object.keys(msg)) {
      if (k !== 'jsonrpc' && k !== 'id' && k !== 'method' && k !== 'params') return invalid(`unknown member "${k.slice(0, 64)}"`);
    }
    const reply = await this.call(s, msg['method'], msg['params'], payload);
    // A notification (no id) gets no reply, even on error (JSON-RPC 2.0, section 4.1).
    if (!hasId) return undefined;
    if ('payload' in reply) return encodeFrame(replyLine(id, { result: reply.result }), reply.payload);
    return replyLine(id, reply);
  }

  private async call(
    s: Session,
    method: string,
    rawParams: unknown,
    frame?: Buffer,
  ): Promise<{ result: unknown } | { result: unknown; payload: Uint8Array } | { error: RpcErrorObject }> {
    const name = methodTable.get(method);
    if (!name) {
      return { error: rpcError(RPC_ERROR.METHOD_NOT_FOUND, `method not found: ${method.slice(0, 64)}`, 'ENOSYS') };
    }
    if (rawParams !== undefined && !isPlainObject(rawParams)) {
      return { error: rpcError(RPC_ERROR.INVALID_PARAMS, `${name}: params must be a JSON object (named parameters)`, 'EINVAL') };
    }
    if (!s.authenticated && !UNAUTHENTICATED_METHODS.has(name)) {
      return { error: rpcError(RPC_ERROR.UNAUTHORIZED, `${name}: authenticate first (RpcAuth, or RpcMount with a token)`, 'EACCES') };
    }
    const params: unknown = rawParams ?? {};
    if (frame) {
      if (!BINARY_METHODS.has(name)) {
        return { error: rpcError(RPC_ERROR.INVALID_REQUEST, `${name} cannot come as a binary frame (only RpcWrite and RpcRead)`, 'EINVAL') };
      }
      if (name === 'RpcRead' && frame.length > 0) {
        return { error: rpcError(RPC_ERROR.INVALID_PARAMS, `${name}: a binary frame for ${name} carries no payload`, 'EINVAL') };
      }
    }
    const schema: z.ZodType = frame && name === 'RpcWrite' ? writeFrameParams : methodParams[name];
    const parsed = schema.safeParse(params);
    if (!parsed.success) {
      const d = describeIssues(parsed.error.issues);
      const hint = frame && name === 'RpcWrite' && Object.hasOwn(params as object, 'data') ? ' (in a binary frame the data is the payload)' : '';
      return { error: rpcError(RPC_ERROR.INVALID_PARAMS, `${name}: invalid params: ${d.line}${hint}`, 'EINVAL', { issues: d.list }) };
    }
    const args = frame && name === 'RpcWrite' ? { ...(parsed.data as object), data: frame } : parsed.data;
    const ctx: CallContext = { mounts: this.mounts, session: s, serverId: this.serverId, authenticate: (t) => this.authenticate(s, t) };
    // silt_ops_total{frontend="rpc",op=method,outcome} and silt_op_seconds, for calls that reach a handler.
    const endTimer = metrics.opSeconds.startTimer({ frontend: 'rpc', op: name });
    let outcome = 'ok';
    try {
      const run = handlers[name] as (c: CallContext, p: unknown) => Promise<unknown>;
      const result = await run(ctx, args);
      if (name === 'RpcRead') {
        // The one result with bytes: raw in a binary frame's payload, base64 in JSON.
        const r = result as { data: Uint8Array; eof: boolean };
        if (frame) return { result: { eof: r.eof, size: r.data.length }, payload: r.data };
        return { result: { data: toBase64(r.data), eof: r.eof } };
      }
      // Catch unserialisable results (a bigint that escaped) here, as an internal error.
      JSON.stringify(result);
      return { result };
    } catch (err) {
      const e = this.toRpcError(name, s, err);
      outcome = e.data.errno;
      return { error: e };
    } finally {
      endTimer();
      metrics.ops.inc({ frontend: 'rpc', op: name, outcome });
    }
  }

  private authenticate(s: Session, token: string): void {
    const ok = timingSafeEqual(digest(token), this.tokenDigest);
    if (!ok) {
      s.closeRequested = true;
      this.log.warn('rpc: bad token; closing the connection', { remote: s.remote });
      throw new RpcAuthError('bad token');
    }
    s.authenticated = true;
  }

  /** The one place where an error becomes a JSON-RPC error object. */
  private toRpcError(method: MethodName, s: Session, err: unknown): RpcErrorObject {
    if (err instanceof RpcAuthError) return rpcError(RPC_ERROR.UNAUTHORIZED, `${method}: ${err.message}`, 'EACCES');
    if (err instanceof FsError) return rpcError(RPC_ERROR.FS, err.message, err.errno);
    if (err instanceof Error && (err.name === 'StoreError' || err.name === 'CorruptionError')) {
      const e = asFsError(err);
      return rpcError(RPC_ERROR.FS, e.message, e.errno);
    }
    this.log.error('rpc: internal error', { method, remote: s.remote, err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    return rpcError(RPC_ERROR.INTERNAL, `${method}: internal error: ${err instanceof Error ? err.message : String(err)}`, 'EIO');
  }
}
