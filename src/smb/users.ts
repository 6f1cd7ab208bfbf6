/**
 * Samba users of a `silt smb` share. A Samba user is a system user with a password in the share's
 * own passdb (tdbsam under the state directory): smbd becomes that user's uid/gid for every file
 * operation, so files created over SMB are owned by it in Silt and the kernel (FUSE
 * default_permissions) checks its rights. Missing system users are created
 * (`useradd --no-create-home --shell /usr/sbin/nologin`: no home, no login) and say so.
 */
import { exec, execOk } from './exec.ts';

/** useradd/usermod/groupadd fail at once when another process holds /etc/passwd's lock: retry. */
async function execLocked(cmd: string, args: readonly string[]): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await exec(cmd, args);
    if (r.code === 0) return;
    const out = (r.stderr || r.stdout).trim();
    if (i < 20 && /lock/i.test(out)) {
      await new Promise((res) => setTimeout(res, 250));
      continue;
    }
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${out}`);
  }
}

export interface SmbUser {
  name: string;
  password: string;
}

/** The group every share user joins; the share root is group-writable by it. */
export const SHARE_GROUP = 'silt-smb';

const NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Environment variable that can hold the password of `--user NAME` given without one. */
export function passwordEnvName(user: string): string {
  return `SILT_SMB_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Parse `NAME:PASSWORD` (the password is everything after the first colon), or `NAME` alone with
 * the password in $SILT_SMB_PASSWORD_<NAME>. Throws a message a person can act on.
 */
export function parseUserSpec(spec: string, env: NodeJS.ProcessEnv = process.env): SmbUser {
  const i = spec.indexOf(':');
  const name = i < 0 ? spec : spec.slice(0, i);
  let password = i < 0 ? undefined : spec.slice(i + 1);
  if (!NAME_RE.test(name)) {
    throw new Error(`user name '${name}' must be a system user name: lowercase letters, digits, '_' or '-', at most 32, not starting with a digit or '-'`);
  }
  if (name === 'root') throw new Error('root cannot be a share user: smbd skips every permission check for root');
  if (password === undefined) {
    password = env[passwordEnvName(name)];
    if (password === undefined) throw new Error(`--user ${name}: give NAME:PASSWORD, or set ${passwordEnvName(name)}`);
  }
  if (password.length === 0) throw new Error(`--user ${name}: the password is empty`);
  if (/[\n\r\0]/.test(password)) throw new Error(`--user ${name}: the password must not contain line breaks`);
  return { name, password };
}

export async function systemUserExists(name: string): Promise<boolean> {
  return (await exec('getent', ['passwd', name])).code === 0;
}

/** Create the system user if missing. Returns true when it was created. */
export async function ensureSystemUser(name: string): Promise<boolean> {
  if (await systemUserExists(name)) return false;
  await execLocked('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  return true;
}

/** Create the group if missing. Returns true when it was created. */
export async function ensureGroup(group: string): Promise<boolean> {
  if ((await exec('getent', ['group', group])).code === 0) return false;
  await execLocked('groupadd', ['-f', group]);
  return true;
}

/** Add the user to a supplementary group if not already in it. Returns true when added. */
export async function ensureInGroup(user: string, group: string): Promise<boolean> {
  const groups = (await execOk('id', ['-nG', user])).trim().split(/\s+/);
  if (groups.includes(group)) return false;
  await execLocked('usermod', ['-a', '-G', group, user]);
  return true;
}

export async function numericIds(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await execOk('id', ['-u', user])).trim());
  const gid = Number((await execOk('id', ['-g', user])).trim());
  return { uid, gid };
}

export async function groupId(group: string): Promise<number> {
  const line = (await execOk('getent', ['group', group])).trim();
  return Number(line.split(':')[2]);
}

/** Set (adding if needed) the Samba password of a user in the passdb named by `conf`. */
export async function setSmbPassword(conf: string, user: SmbUser): Promise<void> {
  await execOk('smbpasswd', ['-c', conf, '-s', '-a', user.name], { input: `${user.password}\n${user.password}\n` });
}

/** Users in the passdb named by `conf`. */
export async function listSmbUsers(conf: string): Promise<string[]> {
  const out = await execOk('pdbedit', ['-s', conf, '-L']);
  return out
    .split('\n')
    .map((l) => l.split(':')[0]!.trim())
    .filter((n) => n.length > 0);
}

export async function deleteSmbUser(conf: string, name: string): Promise<void> {
  await execOk('smbpasswd', ['-c', conf, '-x', name]);
}
