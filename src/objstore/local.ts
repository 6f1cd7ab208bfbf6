import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { StoreError } from '../util/index.ts';
import { checkKeyCommon, clipRange, compareKeys, pageLimit } from './memory.ts';
import type {
  ByteRange,
  ChunkedPut,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreCapabilities,
} from './types.ts';

/**
 * LocalStore: objects are files under a root directory, key `a/b/c` at `ROOT/a/b/c`.
 *
 * Every write goes to a temp file `.tmp-<random>` in the object's own directory (same file system,
 * so the final step is atomic), is fsynced, and is then renamed over the key (plain put) or
 * hard-linked to it (conditional create: link fails with EEXIST if the key exists, atomically,
 * with no window where a half-written file is visible). The directory is fsynced afterwards so the
 * new name survives a power cut. Temp files are never listed; a crash can leave them behind.
 *
 * Keys map to paths one to one, so a key cannot have a segment that is '', '.', '..' or starts
 * with '.tmp-' (the temp-file namespace), and one key cannot be both an object and a "directory"
 * of other keys (`a/b` and `a/b/c`): such a put fails with 'bad_request'.
 */

const TEMP_PREFIX = '.tmp-';

/** Piece size of getv: small enough to come from the allocator's free lists, large enough for few reads. */
const GETV_PIECE_BYTES = 256 * 1024;

export class LocalStore implements ObjectStore {
  readonly root: string;
  readonly capabilities: StoreCapabilities;

  /** `root` must exist (openStore checks and creates it); it is resolved to an absolute path. */
  constructor(root: string) {
    this.root = resolve(root);
    this.capabilities = { conditionalCreate: true, description: `local directory ${this.root}` };
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    const target = this.pathOf(key);
    const before = options?.beforeAttempt; // called as a plain function, as every backend calls it
    before?.();
    if (options?.ifNoneMatch) await this.failIfExists(key, target);
    const temp = await this.createTemp(key, target);
    try {
      await writeAll(temp.fh, data, 0);
      await temp.fh.sync();
    } catch (err) {
      await discard(temp);
      throw mapError(err, 'put', key, temp.path);
    }
    return this.publish(key, target, temp, data.length, options);
  }

  async putStream(key: string, options?: PutOptions): Promise<ChunkedPut> {
    const target = this.pathOf(key);
    // Fail fast before a segment is streamed; the link at close is the atomic check.
    if (options?.ifNoneMatch) await this.failIfExists(key, target);
    const temp = await this.createTemp(key, target);
    let position = 0;
    let state: 'open' | 'closed' | 'aborted' = 'open';
    let pending: Promise<void> = Promise.resolve();
    let failed: unknown; // a failed write poisons the stream: close must not publish a hole
    const requireOpen = (what: string): void => {
      if (state !== 'open') throw new StoreError('bad_request', `${what} on a ${state} stream`, { key });
    };
    return {
      write: async (chunk) => {
        requireOpen('write');
        // Positions are assigned in call order, so writes issued without awaiting still land in order.
        const at = position;
        position += chunk.length;
        const done = pending.then(() => writeAll(temp.fh, chunk, at));
        pending = done.catch((err: unknown) => {
          failed ??= err;
        });
        try {
          await done;
        } catch (err) {
          throw mapError(err, 'write', key, temp.path);
        }
      },
      close: async () => {
        requireOpen('close');
        state = 'closed';
        try {
          await pending;
          if (failed !== undefined) throw failed;
          await temp.fh.sync();
        } catch (err) {
          await discard(temp);
          throw mapError(err, 'put', key, temp.path);
        }
        return this.publish(key, target, temp, position, options);
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        await pending;
        await discard(temp);
      },
    };
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw mapError(err, 'get', key, path, true);
    }
    try {
      const { size } = await fh.stat();
      const [start, end] = clipRange(key, size, range);
      const out = new Uint8Array(end - start);
      let done = 0;
      while (done < out.length) {
        const { bytesRead } = await fh.read(out, done, out.length - done, start + done);
        if (bytesRead === 0) throw new StoreError('io', `get ${key}: file ${path} shrank while being read`, { key });
        done += bytesRead;
      }
      return out;
    } catch (err) {
      throw mapError(err, 'get', key, path, true);
    } finally {
      await fh.close();
    }
  }

  /** Like get, read into pieces of at most GETV_PIECE_BYTES (small allocations fault no pages). */
  async getv(key: string, range?: ByteRange): Promise<Uint8Array[]> {
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw mapError(err, 'get', key, path, true);
    }
    try {
      const { size } = await fh.stat();
      const [start, end] = clipRange(key, size, range);
      const out: Uint8Array[] = [];
      for (let pos = start; pos < end; ) {
        const piece = Buffer.allocUnsafeSlow(Math.min(GETV_PIECE_BYTES, end - pos));
        let done = 0;
        while (done < piece.length) {
          const { bytesRead } = await fh.read(piece, done, piece.length - done, pos + done);
          if (bytesRead === 0) throw new StoreError('io', `get ${key}: file ${path} shrank while being read`, { key });
          done += bytesRead;
        }
        out.push(new Uint8Array(piece.buffer, piece.byteOffset, piece.length));
        pos += piece.length;
      }
      return out;
    } catch (err) {
      throw mapError(err, 'get', key, path, true);
    } finally {
      await fh.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const path = this.pathOf(key);
    try {
      const st = await stat(path);
      return st.isFile() ? { key, size: st.size } : null;
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return null;
      throw mapError(err, 'head', key, path);
    }
  }

  /**
   * Emptied parent directories are left in place: removing them would race with a put creating
   * its temp file there, and Silt's key space (a few fixed directories) does not need it.
   */
  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      // Absent, or a "directory" of other keys rather than an object: nothing to delete.
      if (isCode(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) return;
      if (isCode(err, 'EPERM') && (await isDirectory(path))) return;
      throw mapError(err, 'delete', key, path);
    }
    await syncDir(dirname(path), key);
  }

  /**
   * Walks the tree under the prefix's directory depth-first, visiting each directory's entries in
   * key order (a subdirectory `d` sorts as `d/`), so keys come out already sorted and the walk stops
   * after `limit` + 1 keys. Subtrees entirely at or below `after` are skipped.
   */
  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const limit = pageLimit(options);
    const after = options?.after;
    const slash = prefix.lastIndexOf('/');
    const dirKey = prefix.slice(0, slash + 1); // '' or 'a/b/'
    const namePrefix = prefix.slice(slash + 1);
    if (dirKey !== '') this.pathOf(dirKey.slice(0, -1)); // validates: no '..' walks out of the root
    const keys: string[] = [];
    const wanted = limit + 1; // one more than a page tells whether `next` is needed

    const walk = async (dir: string, keyBase: string, filter: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isCode(err, 'ENOENT', 'ENOTDIR')) return; // nothing stored under this prefix (yet)
        throw mapError(err, 'list', prefix, dir);
      }
      const items = entries
        .filter((e) => e.name.startsWith(filter) && !e.name.startsWith(TEMP_PREFIX) && (e.isFile() || e.isDirectory()))
        .map((e) => ({ name: e.name, isDir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
        .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
      for (const item of items) {
        if (keys.length >= wanted) return;
        const key = keyBase + item.sortKey;
        if (item.isDir) {
          // Every key under `key` (which ends in '/') is > after if after < key; all are <= after if
          // after > key and does not start with it.
          if (after !== undefined && compareKeys(after, key) > 0 && !after.startsWith(key)) continue;
          await walk(join(dir, item.name), key, '');
        } else if (after === undefined || compareKeys(key, after) > 0) {
          keys.push(key);
        }
      }
    };
    await walk(join(this.root, ...dirKey.split('/').filter((s) => s !== '')), dirKey, namePrefix);

    const objects: ObjectInfo[] = [];
    for (const key of keys.slice(0, limit)) {
      const info = await this.head(key); // a key deleted since the walk is simply left out
      if (info !== null) objects.push(info);
    }
    const last = keys[Math.min(limit, keys.length) - 1];
    return keys.length > limit && last !== undefined ? { objects, next: last } : { objects };
  }

  async close(): Promise<void> {}

  /** Validate a key and map it to its path; rejects anything that could leave the root. */
  pathOf(key: string): string {
    checkKeyCommon(key);
    const bad = (why: string): StoreError => new StoreError('bad_request', `key ${JSON.stringify(key)} ${why}`, { key });
    if (key.includes('\0')) throw bad('contains NUL');
    if (key.startsWith('/')) throw bad('is absolute');
    for (const segment of key.split('/')) {
      if (segment === '') throw bad('has an empty segment');
      if (segment === '.' || segment === '..') throw bad(`has a '${segment}' segment`);
      if (segment.startsWith(TEMP_PREFIX)) throw bad(`has a segment starting with '${TEMP_PREFIX}' (reserved for temp files)`);
      if (Buffer.byteLength(segment) > 255) throw bad('has a segment longer than 255 bytes');
    }
    const path = join(this.root, key);
    // Belt and braces: after the checks above this cannot fail, but escaping the root must be impossible.
    if (!path.startsWith(this.root + sep)) throw bad('escapes the store root');
    return path;
  }

  private async failIfExists(key: string, target: string): Promise<void> {
    if ((await this.head(key)) !== null) throw preconditionFailed(key);
    if (await isDirectory(target)) throw conflict(key);
  }

  private async createTemp(key: string, target: string): Promise<Temp> {
    const dir = dirname(target);
    try {
      const created = await mkdir(dir, { recursive: true });
      // A new directory's name is durable only once its parent is synced: sync every directory
      // from the parent of the first one created down to the parent of `dir` (publish syncs `dir`).
      if (created !== undefined) {
        const parents: string[] = [];
        for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
          parents.unshift(d);
          if (d === dirname(created)) break;
        }
        for (const d of parents) await syncDir(d, key);
      }
    } catch (err) {
      if (isCode(err, 'EEXIST', 'ENOTDIR')) throw conflict(key);
      throw mapError(err, 'put', key, dir);
    }
    const path = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      return { path, fh: await open(path, 'wx') };
    } catch (err) {
      throw mapError(err, 'put', key, path);
    }
  }

  /** Make the synced temp file the object: rename (overwrite) or link (create only), then sync the directory. */
  private async publish(key: string, target: string, temp: Temp, size: number, options?: PutOptions): Promise<ObjectInfo> {
    try {
      await temp.fh.close();
      if (options?.ifNoneMatch) {
        try {
          await link(temp.path, target);
        } catch (err) {
          if (isCode(err, 'EEXIST')) throw (await isDirectory(target)) ? conflict(key) : preconditionFailed(key);
          throw err;
        }
        await unlink(temp.path);
      } else {
        try {
          await rename(temp.path, target);
        } catch (err) {
          if (isCode(err, 'EISDIR', 'ENOTEMPTY', 'EEXIST')) throw conflict(key);
          throw err;
        }
      }
      await syncDir(dirname(target), key);
    } catch (err) {
      await unlink(temp.path).catch(() => {}); // gone already after a successful rename or unlink
      throw mapError(err, 'put', key, target);
    }
    return { key, size };
  }
}

interface Temp {
  path: string;
  fh: FileHandle;
}

async function writeAll(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

async function discard(temp: Temp): Promise<void> {
  await temp.fh.close().catch(() => {});
  await unlink(temp.path).catch(() => {});
}

async function syncDir(dir: string, key: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some file systems cannot fsync a directory; nothing more can be done there.
    if (!isCode(err, 'EINVAL', 'ENOTSUP')) throw mapError(err, 'fsync', key, dir);
  } finally {
    await fh?.close();
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

function preconditionFailed(key: string): StoreError {
  return new StoreError('precondition_failed', `object ${key} already exists`, { key, status: 412 });
}

function conflict(key: string): StoreError {
  return new StoreError('bad_request', `key ${key} conflicts with a directory of other keys (or lies under an object)`, { key });
}

/** One place that turns a Node fs error into a StoreError, naming the operation, path and cause. */
function mapError(err: unknown, op: string, key: string, path: string, absentIsNotFound = false): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'unknown';
  const msg = `${op} ${key}: ${code} at ${path}`;
  if (code === 'ENOENT' || (absentIsNotFound && (code === 'EISDIR' || code === 'ENOTDIR'))) {
    return new StoreError('not_found', absentIsNotFound ? `no object ${key}` : msg, { key, cause: err });
  }
  if (code === 'ENAMETOOLONG') return new StoreError('bad_request', msg, { key, cause: err });
  if (code === 'EISDIR' || code === 'ENOTDIR') return new StoreError('bad_request', msg, { key, cause: err });
  // Out of file descriptors is transient: a retry after others close may succeed.
  if (code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN') return new StoreError('unavailable', msg, { key, cause: err });
  // EACCES, EPERM, EROFS, ENOSPC, EDQUOT, EIO and anything unexpected.
  return new StoreError('io', msg, { key, cause: err });
}
