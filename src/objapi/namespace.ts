/**
 * The object view of a volume: containers (buckets) are the top-level directories, an object key
 * is a file path below one ("a/b/c" is the file c in directory a/b), and a key ending in '/' is a
 * directory marker. Only regular files are objects; symlinks and special files are neither listed
 * nor served, and no symlink is ever followed, so a key can only name something inside its container.
 *
 * PUT writes a hidden temporary file (RESERVED_PREFIX + 'put-' + random) in the target directory,
 * hashing the bytes as they stream in, stamps the MD5, renames the file into place (atomic in one
 * commit) and returns only after fsync made that commit durable.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  O_WRONLY,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  type Attr,
  type FileSystem,
  type Identity,
} from '../fs/index.ts';
import { FsError, type Logger } from '../util/index.ts';
import { ApiError, badRequest, notFound } from './errors.ts';
import { EMPTY_MD5, EtagCache } from './etag.ts';
import type { Gate } from './gate.ts';
import { RESERVED_PREFIX, listable, type Key } from './paths.ts';

const ROOT_INO = 1;
/** Metadata header values and content types live in these xattrs. */
export const META_XATTR_PREFIX = 'user.swift.meta.';
export const CONTENT_TYPE_XATTR = 'user.swift.content_type';
/** The content type of a directory seen as an object (Swift's pseudo-directory convention). */
export const DIRECTORY_TYPE = 'application/directory';
/** Bytes collected from a request body before one fs.write. */
const WRITE_CHUNK_BYTES = 4 * 1024 * 1024;
const READDIR_PAGE = 1024;

export const isDir = (a: Attr): boolean => (a.mode & S_IFMT) === S_IFDIR;
export const isFile = (a: Attr): boolean => (a.mode & S_IFMT) === S_IFREG;

/**
 * Compare keys in UTF-8 byte order (the order Swift and S3 list in), which is code point order:
 * UTF-16 code units agree with it except that surrogates (D800-DFFF) must sort above E000-FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

export interface ObjectMeta {
  contentType: string | undefined;
  /** User metadata: lower-case name (after X-Object-Meta- / x-amz-meta-) -> raw bytes. */
  meta: Map<string, Uint8Array>;
}

export interface PutOptions {
  meta?: Map<string, Uint8Array>;
  contentType?: string | undefined;
  /** Fail with 412 instead of replacing an existing object (If-None-Match: *). */
  noReplace?: boolean;
  /** Largest body accepted (413 beyond it). */
  bytesMax: number;
  /** Called with the body's MD5 (hex) before the object is published; throw to refuse it. */
  checkMd5?: (md5: string) => void;
}

export interface PutResult {
  md5: string;
  attr: Attr;
}

/**
 * Fills the temporary file of a PUT (inode `ino`, open for writing) by other means than a body
 * stream (multipart completion moves the parts' extents into it) and reports the MD5 and length
 * of what it holds.
 */
export type Filler = (ino: number) => Promise<{ md5: string; bytes: number }>;

/** What a PUT stores: a body stream, or a filler. */
export type PutSource = AsyncIterable<Uint8Array> | { fill: Filler };

export interface ListOptions {
  prefix: string;
  /** '' = no delimiter. */
  delimiter: string;
  /** Only keys (and prefixes) strictly after this one. */
  marker: string;
  /** Only keys strictly before this one ('' = no end). */
  endMarker: string;
  limit: number;
  /** List empty directories as objects (Swift: swiftclient uploads empty directories that way). */
  emptyDirs: boolean;
}

/** `dir`: an empty directory listed as an object (Swift's application/directory). */
export type ListItem = { key: string; ino: number; dir: boolean } | { prefix: string };

export interface ListResult {
  items: ListItem[];
  truncated: boolean;
}

/** A listed object with what listings show about it. */
export interface ListedObject {
  key: string;
  attr: Attr;
  etag: string;
  contentType: string;
}

export type ListEntry = ListedObject | { prefix: string };

interface Child {
  name: string;
  /** Where the entry sorts in a listing: a directory's subtree at name + '/', the directory itself
   * (as a possible empty-directory object) and files at name. */
  key: string;
  ino: number;
  kind: 'file' | 'dir' | 'dirobj';
}

interface CachedDir {
  generation: number;
  children: Child[];
}

export interface NamespaceOptions {
  /** Sorted directory listings kept for paging through big directories (entries, total). */
  dirCacheEntriesMax: number;
  /** Bounds object bodies streaming at once (shared with GETs). */
  streams: Gate;
}

/** Guess a content type from a file name, for files that were not PUT with one. */
export function guessContentType(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

const CONTENT_TYPES: Record<string, string> = {
  txt: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  js: 'text/javascript',
  mjs: 'text/javascript',
  json: 'application/json',
  xml: 'application/xml',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  webp: 'image/webp',
  mp4: 'video/mp4',
  mp3: 'audio/mpeg',
};

/** create() found the parent directory removed (by a DELETE that emptied it). */
class ParentGone extends Error {
  constructor(override readonly cause: FsError) {
    super(cause.message);
  }
}

export class Namespace {
  private readonly dirCache = new Map<number, CachedDir>();
  private dirCacheEntries = 0;

  constructor(
    readonly fs: FileSystem,
    readonly etags: EtagCache,
    private readonly log: Logger,
    private readonly opts: NamespaceOptions,
  ) {}

  // ------------------------------------------------------------------ containers

  /** Top-level directories, sorted, reserved and unlistable names hidden. */
  async containers(who: Identity): Promise<Array<{ name: string; ino: number }>> {
    const kids = await this.children(who, ROOT_INO);
    return kids.filter((c) => c.kind === 'dir').map((c) => ({ name: c.name, ino: c.ino }));
  }

  /** The container's directory, or 404 NoSuchBucket. */
  async container(who: Identity, name: string): Promise<Attr> {
    const a = await this.lookup(who, ROOT_INO, name);
    if (!a || !isDir(a)) throw notFound('bucket', `container ${name} does not exist`);
    return a;
  }

  /** mkdir at the root; false if it already existed as a directory. */
  async createContainer(who: Identity, name: string): Promise<boolean> {
    try {
      await this.fs.mkdir(who, ROOT_INO, name, 0o755);
      return true;
    } catch (err) {
      if (!(err instanceof FsError && err.errno === 'EEXIST')) throw err;
      const a = await this.lookup(who, ROOT_INO, name);
      if (a && isDir(a)) return false;
      throw err;
    }
  }

  async deleteContainer(who: Identity, name: string): Promise<void> {
    await this.removeContainer(who, name);
  }

  // ------------------------------------------------------------------ lookups

  /** One name in a directory; undefined when absent (or the parent is not a directory). */
  async lookup(who: Identity, dir: number, name: string): Promise<Attr | undefined> {
    try {
      return await this.fs.lookup(who, dir, name);
    } catch (err) {
      if (err instanceof FsError && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  /** Walk path components from a directory without following symlinks. */
  async walkPath(who: Identity, dir: number, parts: readonly string[]): Promise<Attr | undefined> {
    let cur: Attr | undefined = await this.fs.getattr(who, dir);
    for (const p of parts) {
      if (!cur || !isDir(cur)) return undefined;
      cur = await this.lookup(who, cur.ino, p);
    }
    return cur;
  }

  /**
   * The object a key names: a regular file, or for a key ending in '/' a directory; with
   * `dirObjects` (Swift) a directory also answers to its name without the '/'.
   */
  async object(who: Identity, cont: Attr, key: Key, dirObjects = false): Promise<Attr | undefined> {
    const a = await this.walkPath(who, cont.ino, key.parts);
    if (!a) return undefined;
    return (key.dir ? isDir(a) : isFile(a) || (dirObjects && isDir(a))) ? a : undefined;
  }

  /** mkdir -p below a directory; a component that exists as a non-directory is ENOTDIR (409). */
  async mkdirs(who: Identity, dir: number, parts: readonly string[]): Promise<number> {
    let cur = dir;
    for (const p of parts) {
      let a = await this.lookup(who, cur, p);
      if (!a) {
        try {
          a = await this.fs.mkdir(who, cur, p, 0o755);
        } catch (err) {
          if (!(err instanceof FsError && err.errno === 'EEXIST')) throw err;
          a = await this.lookup(who, cur, p); // a racing PUT made it
          if (!a) throw err;
        }
      }
      if (!isDir(a)) throw new FsError('ENOTDIR', `${p} exists and is not a directory`);
      cur = a.ino;
    }
    return cur;
  }

  // ------------------------------------------------------------------ PUT / DELETE

  /**
   * Store a body as the object `key` in a container: streamed into a hidden temporary file beside
   * the target, renamed into place on success, durable (fsync) before this resolves. A failure at
   * any point removes the temporary file and leaves the previous object as it was.
   */
  async put(who: Identity, cont: Attr, key: Key, body: PutSource, o: PutOptions): Promise<PutResult> {
    if (key.dir) {
      if ('fill' in body) throw badRequest('a directory marker (a key ending in /) cannot be assembled from parts');
      return this.putDirMarker(who, cont, key, body);
    }
    const name = key.parts[key.parts.length - 1]!;
    for (let attempt = 0; ; attempt++) {
      const parent = await this.mkdirs(who, cont.ino, key.parts.slice(0, -1));
      const existing = await this.lookup(who, parent, name);
      if (existing && isDir(existing)) throw new ApiError(409, 'Conflict', `${key.text} is a directory`);
      if (existing && o.noReplace) throw new ApiError(412, 'PreconditionFailed', `${key.text} exists (If-None-Match: *)`);
      try {
        return await this.writeFile(who, parent, name, body, o);
      } catch (err) {
        // A DELETE that emptied the parent removed it between mkdirs and create: make it again.
        if (!(err instanceof ParentGone) || attempt >= 3) throw err instanceof ParentGone ? err.cause : err;
      }
    }
  }

  /** The write-aside-then-rename core of put (also used for multipart parts and completion). */
  writeFile(who: Identity, parent: number, name: string, body: PutSource, o: PutOptions): Promise<PutResult> {
    const fill: Filler = 'fill' in body ? body.fill : (ino) => this.streamInto(who, ino, body, o.bytesMax);
    return this.opts.streams.run(() => this.writeAside(who, parent, name, fill, o));
  }

  /** Write a body stream into an open file from offset 0, hashing it; 413 past `bytesMax`. */
  private async streamInto(who: Identity, ino: number, body: AsyncIterable<Uint8Array>, bytesMax: number): Promise<{ md5: string; bytes: number }> {
    let pending: Promise<number> | undefined;
    try {
      const h = createHash('md5');
      let n = 0; // bytes received
      let off = 0; // bytes handed to fs.write
      let buf: Uint8Array[] = [];
      let bufBytes = 0;
      const flush = async (): Promise<void> => {
        if (bufBytes === 0) return;
        const data = buf.length === 1 ? buf[0]! : Buffer.concat(buf, bufBytes);
        buf = [];
        bufBytes = 0;
        if (pending) await pending; // one write in flight while the next buffer fills
        pending = this.fs.write(who, ino, off, data);
        pending.catch(() => {});
        off += data.length;
      };
      for await (const chunk of body) {
        n += chunk.length;
        if (n > bytesMax) throw new ApiError(413, 'EntityTooLarge', `the object exceeds ${bytesMax} bytes`);
        h.update(chunk);
        buf.push(chunk);
        bufBytes += chunk.length;
        if (bufBytes >= WRITE_CHUNK_BYTES) await flush();
      }
      await flush();
      if (pending) await pending;
      pending = undefined;
      return { md5: h.digest('hex'), bytes: n };
    } finally {
      if (pending) await pending.catch(() => {});
    }
  }

  private async writeAside(who: Identity, parent: number, name: string, fill: Filler, o: PutOptions): Promise<PutResult> {
    const tmp = `${RESERVED_PREFIX}put-${randomBytes(12).toString('hex')}`;
    let t: Attr;
    try {
      t = await this.fs.create(who, parent, tmp, 0o644);
    } catch (err) {
      if (err instanceof FsError && err.errno === 'ENOENT') throw new ParentGone(err);
      throw err;
    }
    let published = false;
    let opened = false;
    try {
      await this.fs.open(who, t.ino, O_WRONLY);
      opened = true;
      const { md5, bytes: n } = await fill(t.ino);
      o.checkMd5?.(md5);
      if (o.contentType) await this.fs.setxattr(who, t.ino, CONTENT_TYPE_XATTR, Buffer.from(o.contentType, 'latin1'));
      for (const [k, v] of o.meta ?? []) await this.fs.setxattr(who, t.ino, META_XATTR_PREFIX + k, v);
      const a = await this.fs.getattr(who, t.ino);
      if (a.size !== n) throw new FsError('EIO', `temporary file holds ${a.size} bytes, ${n} were written`);
      // The stamp (one generation) and the rename that publishes the file (one more).
      await this.etags.stamp(who, a, md5, 2);
      try {
        await this.fs.rename(who, parent, tmp, parent, name, o.noReplace ? { noReplace: true } : {});
      } catch (err) {
        if (err instanceof FsError && err.errno === 'EEXIST') throw new ApiError(412, 'PreconditionFailed', `${name} exists (If-None-Match: *)`);
        throw err;
      }
      published = true;
      let fin = await this.fs.getattr(who, t.ino);
      if (fin.generation === a.generation + 1) {
        // the rename did not count as a change: stamp again for the generation it is at
        await this.etags.stamp(who, fin, md5, 1);
        fin = await this.fs.getattr(who, t.ino);
      }
      await this.fs.fsync(t.ino, false);
      return { md5, attr: fin };
    } catch (err) {
      if (!published) {
        await this.fs.unlink(who, parent, tmp).catch((e: unknown) => this.log.warn('objapi: cannot remove a temporary file', { tmp, err: String(e) }));
      }
      throw err;
    } finally {
      if (opened) await this.fs.release(t.ino, true).catch(() => {});
    }
  }

  private async putDirMarker(who: Identity, cont: Attr, key: Key, body: AsyncIterable<Uint8Array>): Promise<PutResult> {
    for await (const c of body) if (c.length > 0) throw badRequest('a directory marker (a key ending in /) must have an empty body');
    const ino = await this.mkdirs(who, cont.ino, key.parts);
    await this.fs.fsync(ino, false);
    return { md5: EMPTY_MD5, attr: await this.fs.getattr(who, ino) };
  }

  /**
   * Remove an object (or an empty directory, for a key ending in '/', or with `dirObjects` by its
   * name), then the parent directories that removal left empty, up to the container: an object
   * store has no empty pseudo-directories, so none is left behind. False if nothing was there.
   */
  async remove(who: Identity, cont: Attr, key: Key, dirObjects = false): Promise<boolean> {
    const dirs: Attr[] = [cont];
    for (const p of key.parts.slice(0, -1)) {
      const a = await this.lookup(who, dirs[dirs.length - 1]!.ino, p);
      if (!a || !isDir(a)) return false;
      dirs.push(a);
    }
    const parent = dirs[dirs.length - 1]!;
    const name = key.parts[key.parts.length - 1]!;
    const a = await this.lookup(who, parent.ino, name);
    if (!a) return false;
    if (isDir(a) && (key.dir || dirObjects)) await this.fs.rmdir(who, parent.ino, name);
    else if (isFile(a) && !key.dir) await this.fs.unlink(who, parent.ino, name);
    else return false;
    for (let i = dirs.length - 1; i >= 1; i--) {
      try {
        await this.fs.rmdir(who, dirs[i - 1]!.ino, key.parts[i - 1]!);
      } catch {
        break; // not empty (or changed meanwhile): it stays
      }
    }
    return true;
  }

  /**
   * Remove a container. Directories holding nothing but (recursively) empty directories count as
   * empty and are removed with it; any file or other entry is ENOTEMPTY (409).
   */
  async removeContainer(who: Identity, name: string): Promise<void> {
    const cont = await this.container(who, name);
    let budget = 100_000;
    const prune = async (dir: number): Promise<void> => {
      let cookie = 0n;
      const subdirs: string[] = [];
      for (;;) {
        const page = await this.fs.readdir(who, dir, cookie, READDIR_PAGE);
        if (page.length === 0) break;
        for (const e of page) {
          cookie = e.cookie;
          if (e.name === '.' || e.name === '..') continue;
          if (--budget < 0 || e.type !== S_IFDIR) throw new FsError('ENOTEMPTY', `container ${name} is not empty`);
          subdirs.push(e.name);
        }
      }
      for (const d of subdirs) {
        const a = await this.lookup(who, dir, d);
        if (!a || !isDir(a)) continue;
        await prune(a.ino);
        await this.fs.rmdir(who, dir, d);
      }
    };
    try {
      await this.fs.rmdir(who, ROOT_INO, name);
      return;
    } catch (err) {
      if (!(err instanceof FsError && err.errno === 'ENOTEMPTY')) throw err;
    }
    await prune(cont.ino);
    await this.fs.rmdir(who, ROOT_INO, name);
  }

  // ------------------------------------------------------------------ metadata

  async readMeta(who: Identity, a: Attr, name: string): Promise<ObjectMeta> {
    const meta = new Map<string, Uint8Array>();
    let contentType: string | undefined;
    for (const x of await this.fs.listxattr(who, a.ino)) {
      if (x === CONTENT_TYPE_XATTR) contentType = Buffer.from(await this.getx(who, a.ino, x)).toString('latin1');
      else if (x.startsWith(META_XATTR_PREFIX)) meta.set(x.slice(META_XATTR_PREFIX.length), await this.getx(who, a.ino, x));
    }
    if (isDir(a)) contentType = DIRECTORY_TYPE;
    else contentType ??= guessContentType(name);
    return { contentType, meta };
  }

  async contentType(who: Identity, a: Attr, name: string): Promise<string> {
    try {
      return Buffer.from(await this.fs.getxattr(who, a.ino, CONTENT_TYPE_XATTR)).toString('latin1');
    } catch (err) {
      if (err instanceof FsError && (err.errno === 'ENODATA' || err.errno === 'EACCES' || err.errno === 'EPERM')) return guessContentType(name);
      throw err;
    }
  }

  private async getx(who: Identity, ino: number, name: string): Promise<Uint8Array> {
    try {
      return await this.fs.getxattr(who, ino, name);
    } catch (err) {
      if (err instanceof FsError && err.errno === 'ENODATA') return new Uint8Array(0);
      throw err;
    }
  }

  /**
   * Replace all user metadata (Swift POST semantics) and, when given, the content type. Returns
   * how many xattr changes were made (each bumps the generation once).
   */
  async replaceMeta(who: Identity, a: Attr, meta: Map<string, Uint8Array>, contentType: string | undefined): Promise<number> {
    let changes = 0;
    for (const x of await this.fs.listxattr(who, a.ino)) {
      if (x.startsWith(META_XATTR_PREFIX) && !meta.has(x.slice(META_XATTR_PREFIX.length))) {
        await this.fs.removexattr(who, a.ino, x);
        changes++;
      }
    }
    for (const [k, v] of meta) {
      await this.fs.setxattr(who, a.ino, META_XATTR_PREFIX + k, v);
      changes++;
    }
    if (contentType) {
      await this.fs.setxattr(who, a.ino, CONTENT_TYPE_XATTR, Buffer.from(contentType, 'latin1'));
      changes++;
    }
    return changes;
  }

  // ------------------------------------------------------------------ listing

  /** A directory's listable regular files and subdirectories in listing order (cached by generation). */
  private async children(who: Identity, ino: number): Promise<Child[]> {
    const d = await this.fs.getattr(who, ino);
    const hit = this.dirCache.get(ino);
    if (hit && hit.generation === d.generation) {
      this.dirCache.delete(ino); // LRU: most recent last
      this.dirCache.set(ino, hit);
      return hit.children;
    }
    const children: Child[] = [];
    let cookie = 0n;
    for (;;) {
      const page = await this.fs.readdir(who, ino, cookie, READDIR_PAGE);
      if (page.length === 0) break;
      for (const e of page) {
        cookie = e.cookie;
        if (e.name === '.' || e.name === '..' || !listable(e.name)) continue;
        if (e.type === S_IFDIR) {
          children.push({ name: e.name, key: e.name + '/', ino: e.ino, kind: 'dir' });
          children.push({ name: e.name, key: e.name, ino: e.ino, kind: 'dirobj' });
        } else if (e.type === S_IFREG) children.push({ name: e.name, key: e.name, ino: e.ino, kind: 'file' });
      }
    }
    children.sort((x, y) => compareKeys(x.key, y.key));
    if (hit) this.forget(ino);
    if (children.length <= this.opts.dirCacheEntriesMax / 4) {
      this.dirCache.set(ino, { generation: d.generation, children });
      this.dirCacheEntries += children.length;
      for (const [k, v] of this.dirCache) {
        if (this.dirCacheEntries <= this.opts.dirCacheEntriesMax) break;
        this.dirCache.delete(k);
        this.dirCacheEntries -= v.children.length;
      }
    }
    return children;
  }

  private async isEmptyDir(who: Identity, ino: number): Promise<boolean> {
    try {
      return (await this.children(who, ino)).length === 0;
    } catch (err) {
      if (err instanceof FsError && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return false;
      throw err;
    }
  }

  private forget(ino: number): void {
    const v = this.dirCache.get(ino);
    if (!v) return;
    this.dirCache.delete(ino);
    this.dirCacheEntries -= v.children.length;
  }

  /**
   * List a container's keys in UTF-8 byte order: regular files, with `delimiter` rolling keys up
   * into common prefixes (every subdirectory is a prefix, even an empty one). Marker, end marker
   * and prefix prune whole subtrees, so a page costs what it shows plus the path down to it.
   */
  async list(who: Identity, cont: Attr, o: ListOptions): Promise<ListResult> {
    const items: ListItem[] = [];
    const st = { lastPrefix: '' };
    await this.walk(who, cont.ino, '', o, items, st);
    const truncated = items.length > o.limit;
    if (truncated) items.length = o.limit;
    return { items, truncated };
  }

  /** Returns true when the listing is complete (limit reached or end marker passed). */
  private async walk(who: Identity, ino: number, dirPath: string, o: ListOptions, out: ListItem[], st: { lastPrefix: string }): Promise<boolean> {
    let kids: Child[];
    try {
      kids = await this.children(who, ino);
    } catch (err) {
      if (err instanceof FsError && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return false; // removed meanwhile
      throw err;
    }
    // Skip, by binary search, the children whose whole subtree sorts below the lower bound.
    const lb = compareKeys(o.prefix, o.marker) >= 0 ? o.prefix : o.marker;
    let lo = 0;
    let hi = kids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = kids[mid]!;
      const full = dirPath + c.key;
      const below = compareKeys(full, lb) < 0 && !(c.kind === 'dir' && lb.startsWith(full));
      if (below) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < kids.length; i++) {
      if (out.length > o.limit) return true;
      const c = kids[i]!;
      if (c.kind === 'dirobj' && !o.emptyDirs) continue;
      const full = dirPath + c.key;
      if (!full.startsWith(o.prefix)) {
        if (c.kind === 'dir' && o.prefix.startsWith(full)) {
          if (await this.walk(who, c.ino, full, o, out, st)) return true;
          continue;
        }
        if (compareKeys(full, o.prefix) > 0) return false; // past every key with the prefix
        continue;
      }
      if (o.endMarker !== '' && compareKeys(full, o.endMarker) >= 0) return true;
      if (c.kind === 'dir') {
        if (o.marker !== '' && compareKeys(o.marker, full) > 0 && !o.marker.startsWith(full)) continue;
        const cp = this.commonPrefix(full, o);
        if (cp !== undefined) {
          if (this.emitPrefix(cp, o, out, st)) return true;
          continue;
        }
        if (await this.walk(who, c.ino, full, o, out, st)) return true;
      } else {
        if (o.marker !== '' && compareKeys(full, o.marker) <= 0) continue;
        const cp = this.commonPrefix(full, o);
        if (cp !== undefined) {
          if (this.emitPrefix(cp, o, out, st)) return true;
          continue;
        }
        if (c.kind === 'dirobj' && !(await this.isEmptyDir(who, c.ino))) continue;
        out.push({ key: full, ino: c.ino, dir: c.kind === 'dirobj' });
      }
    }
    return false;
  }

  /** The common prefix a key (or a directory's path, ending in '/') rolls up into, if any. */
  private commonPrefix(full: string, o: ListOptions): string | undefined {
    if (o.delimiter === '') return undefined;
    const i = full.indexOf(o.delimiter, o.prefix.length);
    return i < 0 ? undefined : full.slice(0, i + o.delimiter.length);
  }

  /** Returns true when the end marker is reached. */
  private emitPrefix(cp: string, o: ListOptions, out: ListItem[], st: { lastPrefix: string }): boolean {
    if (st.lastPrefix === cp) return false;
    if (o.marker !== '' && compareKeys(cp, o.marker) <= 0) return false;
    if (o.endMarker !== '' && compareKeys(cp, o.endMarker) >= 0) return true;
    st.lastPrefix = cp;
    out.push({ prefix: cp });
    return false;
  }

  /**
   * Attributes, ETags and content types of listed items (`concurrency` at a time, since an ETag
   * may need the file read). Objects removed since the walk are left out. A file that keeps
   * changing while its MD5 is computed is listed without an ETag ('').
   */
  async describe(who: Identity, items: readonly ListItem[], concurrency: number): Promise<ListEntry[]> {
    const out: Array<ListEntry | undefined> = new Array(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < items.length; i = next++) {
        const it = items[i]!;
        if ('prefix' in it) {
          out[i] = it;
          continue;
        }
        let attr: Attr;
        try {
          attr = await this.fs.getattr(who, it.ino);
        } catch (err) {
          if (err instanceof FsError && err.errno === 'ENOENT') continue;
          throw err;
        }
        if (it.dir) {
          out[i] = { key: it.key, attr: { ...attr, size: 0 }, etag: EMPTY_MD5, contentType: DIRECTORY_TYPE };
          continue;
        }
        let etag = '';
        try {
          etag = await this.etags.etag(who, attr);
        } catch (err) {
          if (!(err instanceof FsError && err.errno === 'EAGAIN')) throw err;
        }
        const name = it.key.slice(it.key.lastIndexOf('/') + 1);
        out[i] = { key: it.key, attr, etag, contentType: await this.contentType(who, attr, name) };
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
    return out.filter((e): e is ListEntry => e !== undefined);
  }
}
