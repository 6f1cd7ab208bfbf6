/**
 * The simulation's oracle: a model of a Silt namespace as plain maps, and the POSIX rules the fs
 * layer applies (as root), down to which errno wins when several apply.
 *
 * A model is a map path -> node id plus a map node id -> node. Nodes are immutable (every change
 * replaces the node), so a snapshot is a shallow copy of the two maps: the simulation keeps one per
 * operation boundary since the last acknowledged sync.
 *
 * The canonical form (`describe`) is one line per path: type, permission bits, content digest,
 * symlink target, xattrs, hard-link group (the first path naming the same inode) and nlink. The
 * same function describes a live file system (see `describeFs`), so "recovered state equals the
 * model at boundary i" is a string comparison.
 */
import { createHash } from 'node:crypto';

export type NodeType = 'file' | 'dir' | 'symlink';

export interface MNode {
  readonly type: NodeType;
  /** Permission bits (mode & 0o7777). */
  readonly mode: number;
  /** File content (files only). Never mutated: a write makes a new buffer. */
  readonly data: Buffer;
  readonly target: string;
  readonly xattrs: ReadonlyMap<string, Buffer>;
  /** Observed nodes carry the file system's nlink; model nodes derive it from the namespace. */
  readonly nlink?: number;
}

const EMPTY = Buffer.alloc(0);
const contentDigests = new WeakMap<Buffer, string>();

function contentDigest(b: Buffer): string {
  let d = contentDigests.get(b);
  if (d === undefined) {
    d = b.length === 0 ? 'empty' : createHash('sha1').update(b).digest('hex').slice(0, 16);
    contentDigests.set(b, d);
  }
  return d;
}

export function makeNode(type: NodeType, mode: number, extra: Partial<MNode> = {}): MNode {
  return { type, mode, data: EMPTY, target: '', xattrs: new Map(), ...extra };
}

export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** The result of an operation: ok, or the errno name it failed with. */
export type Outcome = { ok: true } | { errno: string };
export const OK: Outcome = { ok: true };
const fail = (errno: string): Outcome => ({ errno });

export function outcomeText(o: Outcome): string {
  return 'ok' in o ? 'ok' : o.errno;
}

export class Model {
  constructor(
    /** path ('' is the root) -> node id */
    readonly names: Map<string, number> = new Map([['', 0]]),
    readonly nodes: Map<number, MNode> = new Map([[0, makeNode('dir', 0o755)]]),
    public nextId = 1,
    /** Open file handles, oldest first: the node id each one has open (it outlives its names). */
    public handles: number[] = [],
  ) {}

  clone(): Model {
    return new Model(new Map(this.names), new Map(this.nodes), this.nextId, [...this.handles]);
  }

  node(path: string): MNode | undefined {
    const id = this.names.get(path);
    return id === undefined ? undefined : this.nodes.get(id);
  }

  /** Names directly inside a directory path. */
  children(dir: string): string[] {
    const out: string[] = [];
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const p of this.names.keys()) {
      if (p === '' || !p.startsWith(prefix)) continue;
      if (!p.slice(prefix.length).includes('/')) out.push(p);
    }
    return out;
  }

  /** Paths of directories, root first. */
  dirs(): string[] {
    return [...this.names.keys()].filter((p) => this.node(p)?.type === 'dir').sort();
  }

  /**
   * Resolve a path as `lookupPath` does (no symlinks followed): ENOENT for a missing component,
   * ENOTDIR when a component before the last is not a directory.
   */
  resolve(path: string): { errno: string } | { node: MNode } {
    if (path === '') return { node: this.node('')! };
    const parts = path.split('/');
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      const here = this.node(cur)!;
      if (here.type !== 'dir') return { errno: 'ENOTDIR' };
      cur = joinPath(cur, parts[i]!);
      if (!this.names.has(cur)) return { errno: 'ENOENT' };
    }
    return { node: this.node(cur)! };
  }

  /** Resolve the parent of `path` and require a directory (makeNode/unlink/... call `dir()` on it). */
  private parentDir(path: string): Outcome {
    const r = this.resolve(parentPath(path));
    if ('errno' in r) return r;
    if (r.node.type !== 'dir') return fail('ENOTDIR');
    return OK;
  }

  private set(path: string, node: MNode): void {
    const id = this.names.get(path);
    if (id === undefined) throw new Error(`model: set of missing ${path}`);
    this.nodes.set(id, node);
  }

  private addName(path: string, id: number): void {
    this.names.set(path, id);
  }

  /** Drop a name; drop the node when no name and no open handle is left. */
  private dropName(path: string): void {
    const id = this.names.get(path)!;
    this.names.delete(path);
    this.maybeDrop(id);
  }

  private maybeDrop(id: number): void {
    for (const v of this.names.values()) if (v === id) return;
    if (this.handles.includes(id)) return;
    this.nodes.delete(id);
  }

  // ------------------------------------------------------------------ open handles

  /** open(2) of a path (O_RDWR, optionally O_TRUNC): EISDIR for a directory. */
  open(path: string, trunc: boolean): Outcome {
    const r = this.resolve(path);
    if ('errno' in r) return r;
    if (r.node.type === 'dir') return fail('EISDIR');
    const id = this.names.get(path)!;
    if (trunc && r.node.type === 'file' && r.node.data.length > 0) this.nodes.set(id, { ...r.node, data: EMPTY });
    this.handles.push(id);
    return OK;
  }

  /** close of handle number `h`: an unlinked node goes with its last handle. */
  close(h: number): Outcome {
    const id = this.handles[h]!;
    this.handles.splice(h, 1);
    this.maybeDrop(id);
    return OK;
  }

  /** The node a handle has open (named or not). */
  handleNode(h: number): MNode {
    return this.nodes.get(this.handles[h]!)!;
  }

  /** write(2) through a handle. */
  writeHandle(h: number, offset: number, data: Buffer): Outcome {
    const id = this.handles[h]!;
    const n = this.nodes.get(id)!;
    if (n.type !== 'file') return fail('EINVAL');
    if (data.length === 0) return OK;
    const next = Buffer.alloc(Math.max(n.data.length, offset + data.length));
    n.data.copy(next, 0);
    data.copy(next, offset);
    this.nodes.set(id, { ...n, data: next });
    return OK;
  }

  /** What a restart leaves: no handles, and no node that only a handle kept. */
  dropHandles(): void {
    const ids = this.handles;
    this.handles = [];
    for (const id of ids) this.maybeDrop(id);
  }

  private isEmptyDir(path: string): boolean {
    return this.children(path).length === 0;
  }

  // ------------------------------------------------------------------ operations

  make(path: string, type: NodeType, mode: number, target = ''): Outcome {
    const p = this.parentDir(path);
    if (!('ok' in p)) return p;
    if (this.names.has(path)) return fail('EEXIST');
    const id = this.nextId++;
    this.nodes.set(id, makeNode(type, type === 'symlink' ? 0o777 : mode & 0o7777, { target }));
    this.addName(path, id);
    return OK;
  }

  unlink(path: string): Outcome {
    const p = this.parentDir(path);
    if (!('ok' in p)) return p;
    const n = this.node(path);
    if (!n) return fail('ENOENT');
    if (n.type === 'dir') return fail('EISDIR');
    this.dropName(path);
    return OK;
  }

  rmdir(path: string): Outcome {
    const p = this.parentDir(path);
    if (!('ok' in p)) return p;
    const n = this.node(path);
    if (!n) return fail('ENOENT');
    if (n.type !== 'dir') return fail('ENOTDIR');
    if (!this.isEmptyDir(path)) return fail('ENOTEMPTY');
    this.dropName(path);
    return OK;
  }

  /** rename(2) with RENAME_NOREPLACE / RENAME_EXCHANGE, in the fs layer's order of checks. */
  rename(src: string, dst: string, flags: { noReplace?: boolean; exchange?: boolean } = {}): Outcome {
    // The harness resolves both parents (source first) before calling rename.
    for (const d of [parentPath(src), parentPath(dst)]) {
      const r = this.resolve(d);
      if ('errno' in r) return r;
    }
    for (const d of [parentPath(src), parentPath(dst)]) {
      if (this.node(d)!.type !== 'dir') return fail('ENOTDIR');
    }
    const sid = this.names.get(src);
    if (sid === undefined) return fail('ENOENT');
    const s = this.nodes.get(sid)!;
    const did = this.names.get(dst);
    const d = did === undefined ? undefined : this.nodes.get(did);
    if (flags.exchange && did === undefined) return fail('ENOENT');
    if (flags.noReplace && did !== undefined) return fail('EEXIST');
    if (src === dst) return OK;
    if (did === sid && !flags.exchange) return OK;
    const from = parentPath(src);
    const to = parentPath(dst);
    if (s.type === 'dir' && from !== to && isSelfOrAncestor(src, to)) return fail('EINVAL');
    if (flags.exchange && d) {
      if (d.type === 'dir' && from !== to && isSelfOrAncestor(dst, from)) return fail('EINVAL');
      // Swap the two names, with everything below them.
      const moved = new Map<string, number>();
      for (const [p, id] of this.names) {
        if (p === src || p.startsWith(`${src}/`)) moved.set(dst + p.slice(src.length), id);
        else if (p === dst || p.startsWith(`${dst}/`)) moved.set(src + p.slice(dst.length), id);
      }
      for (const p of [...this.names.keys()]) {
        if (p === src || p.startsWith(`${src}/`) || p === dst || p.startsWith(`${dst}/`)) this.names.delete(p);
      }
      for (const [p, id] of moved) this.names.set(p, id);
      return OK;
    }
    if (d) {
      if (s.type === 'dir') {
        if (d.type !== 'dir') return fail('ENOTDIR');
        if (!this.isEmptyDir(dst)) return fail('ENOTEMPTY');
      } else if (d.type === 'dir') {
        return fail('EISDIR');
      }
      this.dropName(dst);
    }
    const moved: Array<[string, number]> = [];
    for (const [p, id] of this.names) {
      if (p === src || p.startsWith(`${src}/`)) moved.push([p, id]);
    }
    for (const [p] of moved) this.names.delete(p);
    for (const [p, id] of moved) this.names.set(dst + p.slice(src.length), id);
    return OK;
  }

  /** link(2): the harness resolves the source first, then the new name's parent. */
  link(src: string, dst: string): Outcome {
    const r = this.resolve(src);
    if ('errno' in r) return r;
    const pr = this.resolve(parentPath(dst));
    if ('errno' in pr) return pr;
    if (r.node.type === 'dir') return fail('EPERM');
    if (pr.node.type !== 'dir') return fail('ENOTDIR');
    if (this.names.has(dst)) return fail('EEXIST');
    this.addName(dst, this.names.get(src)!);
    return OK;
  }

  write(path: string, offset: number, data: Buffer): Outcome {
    const r = this.resolve(path);
    if ('errno' in r) return r;
    const n = r.node;
    if (n.type === 'dir') return fail('EISDIR');
    if (n.type !== 'file') return fail('EINVAL');
    if (data.length === 0) return OK;
    const size = Math.max(n.data.length, offset + data.length);
    const next = Buffer.alloc(size);
    n.data.copy(next, 0);
    data.copy(next, offset);
    this.set(path, { ...n, data: next });
    return OK;
  }

  truncate(path: string, size: number): Outcome {
    const r = this.resolve(path);
    if ('errno' in r) return r;
    const n = r.node;
    if (n.type === 'dir') return fail('EISDIR');
    if (n.type !== 'file') return fail('EINVAL');
    const next = Buffer.alloc(size);
    n.data.copy(next, 0, 0, Math.min(size, n.data.length));
    this.set(path, { ...n, data: next });
    return OK;
  }

  chmod(path: string, mode: number): Outcome {
    const r = this.resolve(path);
    if ('errno' in r) return r;
    this.set(path, { ...r.node, mode: mode & 0o7777 });
    return OK;
  }

  setxattr(path: string, name: string, value: Buffer, flags: { create?: boolean; replace?: boolean }): Outcome {
    const r = this.resolve(path);
    if ('errno' in r) return r;
    const n = r.node;
    if (name.startsWith('user.') && n.type !== 'file' && n.type !== 'dir') return fail('EPERM');
    const had = n.xattrs.has(name);
    if (flags.create && had) return fail('EEXIST');
    if (flags.replace && !had) return fail('ENODATA');
    const x = new Map(n.xattrs);
    x.set(name, value);
    this.set(path, { ...n, xattrs: x });
    return OK;
  }

  removexattr(path: string, name: string): Outcome {
    const r = this.resolve(path);
    if ('errno' in r) return r;
    const n = r.node;
    if (name.startsWith('user.') && n.type !== 'file' && n.type !== 'dir') return fail('EPERM');
    if (!n.xattrs.has(name)) return fail('ENODATA');
    const x = new Map(n.xattrs);
    x.delete(name);
    this.set(path, { ...n, xattrs: x });
    return OK;
  }

  /** Bytes a read of [offset, offset+length) returns, or the errno. */
  read(path: string, offset: number, length: number): { errno: string } | { data: Buffer } {
    const r = this.resolve(path);
    if ('errno' in r) return r;
    if (r.node.type === 'dir') return fail('EISDIR') as { errno: string };
    if (r.node.type !== 'file') return fail('EINVAL') as { errno: string };
    const d = r.node.data;
    return { data: d.subarray(Math.min(offset, d.length), Math.min(d.length, offset + length)) };
  }

  // ------------------------------------------------------------------ canonical form

  /** One line per path, sorted: the comparable state of the namespace. */
  describe(): string[] {
    return describe(this.names, this.nodes);
  }
}

function isSelfOrAncestor(dir: string, path: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** The canonical form shared by the model and an observed file system. */
export function describe(names: ReadonlyMap<string, number>, nodes: ReadonlyMap<number, MNode>): string[] {
  const byId = new Map<number, string[]>();
  for (const [p, id] of names) {
    const l = byId.get(id);
    if (l) l.push(p);
    else byId.set(id, [p]);
  }
  const subdirs = new Map<string, number>();
  for (const [p, id] of names) {
    if (p !== '' && nodes.get(id)?.type === 'dir') {
      const parent = parentPath(p);
      subdirs.set(parent, (subdirs.get(parent) ?? 0) + 1);
    }
  }
  const lines: string[] = [];
  for (const p of [...names.keys()].sort()) {
    const id = names.get(p)!;
    const n = nodes.get(id);
    if (!n) {
      lines.push(`/${p} DANGLING`);
      continue;
    }
    const group = byId.get(id)!.sort();
    const nlink = n.nlink ?? (n.type === 'dir' ? 2 + (subdirs.get(p) ?? 0) : group.length);
    const content = n.type === 'file' ? `${n.data.length}:${contentDigest(n.data)}` : n.type === 'symlink' ? `->${n.target}` : '';
    const xattrs = [...n.xattrs.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v.toString('hex')}`)
      .join(',');
    const link = group.length > 1 ? ` link=/${group[0]}` : '';
    lines.push(`/${p} ${n.type} ${n.mode.toString(8)} ${content} [${xattrs}] nlink=${nlink}${link}`);
  }
  return lines;
}

export function digestLines(lines: readonly string[]): string {
  return createHash('sha1').update(lines.join('\n')).digest('hex');
}

/** A short, readable difference between two canonical forms. */
export function diffLines(expected: readonly string[], actual: readonly string[], max = 12): string[] {
  const e = new Set(expected);
  const a = new Set(actual);
  const out: string[] = [];
  for (const l of expected) if (!a.has(l)) out.push(`- ${l}`);
  for (const l of actual) if (!e.has(l)) out.push(`+ ${l}`);
  return out.length > max ? [...out.slice(0, max), `... ${out.length - max} more`] : out;
}
