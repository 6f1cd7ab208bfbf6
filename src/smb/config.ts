/**
 * A self-contained smb.conf: every directory Samba writes (passdb, secrets, locks, state, caches,
 * pid files, ncalrpc sockets, logs) lives under one state directory, so `silt smb` never reads or
 * touches the system's /etc/samba or /var/lib/samba. Settings follow what was measured for Samba
 * over a Silt FUSE mount (shared LAB-NOTES): DOS attributes, alternate data streams and Windows
 * ACLs live in xattrs (`user.DOSATTRIB`, `user.DosStream.*`, `security.NTACL`); inotify-based
 * change notification is off (it delivered duplicate notifications).
 */
import * as os from 'node:os';
import * as path from 'node:path';

export interface SmbStateLayout {
  root: string;
  conf: string;
  private: string;
  lock: string;
  state: string;
  cache: string;
  pid: string;
  ncalrpc: string;
  binddns: string;
  log: string;
  /** The default mountpoint when silt smb mounts the volume itself. */
  mnt: string;
}

export function stateLayout(stateDir: string): SmbStateLayout {
  const root = path.resolve(stateDir);
  const j = (p: string): string => path.join(root, p);
  return {
    root,
    conf: j('smb.conf'),
    private: j('private'),
    lock: j('lock'),
    state: j('state'),
    cache: j('cache'),
    pid: j('pid'),
    ncalrpc: j('ncalrpc'),
    binddns: j('binddns'),
    log: j('log'),
    mnt: j('mnt'),
  };
}

export interface SmbConfOptions {
  layout: SmbStateLayout;
  share: string;
  /** Directory shared (the Silt mount). */
  path: string;
  port: number;
  /** Address or interface to listen on; undefined, 0.0.0.0 or :: = every interface. */
  listen?: string | undefined;
  /** Samba users allowed to connect. */
  users: readonly string[];
  /** Of those, the ones that may only read. */
  readOnlyUsers: readonly string[];
  /** VFS modules of the share, e.g. ['streams_xattr', 'acl_xattr']. */
  vfsObjects: readonly string[];
  /** Samba debug level (0-10). Default 1. */
  logLevel?: number;
  workgroup?: string;
  /**
   * Extra `name = value` settings for the share section, after Silt's (so they win: Samba keeps
   * the last value of a parameter). Share-level parameters only (smb.conf(5) marks them (S)).
   */
  shareOptions?: readonly string[];
}

/** Parse `name = value` (or `name=value`) of --smb-option; throws a message a person can act on. */
export function parseSmbOption(spec: string): string {
  const m = /^\s*([A-Za-z][A-Za-z0-9 :_-]*?)\s*=\s*(.*?)\s*$/.exec(spec);
  if (!m || /[\n\r\0\[\]]/.test(spec)) throw new Error(`--smb-option '${spec}' must be 'name = value' (an smb.conf share parameter) on one line`);
  return `${m[1]!.toLowerCase().replace(/\s+/g, ' ')} = ${m[2]!}`;
}

const RESERVED_SHARES = new Set(['global', 'homes', 'printers', 'print$', 'ipc$']);

/** A share name Windows, macOS and Linux clients all accept. Returns a reason when it is not. */
export function invalidShareName(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/.test(name)) {
    return `share name '${name}' must be 1-80 letters, digits, '.', '_' or '-', starting with a letter or digit`;
  }
  if (RESERVED_SHARES.has(name.toLowerCase())) return `share name '${name}' is reserved by Samba`;
  return undefined;
}

export function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === 'lo' || addr === '::1' || /^127\.\d+\.\d+\.\d+$/.test(addr);
}

export function listensEverywhere(addr: string | undefined): boolean {
  return addr === undefined || addr === '' || addr === '0.0.0.0' || addr === '::' || addr === '*';
}

/** The address a local client should use to reach the server (an interface name: its first IPv4 address). */
export function clientAddress(listen: string | undefined): string {
  if (listensEverywhere(listen) || listen === 'lo' || listen === 'localhost') return '127.0.0.1';
  const l = listen!.split('/')[0]!;
  if (/^[0-9.]+$/.test(l) || l.includes(':')) return l;
  const addrs = os.networkInterfaces()[l] ?? [];
  return (addrs.find((a) => a.family === 'IPv4') ?? addrs[0])?.address ?? '127.0.0.1';
}

function checkValue(what: string, v: string): string {
  if (/[\n\r\0]/.test(v)) throw new Error(`${what} must not contain line breaks: ${JSON.stringify(v)}`);
  return v;
}

/** Render smb.conf. Values are checked: nothing a caller passes can add a line to the file. */
export function renderSmbConf(o: SmbConfOptions): string {
  const bad = invalidShareName(o.share);
  if (bad) throw new Error(bad);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new Error(`port ${o.port} is not a TCP port`);
  const L = o.layout;
  for (const [k, v] of Object.entries(L)) checkValue(k, v);
  checkValue('share path', o.path);
  const lines: string[] = [];
  const set = (k: string, v: string | number): void => {
    lines.push(`  ${k} = ${checkValue(k, String(v))}`);
  };

  lines.push('# Written by `silt smb` on every start; edits are overwritten. Self-contained: nothing here');
  lines.push('# refers to the system Samba configuration or its directories.');
  lines.push('[global]');
  set('server role', 'standalone server');
  set('server string', `Silt ${o.share}`);
  set('workgroup', o.workgroup ?? 'WORKGROUP');
  set('security', 'user');
  set('map to guest', 'never');
  set('restrict anonymous', 2);
  set('smb ports', o.port);
  if (listensEverywhere(o.listen)) {
    set('bind interfaces only', 'no');
  } else {
    const l = o.listen!;
    if (!/^[A-Za-z0-9.:_%/-]+$/.test(l)) throw new Error(`--listen '${l}' is not an address or interface name`);
    set('interfaces', isLoopback(l) ? 'lo' : l);
    set('bind interfaces only', 'yes');
  }
  set('disable netbios', 'yes');
  set('server min protocol', 'SMB2_02');
  set('private dir', L.private);
  set('lock directory', L.lock);
  set('state directory', L.state);
  set('cache directory', L.cache);
  set('pid directory', L.pid);
  set('ncalrpc dir', L.ncalrpc);
  set('binddns dir', L.binddns);
  set('passdb backend', `tdbsam:${path.join(L.private, 'passdb.tdb')}`);
  set('log file', path.join(L.log, 'log.%m'));
  set('log level', o.logLevel ?? 1);
  set('usershare path', '');
  set('load printers', 'no');
  set('printing', 'bsd');
  set('printcap name', '/dev/null');
  set('disable spoolss', 'yes');
  // inotify on a FUSE mount reports changes twice (measured); smbd's own notifications suffice.
  set('kernel change notify', 'no');
  // Leases and kernel share modes need kernel features FUSE does not offer; locks are POSIX locks.
  set('kernel oplocks', 'no');
  set('kernel share modes', 'no');
  lines.push('');

  lines.push(`[${o.share}]`);
  set('path', o.path);
  set('comment', `Silt volume (${o.share})`);
  set('browseable', 'yes');
  set('read only', 'no');
  if (o.users.length > 0) set('valid users', o.users.join(' '));
  if (o.readOnlyUsers.length > 0) set('read list', o.readOnlyUsers.join(' '));
  // DOS attributes in user.DOSATTRIB instead of borrowing the execute bits.
  set('store dos attributes', 'yes');
  set('map archive', 'no');
  set('map hidden', 'no');
  set('map readonly', 'no');
  set('map system', 'no');
  set('ea support', 'yes');
  if (o.vfsObjects.length > 0) set('vfs objects', o.vfsObjects.join(' '));
  // A client's FLUSH becomes fsync, which returns after a durable commit.
  set('strict sync', 'yes');
  set('posix locking', 'yes');
  set('create mask', '0644');
  set('directory mask', '0755');
  for (const opt of o.shareOptions ?? []) lines.push(`  ${checkValue('smb option', parseSmbOption(opt))}`);
  lines.push('');
  return lines.join('\n');
}
