/**
 * smb: run the real Debian `smbd` over a Silt FUSE mount (Samba is not reimplemented). This layer
 * writes a self-contained smb.conf, manages the share's Samba users and supervises smbd; the
 * `silt smb` command (src/cli/smb.ts) mounts the volume and puts the pieces in order.
 *
 * Invariants:
 * - Nothing outside the state directory is written by Samba: smb.conf names every directory Samba
 *   uses (private, lock, state, cache, pid, ncalrpc, binddns, log) under it, and the passdb is a
 *   tdbsam file there. /etc/samba and /var/lib/samba are never read or changed. The only system
 *   changes are the ones a Samba user needs and that are logged: a missing system user is created
 *   (no home, nologin shell), users join the `silt-smb` group, and a share root still owned by
 *   group root becomes group silt-smb, mode g+rwxs.
 * - Nothing is installed: a missing smbd, smbpasswd or VFS module is an error naming the Debian
 *   package.
 * - Order: the mount answers before smbd starts; smbd (and every process of its group) has
 *   exited before the mount is unmounted; the unmount returns only after the final commit.
 * - smbd never outlives its supervisor: its stdin is a pipe from `silt smb`, and smbd in the
 *   foreground exits when stdin closes.
 * - The share is served with the mount in sync-on-close mode when `silt smb` mounts it: an SMB
 *   CLOSE (and a client FLUSH, via `strict sync`) returns after the data is in a durable commit.
 * - Helper programs are spawned asynchronously only: the same process may serve a FUSE mount.
 * - Passwords never appear in arguments of the programs run (smbpasswd reads them on stdin).
 */
export { clientAddress, invalidShareName, isLoopback, listensEverywhere, parseSmbOption, renderSmbConf, stateLayout, type SmbConfOptions, type SmbStateLayout } from './config.ts';
export { exec, execOk, type ExecResult } from './exec.ts';
export { Smbd, buildInfo, canConnect, findSamba, missingVfsModules, portFree, which, type SambaTools, type SmbdExit, type SmbdOptions } from './smbd.ts';
export {
  SHARE_GROUP,
  deleteSmbUser,
  ensureGroup,
  ensureInGroup,
  ensureSystemUser,
  groupId,
  listSmbUsers,
  numericIds,
  parseUserSpec,
  passwordEnvName,
  setSmbPassword,
  systemUserExists,
  type SmbUser,
} from './users.ts';
