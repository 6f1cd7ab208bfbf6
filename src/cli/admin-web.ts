/**
 * The admin pages option of `silt serve`: `--admin [HOST:PORT]` (default 127.0.0.1:8099) serves
 * the operator's web pages (docs/ADMIN.md) beside JSON-RPC, in the same process, over the same
 * volume. Off unless given: the pages can start gc and delete snapshots, so an operator opts in.
 * They take the object API's credentials (--http-user/--http-key, or SILT_HTTP_USER and
 * SILT_HTTP_KEY) whether or not --http is on; without credentials --admin is an error.
 */
import type { Command } from 'commander';
import { startAdminServer, type AdminCredential, type AdminServer } from '../admin/index.ts';
import type { SiltFileSystem } from '../fs/index.ts';
import { parseAddress } from '../rpc/index.ts';
import type { Logger } from '../util/index.ts';
import { CliError } from './common.ts';
import type { HttpFlags } from './objapi.ts';

export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:8099';

export interface AdminFlags {
  /** true when given without a value. */
  admin?: string | boolean;
}

export function addAdminOptions(cmd: Command): Command {
  return cmd.option(
    '--admin [host:port]',
    `also serve the admin web pages (overview, fsck/gc jobs, snapshots, browsing; default ${DEFAULT_ADMIN_LISTEN}; docs/ADMIN.md); same credentials as --http`,
  );
}

/**
 * The object API's users, paired with their keys by position, from --http-user/--http-key (a
 * string or a repeated option), else SILT_HTTP_USER/SILT_HTTP_KEY (comma-separated for several).
 */
export function adminCredentials(o: HttpFlags, env: NodeJS.ProcessEnv = process.env): AdminCredential[] {
  const list = (v: string | readonly string[] | undefined): string[] =>
    v === undefined ? [] : typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : [...v];
  let users = list(o.httpUser);
  let keys = list(o.httpKey);
  if (users.length === 0 && keys.length === 0) {
    users = list(env['SILT_HTTP_USER']);
    keys = list(env['SILT_HTTP_KEY']);
  }
  if (users.length === 0 || keys.length === 0 || users.some((u) => u === '') || keys.some((k) => k === '')) {
    throw new CliError('--admin needs credentials: --http-user NAME --http-key KEY (or SILT_HTTP_USER and SILT_HTTP_KEY); there is no anonymous access');
  }
  if (users.length !== keys.length) throw new CliError(`--admin: ${users.length} users but ${keys.length} keys; give one --http-key for each --http-user`);
  return users.map((user, i) => ({ user, key: keys[i]! }));
}

/** Start the admin pages if --admin was given; returns the server (or undefined) and the line to print. */
export async function startAdmin(
  o: AdminFlags & HttpFlags,
  fs: SiltFileSystem,
  volume: string,
  log: Logger,
  endpoints: Record<string, string>,
): Promise<{ server: AdminServer; line: string } | undefined> {
  if (o.admin === undefined || o.admin === false) return undefined;
  const listen = o.admin === true ? DEFAULT_ADMIN_LISTEN : o.admin;
  let addr: { host: string; port: number };
  try {
    addr = parseAddress(listen);
  } catch (e) {
    throw new CliError(`--admin: ${(e as Error).message}`);
  }
  const credentials = adminCredentials(o);
  let server: AdminServer;
  try {
    server = await startAdminServer({ fs, volume, listen: addr, credentials, endpoints, logger: log });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`cannot listen on ${listen} (--admin): ${code === 'EADDRINUSE' ? 'address in use' : (e as Error).message}`);
  }
  if (!['127.0.0.1', '::1', 'localhost'].includes(server.address.host)) {
    log.warn('the admin pages listen beyond loopback: the key and session cookie travel unencrypted; use a private network or a TLS proxy');
  }
  return { server, line: `silt: admin pages for volume '${volume}' on ${server.url}/ (log in with the object API credentials)\n` };
}
