/**
 * The object API options of `silt serve`: `--http [HOST:PORT]` (default 127.0.0.1:8090) serves the
 * volume as Swift and S3 objects (docs/OBJECT-API.md) beside JSON-RPC, in the same process, over
 * the same file system. Credentials come from --http-user/--http-key or SILT_HTTP_USER and
 * SILT_HTTP_KEY; there is no anonymous access, so --http without credentials is an error.
 */
import type { Command } from 'commander';
import type { FileSystem } from '../fs/index.ts';
import { startObjectApi, type ObjectApi } from '../objapi/index.ts';
import { parseAddress } from '../rpc/index.ts';
import type { Logger } from '../util/index.ts';
import { CliError } from './common.ts';

export const DEFAULT_HTTP_LISTEN = '127.0.0.1:8090';

export interface HttpFlags {
  /** true when given without a value. */
  http?: string | boolean;
  httpUser?: string;
  httpKey?: string;
  httpRegion?: string;
}

export function addHttpOptions(cmd: Command): Command {
  return cmd
    .option('--http [host:port]', `also serve the volume as Swift and S3 objects over HTTP (default ${DEFAULT_HTTP_LISTEN}; docs/OBJECT-API.md)`)
    .option('--http-user <name>', 'object API user: Swift X-Auth-User (e.g. account:user) and S3 access key id (default $SILT_HTTP_USER)')
    .option('--http-key <key>', 'object API key: Swift X-Auth-Key and S3 secret (default $SILT_HTTP_KEY)')
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
  const user = o.httpUser ?? process.env['SILT_HTTP_USER'];
  const key = o.httpKey ?? process.env['SILT_HTTP_KEY'];
  if (!user || !key) {
    throw new CliError('--http needs credentials: --http-user NAME --http-key KEY (or SILT_HTTP_USER and SILT_HTTP_KEY); there is no anonymous access');
  }
  let api: ObjectApi;
  try {
    api = await startObjectApi({ fs, listen: addr, credentials: [{ user, key }], logger: log, volume, region: o.httpRegion ?? 'us-east-1' });
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
