/**
 * The model a crash campaign checks a recovered volume against.
 *
 * A state is every path with what it names (a file, directory or symlink) and, for files, the
 * inode it shares with its hard links. States are persistent values: applying an operation
 * returns a new state and leaves the old one intact (file contents are immutable Buffers, replaced
 * on write), so the driver keeps the state after every operation cheaply.
 *
 * What the durability contract lets a crash do (README, "What is in the store when an operation
 * returns"; DESIGN.md section 4): a commit captures the engine's state at one moment, and the
 * workload is sequential, so the recovered volume must equal the state after some prefix of the
 * operations, no shorter than the last fsync that returned and no longer than the last operation
 * started. Rename, link, unlink, setattr (truncate, chmod), create, mkdir, rmdir and symlink are
 * all-or-nothing; a write is not promised to be (it may reach a commit in part), so when the
 * operation after the prefix is a write, its file may hold any mix of old and new bytes.
 */
import { Random } from '../../src/util/index.ts';

export type Kind = 'file' | 'dir' | 'symlink';

export interface Node {
  kind: Kind;
  /** Permission bits (files only are chmod'ed). */
  mode: number;
  /** File contents (immutable; replaced, never mutated). */
  data: Buffer;
  /** Symlink target. */
  target: string;
}

export interface State {
  /** path (relative, '/'-separated, no leading slash) -> inode id */
  readonly paths: ReadonlyMap<string, number>;
  readonly nodes: ReadonlyMap<number, Readonly<Node>>;
}

export type Op =
  | { op: 'create'; path: string }
  | { op: 'write'; path: string; offset: number; data: Buffer }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'fsync'; path: string };

export const emptyState: State = { paths: new Map(), nodes: new Map() };

export function describeOp(o: Op): string {
  switch (o.op) {
    case 'write':
      return `write ${o.path} @${o.offset} +${o.data.length}`;
    case 'truncate':
      return `truncate ${o.path} ${o.size}`;
    case 'rename':
    case 'link':
      return `${o.op} ${o.from} -> ${o.to}`;
    case 'symlink':
      return `symlink ${o.path} -> ${o.target}`;
    case 'chmod':
      return `chmod ${o.path} ${o.mode.toString(8)}`;
    default:
      return `${o.op} ${o.path}`;
  }
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** The state after `o` (which the generator made valid for `s`). */
export function apply(s: State, o: Op, nextId: () => number): State {
  const paths = new Map(s.paths);
  const nodes = new Map(s.nodes);
  const node = (p: string): Node => {
    const id = paths.get(p);
    if (id === undefined) throw new Error(`model: ${p} does not exist (${describeOp(o)})`);
    return nodes.get(id)!;
  };
  const replace = (p: string, change: Partial<Node>): void => {
    const id = paths.get(p)!;
    nodes.set(id, { ...node(p), ...change });
  };
  const drop = (p: string): void => {
    const id = paths.get(p)!;
    paths.delete(p);
    if (![...paths.values()].includes(id)) nodes.delete(id);
  };
  switch (o.op) {
    case 'create': {
      const id = nextId();
      nodes.set(id, { kind: 'file', mode: 0o644, data: Buffer.alloc(0), target: '' });
      paths.set(o.path, id);
      break;
    }
    case 'mkdir': {
      const id = nextId();
      nodes.set(id, { kind: 'dir', mode: 0o755, data: Buffer.alloc(0), target: '' });
      paths.set(o.path, id);
      break;
    }
    case 'symlink': {
      const id = nextId();
      nodes.set(id, { kind: 'symlink', mode: 0o777, data: Buffer.alloc(0), target: o.target });
      paths.set(o.path, id);
      break;
    }
    case 'write': {
      const old = node(o.path).data;
      const end = o.offset + o.data.length;
      const data = Buffer.alloc(Math.max(old.length, end));
      old.copy(data);
      o.data.copy(data, o.offset);
      replace(o.path, { data });
      break;
    }
    case 'truncate': {
      const old = node(o.path).data;
      const data = Buffer.alloc(o.size);
      old.copy(data, 0, 0, Math.min(old.length, o.size));
      replace(o.path, { data });
      break;
    }
    case 'chmod':
      replace(o.path, { mode: o.mode });
      break;
    case 'link':
      paths.set(o.to, paths.get(o.from)!);
      break;
    case 'unlink':
    case 'rmdir':
      drop(o.path);
      break;
    case 'rename': {
      const id = paths.get(o.from)!;
      if (paths.get(o.to) === id) break; // two names of one inode: POSIX says do nothing
      if (paths.has(o.to)) drop(o.to);
      // Move the entry and, for a directory, everything below it.
      for (const [p, v] of [...paths]) {
        if (p === o.from) {
          paths.delete(p);
          paths.set(o.to, v);
        } else if (p.startsWith(`${o.from}/`)) {
          paths.delete(p);
          paths.set(o.to + p.slice(o.from.length), v);
        }
      }
      break;
    }
    case 'fsync':
      break;
  }
  return { paths, nodes };
}

/** Bounds that keep one cycle's verification cheap. */
export interface WorkloadShape {
  filesMax: number;
  dirsMax: number;
  fileBytesMax: number;
  writeBytesMax: number;
}

export const defaultShape: WorkloadShape = { filesMax: 24, dirsMax: 5, fileBytesMax: 512 * 1024, writeBytesMax: 96 * 1024 };

/** A random operation that is valid in state `s`. */
export function randomOp(s: State, rnd: Random, shape: WorkloadShape, fresh: () => string): Op {
  const all = [...s.paths.keys()];
  const files = all.filter((p) => s.nodes.get(s.paths.get(p)!)!.kind === 'file');
  const dirs = all.filter((p) => s.nodes.get(s.paths.get(p)!)!.kind === 'dir');
  const nonDirs = all.filter((p) => s.nodes.get(s.paths.get(p)!)!.kind !== 'dir');
  const inDir = (): string => {
    const d = dirs.length > 0 && rnd.chance(0.6) ? rnd.pick(dirs) : '';
    return d === '' ? fresh() : `${d}/${fresh()}`;
  };
  const fileCount = new Set(files.map((p) => s.paths.get(p))).size;
  for (;;) {
    const r = rnd.int(100);
    if (r < 8 || files.length === 0) {
      if (fileCount < shape.filesMax) return { op: 'create', path: inDir() };
      continue;
    }
    if (r < 40) {
      const path = rnd.pick(files);
      const size = s.nodes.get(s.paths.get(path)!)!.data.length;
      const len = 1 + rnd.int(rnd.chance(0.5) ? 4096 : shape.writeBytesMax);
      // Mostly inside or just past the end; sometimes a hole.
      const offset = Math.min(rnd.chance(0.8) ? rnd.int(size + 1) : rnd.int(shape.fileBytesMax), shape.fileBytesMax - len);
      return { op: 'write', path, offset: Math.max(0, offset), data: Buffer.from(rnd.bytes(len)) };
    }
    if (r < 50) {
      const path = rnd.pick(files);
      const size = s.nodes.get(s.paths.get(path)!)!.data.length;
      return { op: 'truncate', path, size: rnd.chance(0.7) ? rnd.int(size + 1) : rnd.int(shape.fileBytesMax) };
    }
    if (r < 62) {
      if (rnd.chance(0.15) && dirs.length > 0) {
        // A directory to a new name elsewhere (never into itself).
        const from = rnd.pick(dirs);
        const targets = ['', ...dirs.filter((d) => d !== from && !d.startsWith(`${from}/`))];
        const d = rnd.pick(targets);
        return { op: 'rename', from, to: d === '' ? fresh() : `${d}/${fresh()}` };
      }
      const from = rnd.pick(nonDirs.length > 0 ? nonDirs : files);
      // Over an existing file (atomic replace) or to a new name.
      const to = rnd.chance(0.4) && files.length > 1 ? rnd.pick(files) : inDir();
      if (to === from) continue;
      return { op: 'rename', from, to };
    }
    if (r < 68) {
      if (fileCount >= shape.filesMax && all.length > shape.filesMax * 2) continue;
      return { op: 'link', from: rnd.pick(files), to: inDir() };
    }
    if (r < 76) {
      if (nonDirs.length < 4) continue;
      return { op: 'unlink', path: rnd.pick(nonDirs) };
    }
    if (r < 80) {
      if (dirs.length >= shape.dirsMax) {
        const empty = dirs.filter((d) => !all.some((p) => p.startsWith(`${d}/`)));
        if (empty.length === 0) continue;
        return { op: 'rmdir', path: rnd.pick(empty) };
      }
      return { op: 'mkdir', path: inDir() };
    }
    if (r < 83) {
      if (all.length > shape.filesMax * 3) continue;
      // Targets inside and outside the volume: stored as text, never followed by the engine.
      const target = rnd.pick(['../f1', 'f2', '/etc/passwd', '../../../../etc/shadow', 'd/e/f', 'x'.repeat(1 + rnd.int(200))]);
      return { op: 'symlink', path: inDir(), target };
    }
    if (r < 88) return { op: 'chmod', path: rnd.pick(files), mode: rnd.pick([0o644, 0o600, 0o755, 0o444, 0o640]) };
    return { op: 'fsync', path: rnd.pick(files) };
  }
}

/** What a recovered tree holds, read from the mount. */
export interface Observed {
  paths: Map<string, { kind: Kind; ino: number; nlink: number; mode: number; data: Buffer; target: string }>;
}

/**
 * Does the observed tree equal `s` (with `partial`, a write after `s` that may have landed in part)?
 * Returns undefined when it does, else the first difference.
 */
export function compare(obs: Observed, s: State, partial?: Extract<Op, { op: 'write' }>): string | undefined {
  if (obs.paths.size !== s.paths.size) {
    const extra = [...obs.paths.keys()].filter((p) => !s.paths.has(p));
    const missing = [...s.paths.keys()].filter((p) => !obs.paths.has(p));
    return `paths differ: extra ${JSON.stringify(extra.slice(0, 5))}, missing ${JSON.stringify(missing.slice(0, 5))}`;
  }
  const realOf = new Map<number, number>();
  const modelOf = new Map<number, number>();
  const names = new Map<number, number>();
  for (const id of s.paths.values()) names.set(id, (names.get(id) ?? 0) + 1);
  const partialId = partial ? s.paths.get(partial.path) : undefined;
  for (const [p, id] of s.paths) {
    const o = obs.paths.get(p);
    if (!o) return `missing ${p}`;
    const n = s.nodes.get(id)!;
    if (o.kind !== n.kind) return `${p}: a ${o.kind}, expected a ${n.kind}`;
    if (n.kind === 'symlink') {
      if (o.target !== n.target) return `${p}: symlink target ${JSON.stringify(o.target)}, expected ${JSON.stringify(n.target)}`;
      continue;
    }
    if (n.kind === 'dir') continue;
    if (o.mode !== n.mode) return `${p}: mode ${o.mode.toString(8)}, expected ${n.mode.toString(8)}`;
    if (o.nlink !== names.get(id)) return `${p}: nlink ${o.nlink}, expected ${names.get(id)}`;
    // Hard links: one model inode <-> one real inode.
    if ((realOf.get(id) ?? o.ino) !== o.ino || (modelOf.get(o.ino) ?? id) !== id) return `${p}: hard links do not match the model`;
    realOf.set(id, o.ino);
    modelOf.set(o.ino, id);
    if (id === partialId && partial) {
      const why = partialWriteMatches(o.data, n.data, partial);
      if (why) return `${p}: ${why}`;
    } else if (!o.data.equals(n.data)) {
      return `${p}: content differs (${o.data.length} bytes, expected ${n.data.length}; first difference at ${firstDiff(o.data, n.data)})`;
    }
  }
  return undefined;
}

/** Every byte is the old one or the written one; the size is between the old and the new one. */
function partialWriteMatches(got: Buffer, old: Buffer, w: { offset: number; data: Buffer }): string | undefined {
  const newLen = Math.max(old.length, w.offset + w.data.length);
  if (got.length < old.length || got.length > newLen) return `size ${got.length} outside [${old.length}, ${newLen}] for a partial write`;
  for (let i = 0; i < got.length; i++) {
    const before = i < old.length ? old[i]! : 0;
    const inWrite = i >= w.offset && i < w.offset + w.data.length;
    if (got[i] !== before && !(inWrite && got[i] === w.data[i - w.offset])) return `byte ${i} is neither the old nor the written value`;
  }
  return undefined;
}

function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** A state equal to what was observed (the base of the next cycle). */
export function stateOf(obs: Observed): State {
  const paths = new Map<string, number>();
  const nodes = new Map<number, Node>();
  let dirIds = -1;
  for (const [p, o] of obs.paths) {
    // Directories have one name each; give them ids of their own so real inode numbers never clash.
    const id = o.kind === 'dir' ? dirIds-- : o.ino;
    paths.set(p, id);
    if (!nodes.has(id)) nodes.set(id, { kind: o.kind, mode: o.kind === 'dir' ? 0o755 : o.kind === 'symlink' ? 0o777 : o.mode, data: o.data, target: o.target });
  }
  return { paths, nodes };
}

export function stateBytes(s: State): number {
  let n = 0;
  for (const node of s.nodes.values()) n += node.data.length;
  return n;
}

export { parentOf };
