/**
 * The object API options of `silt serve`: `--http [HOST:PORT]` (default 127.0.0.1:8090) serves the
 * volume as Swift and S3 objects (docs/OBJECT-API.md) beside JSON-RPC, in the same process, over
 * the same file system. Credentials: pairs of --http-user/--http-key (repeat both for more
 * users; the n-th key belongs to the n-th user), else the configuration file's `httpUser` and
 * `httpKey` (a string or a list each, paired the same way), else SILT_HTTP_USER and SILT_HTTP_KEY
 * (comma-separated for several). There is no anonymous access: --http without a user is an error.
 */
import type { Command } from 'commander';
import type { FileSystem } from '../fs/index.ts';
import { startObjectApi, type Credential, type ObjectApi } from '../objapi/index.ts';
import { parseAddress } from '../rpc/index.ts';
import type { Logger } from '../util/index.ts';
import { CliError } from './common.ts';

export const DEFAULT_HTTP_LISTEN = '127.0.0.1:8090';

export interface HttpFlags {
  /** true when given without a value. */
  http?: string | boolean;
  /** One per user (a single string from older callers). */
  httpUser?: string | readonly string[];
  httpKey?: string | readonly string[];
  httpRegion?: string;
}

const collect = (v: string, prev: readonly string[] | undefined): string[] => [...(prev ?? []), v];

const asList = (v: string | readonly string[] | undefined): string[] =>
  v === undefined ? [] : typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : [...v];

/**
 * The object API's users from flags (or the configuration file, which fills the same options),
 * else the environment: users and keys paired by position. A count mismatch, an empty or repeated
 * user is a CliError naming the problem; no pairs at all is a CliError too (no anonymous access).
 */
export function httpCredentials(o: HttpFlags, env: NodeJS.ProcessEnv = process.env): Credential[] {
  let users = asList(o.httpUser);
  let keys = asList(o.httpKey);
  if (users.length === 0 && keys.length === 0) {
    users = asList(env['SILT_HTTP_USER']);
    keys = asList(env['SILT_HTTP_KEY']);
  }
  if (users.length === 0 || keys.length === 0) {
    throw new CliError('--http needs credentials: --http-user NAME --http-key KEY (or httpUser/httpKey in the configuration file, or SILT_HTTP_USER and SILT_HTTP_KEY); there is no anonymous access');
  }
  if (users.length !== keys.length) {
    throw new CliError(`--http: ${users.length} users but ${keys.length} keys; give one --http-key for each --http-user, in the same order`);
  }
  const seen = new Set<string>();
  return users.map((user, i) => {
    if (/[\s/]/.test(user)) throw new CliError(`--http-user ${JSON.stringify(user)}: a user may not contain spaces or '/'`);
    if (seen.has(user)) throw new CliError(`--http-user ${JSON.stringify(user)} is given twice`);
    seen.add(user);
    return { user, key: keys[i]! };
  });
}

export function addHttpOptions(cmd: Command): Command {
  return cmd
    .option('--http [host:port]', `also serve the volume as Swift and S3 objects over HTTP (default ${DEFAULT_HTTP_LISTEN}; docs/OBJECT-API.md)`)
    .option('--http-user <name>', 'object API user: Swift X-Auth-User (e.g. account:user) and S3 access key id; repeat with --http-key for more users (default $SILT_HTTP_USER)', collect, [])
    .option('--http-key <key>', 'object API key: Swift X-Auth-Key and S3 secret, one per --http-user in the same order (default $SILT_HTTP_KEY)', collect, [])
    .option('--http-region <region>', 'SigV4 region the S3 dialect answers to', 'us-east-1');
}

/** Start the object API if --http was given; returns it (or undefined) and the line to print. */
export async function startHttp(o: HttpFlags, fs: FileSystem, volume: string, log: Logger): Promise<{ api: ObjectApi; line: string } | undefined> {
  if (o.http === undefined || o.http === false) return undefined;
  const listen = o.http === true ? DEFAULT_HTTP_LISTEN : o.http;
  let addr: { host: string; port: number };
  try {
    addr = parseAddress(listen);
  } catch (e) {
    throw new CliError(`--http: ${(e as Error).message}`);
  }
  const credentials = httpCredentials(o);
  let api: ObjectApi;
  try {
    api = await startObjectApi({ fs, listen: addr, credentials, logger: log, volume, region: o.httpRegion ?? 'us-east-1' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`cannot listen on ${listen} (--http): ${code === 'EADDRINUSE' ? 'address in use' : (e as Error).message}`);
  }
  if (!['127.0.0.1', '::1', 'localhost'].includes(api.address.host)) {
    log.warn('the object API listens beyond loopback: keys, tokens and data travel unencrypted; use a private network or a TLS proxy');
  }
  return {
    api,
    line: `silt: object API for volume '${volume}' on ${api.url} (Swift: ${api.url}/auth/v1.0, account AUTH_${volume}; S3: path style, region ${o.httpRegion ?? 'us-east-1'})\n`,
  };
}
