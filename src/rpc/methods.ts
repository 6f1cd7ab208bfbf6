/**
 * What each RPC method does: the seed's RpcSvr calling Fs. Parameters arrive validated (schema.ts);
 * every file-system failure is an FsError, turned into a JSON-RPC error in dispatcher.ts only.
 */
import { effectiveIdentity, type Mount, type MountTable, type SnapshotAdmin } from '../fs/index.ts';
import type { Attr, Identity, SetAttrChanges } from '../fs/index.ts';
import { FsError } from '../util/index.ts';
import {
  PROTOCOL_VERSION,
  entryToWire,
  statToWire,
  statVfsToWire,
  toBase64,
  type MethodResults,
  type WireEntry,
} from './protocol.ts';
import type { MethodName, ParamsOut } from './schema.ts';

/** Raised when a connection is not (or badly) authenticated; maps to -32001. */
export class RpcAuthError extends Error {
  override readonly name = 'RpcAuthError';
}

/** One connection's state. */
export interface Session {
  readonly id: number;
  /** Where it comes from, for logs. */
  readonly remote: string;
  authenticated: boolean;
  /** Mounts made on this connection; dropped when it closes. */
  readonly mountIds: Set<number>;
  /** Set by a bad token: the transport closes the connection after sending the reply. */
  closeRequested: boolean;
}

export interface CallContext {
  readonly mounts: MountTable;
  readonly session: Session;
  readonly serverId: string;
  /** Check a token; a bad one throws RpcAuthError and marks the session for closing. */
  authenticate(token: string): void;
}

/** What handlers return: the wire results, except that RpcRead's bytes stay bytes (the dispatcher encodes them). */
type HandlerResults = Omit<MethodResults, 'RpcRead'> & { RpcRead: { data: Uint8Array; eof: boolean } };
type Handlers = { [M in MethodName]: (ctx: CallContext, p: ParamsOut<M>) => Promise<HandlerResults[M]> };

/** Methods a connection may call before it has authenticated. */
export const UNAUTHENTICATED_METHODS: ReadonlySet<MethodName> = new Set(['RpcPing', 'RpcAuth', 'RpcMount']);

const OK = Object.freeze({}) as Record<string, never>;

/** The mount `mountId` if this connection made it; ESTALE otherwise (as for an unknown id). */
function mountOf(ctx: CallContext, mountId: number): Mount {
  if (!ctx.session.mountIds.has(mountId)) {
    throw new FsError('ESTALE', `unknown mountId ${mountId} on this connection (mount ids belong to the connection that made them)`);
  }
  return ctx.mounts.get(mountId);
}

interface CallerParams {
  caller?: { uid: number; gid: number; groups?: number[] } | undefined;
}

function who(m: Mount, p: CallerParams, owner?: { uid?: number | undefined; gid?: number | undefined }): Identity {
  let c = p.caller;
  if (owner && (owner.uid !== undefined || owner.gid !== undefined)) {
    const base = c ?? m.identity;
    const uid = owner.uid ?? base.uid;
    c = { uid, gid: owner.gid ?? base.gid, ...(uid === base.uid && base.groups ? { groups: [...base.groups] } : {}) };
  }
  return effectiveIdentity(m, c);
}

async function entry(attr: Promise<Attr>): Promise<WireEntry> {
  const a = await attr;
  return { inode: a.ino, attr: statToWire(a) };
}

/** Snapshot administration: the mount must act as root (it changes the whole volume). */
function admin(m: Mount, what: string): SnapshotAdmin {
  if (!m.snapshots) throw new FsError('EOPNOTSUPP', `${what}: volume ${m.volume} has no snapshots here`);
  if (m.identity.uid !== 0) throw new FsError('EPERM', `${what}: only a mount made as root may create or delete snapshots`);
  return m.snapshots;
}

export const handlers: Handlers = {
  async RpcPing(ctx) {
    return { pong: true, protocol: PROTOCOL_VERSION, serverId: ctx.serverId, timeNs: (BigInt(Date.now()) * 1_000_000n).toString() };
  },

  async RpcAuth(ctx, p) {
    ctx.authenticate(p.token);
    return OK;
  },

  async RpcMount(ctx, p) {
    if (p.token !== undefined) ctx.authenticate(p.token);
    else if (!ctx.session.authenticated) throw new RpcAuthError('RpcMount needs a token (or RpcAuth first)');
    const uid = p.uid ?? 0;
    const gid = p.gid ?? (p.uid === undefined ? 0 : uid);
    const m = ctx.mounts.mount(p.volume, { uid, gid, groups: p.groups ?? [] });
    ctx.session.mountIds.add(m.id);
    return { mountId: m.id, rootInode: m.rootInode, volume: m.volume, serverId: ctx.serverId, protocol: PROTOCOL_VERSION };
  },

  async RpcUnmount(ctx, p) {
    mountOf(ctx, p.mountId);
    ctx.session.mountIds.delete(p.mountId);
    await ctx.mounts.unmount(p.mountId);
    return OK;
  },

  async RpcLookup(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return entry(m.fs.lookup(who(m, p), p.inode, p.name));
  },

  async RpcLookupPath(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    const id = who(m, p);
    if (Buffer.byteLength(p.path) >= 4096) throw new FsError('ENAMETOOLONG', 'path exceeds PATH_MAX');
    let cur = await m.fs.getattr(id, m.rootInode);
    for (const part of p.path.split('/')) {
      if (part === '' || part === '.') continue;
      cur = await m.fs.lookup(id, cur.ino, part);
    }
    return { inode: cur.ino, attr: statToWire(cur) };
  },

  async RpcGetStat(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return statToWire(await m.fs.getattr(who(m, p), p.inode));
  },

  async RpcSetStat(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    const c: SetAttrChanges = {};
    if (p.mode !== undefined) c.mode = p.mode;
    if (p.uid !== undefined) c.uid = p.uid;
    if (p.gid !== undefined) c.gid = p.gid;
    if (p.size !== undefined) c.size = p.size;
    if (p.atime !== undefined) c.atimeNs = p.atime;
    if (p.mtime !== undefined) c.mtimeNs = p.mtime;
    if (p.ctime !== undefined) c.ctimeNs = p.ctime;
    return statToWire(await m.fs.setattr(who(m, p), p.inode, c));
  },

  async RpcResize(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return statToWire(await m.fs.setattr(who(m, p), p.inode, { size: p.size }));
  },

  async RpcCreate(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return entry(m.fs.create(who(m, p, p), p.inode, p.name, p.mode));
  },

  async RpcMkdir(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return entry(m.fs.mkdir(who(m, p, p), p.inode, p.name, p.mode));
  },

  async RpcMknod(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return entry(m.fs.mknod(who(m, p, p), p.inode, p.name, p.mode, p.rdev));
  },

  async RpcSymlink(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return entry(m.fs.symlink(who(m, p, p), p.inode, p.name, p.target));
  },

  async RpcReadSymlink(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return { target: await m.fs.readlink(who(m, p), p.inode) };
  },

  async RpcLink(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return entry(m.fs.link(who(m, p), p.targetInode, p.inode, p.name));
  },

  async RpcUnlink(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await m.fs.unlink(who(m, p), p.inode, p.name);
    return OK;
  },

  async RpcRmdir(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await m.fs.rmdir(who(m, p), p.inode, p.name);
    return OK;
  },

  async RpcRename(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    const flags = { ...(p.noReplace && { noReplace: true }), ...(p.exchange && { exchange: true }) };
    await m.fs.rename(who(m, p), p.inode, p.name, p.newInode, p.newName, flags);
    return OK;
  },

  async RpcReaddir(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    const id = who(m, p);
    // One more than asked tells whether the directory ends here.
    const list = p.plus ? await m.fs.readdirplus(id, p.inode, p.cookie, p.limit + 1) : await m.fs.readdir(id, p.inode, p.cookie, p.limit + 1);
    const eof = list.length <= p.limit;
    return { entries: list.slice(0, p.limit).map(entryToWire), eof };
  },

  async RpcOpen(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return statToWire(await ctx.mounts.open(m, who(m, p), p.inode, p.flags));
  },

  async RpcRelease(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await ctx.mounts.release(m, p.inode, p.wrote);
    return OK;
  },

  async RpcRead(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    const bytes = await m.fs.read(who(m, p), p.inode, p.offset, p.length);
    return { data: bytes, eof: bytes.length < p.length };
  },

  async RpcWrite(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return { size: await m.fs.write(who(m, p), p.inode, p.offset, p.data) };
  },

  async RpcFlush(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await m.fs.getattr(m.identity, p.inode); // ENOENT for an inode that does not exist
    await m.fs.fsync(p.inode, p.dataOnly);
    return OK;
  },

  async RpcSync(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await m.fs.sync();
    return OK;
  },

  async RpcFallocate(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await m.fs.fallocate(who(m, p), p.inode, p.mode, p.offset, p.length);
    return OK;
  },

  async RpcSeek(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return { offset: await m.fs.lseek(who(m, p), p.inode, p.offset, p.whence) };
  },

  async RpcAccess(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await m.fs.access(who(m, p), p.inode, p.mask);
    return OK;
  },

  async RpcPin(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    for (let k = 0; k < p.count; k++) await ctx.mounts.pin(m, p.inode);
    return OK;
  },

  async RpcUnpin(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    ctx.mounts.unpin(m, p.inode, p.count);
    return OK;
  },

  async RpcGetXAttr(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return { value: toBase64(await m.fs.getxattr(who(m, p), p.inode, p.name)) };
  },

  async RpcSetXAttr(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    const flags = { ...(p.create && { create: true }), ...(p.replace && { replace: true }) };
    await m.fs.setxattr(who(m, p), p.inode, p.name, p.value, flags);
    return OK;
  },

  async RpcListXAttr(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return { names: await m.fs.listxattr(who(m, p), p.inode) };
  },

  async RpcRemoveXAttr(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await m.fs.removexattr(who(m, p), p.inode, p.name);
    return OK;
  },

  async RpcStatVFS(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return statVfsToWire(await m.fs.statfs(who(m, p)));
  },

  async RpcSnapShotCreate(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    return admin(m, 'RpcSnapShotCreate').create(p.name);
  },

  async RpcSnapShotDelete(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    await admin(m, 'RpcSnapShotDelete').delete(p.name);
    return OK;
  },

  async RpcSnapShotList(ctx, p) {
    const m = mountOf(ctx, p.mountId);
    if (!m.snapshots) throw new FsError('EOPNOTSUPP', `RpcSnapShotList: volume ${m.volume} has no snapshots here`);
    return { snapshots: m.snapshots.list() };
  },
};
