/**
 * rpc: the JSON-RPC 2.0 server over TCP (the seed's RpcSvr) and its typed client. docs/RPC.md is
 * the protocol's reference; this is the code's public surface. Requests are newline-delimited JSON
 * lines, or binary frames (NUL, two u32 lengths, JSON header, raw payload) for RpcWrite/RpcRead.
 *
 * Invariants:
 * - The server never crashes on input: every line, however malformed, gets a valid JSON-RPC reply
 *   (or none, for a notification), and every error carries `data: {errno, code}`.
 * - FsError becomes a JSON-RPC error in exactly one place (Dispatcher.toRpcError); the client
 *   turns it back into an FsError with the same errno.
 * - No call other than RpcPing/RpcAuth/RpcMount runs before the connection has presented the
 *   token; a bad token closes the connection.
 * - Every per-connection quantity is bounded: line length, JSON nesting, requests in flight, batch
 *   size, buffered reply bytes, connections, time to authenticate, idle time, time to finish a line.
 * - A mountId is valid only on the connection that made it; when the connection closes, its
 *   mounts go away with their pins and opens.
 * - 64-bit values on the wire: inode numbers, sizes and offsets are safe-integer JSON numbers;
 *   times (ns) and readdir cookies are decimal strings.
 * - RpcFlush, RpcSync (and RpcRelease of a written file in sync-on-close mode) reply only after a
 *   commit covering every earlier call is durable in the store; everything else replies from memory.
 */
export { startRpcServer, type RpcServer, type RpcServerOptions } from './server.ts';
export { Dispatcher, type DispatcherOptions } from './dispatcher.ts';
export type { Session } from './methods.ts';
export { RpcClient, parseAddress, DEFAULT_RPC_PORT, type RpcClientOptions } from './client.ts';
export {
  DEFAULT_LIMITS,
  FrameReader,
  encodeFrame,
  DATA_BYTES_MAX,
  READDIR_ENTRIES_MAX,
  PROTOCOL_VERSION,
  RPC_ERROR,
  type MethodResults,
  type RpcErrorData,
  type RpcErrorObject,
  type RpcLimits,
  type WireDirEntry,
  type WireEntry,
  type WireSnapshot,
  type WireStat,
  type WireStatVFS,
} from './protocol.ts';
export { METHOD_NAMES, methodParams, type MethodName, type ParamsIn } from './schema.ts';
