/**
 * S3 multipart uploads. An upload is a directory /.silt-objapi-uploads/<uploadId> at the volume root
 * (hidden: reserved names are never listed or addressable), its description in an xattr, each part
 * a file written like any PUT (aside, renamed, fsynced, MD5 stamped). Completion checks the parts
 * the client names against their ETags and S3's rules, then assembles the object in a new file
 * beside the target by moving the parts' extents into it (fs.coalesce: no data is copied, the
 * commit carries only metadata; the parts' names go in the same step), publishes it with one
 * rename, and removes the upload. The object's ETag is the MD5 of its whole content, as for any
 * object: computed by reading the assembled file once (reads, no writes). A file system without
 * coalesce (a remote one) gets the parts streamed into the new file instead.
 *
 * Once the parts are moved, a completion that fails before the rename (rare: the store failing
 * the final commit) has consumed them; the client starts the upload again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { O_RDONLY, type Attr, type FileSystem, type Identity } from '../fs/index.ts';
import { FsError, assert, type Logger } from '../util/index.ts';
import { ApiError, badRequest, notFound } from './errors.ts';
import { readRange, type EtagCache } from './etag.ts';
import { isFile, type Namespace, type PutResult, type PutSource } from './namespace.ts';
import { RESERVED_PREFIX, type Key } from './paths.ts';

const ROOT_INO = 1;
export const UPLOADS_DIR = `${RESERVED_PREFIX}uploads`;
const INFO_XATTR = 'user.silt.mpu';
export const PART_BYTES_MIN = 5 * 1024 * 1024;
export const PARTS_MAX = 10_000;

interface UploadInfo {
  bucket: string;
  key: string;
  contentType?: string;
  /** name -> base64 value */
  meta: Record<string, string>;
  initiatedMs: number;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

const partName = (n: number): string => `part.${String(n).padStart(5, '0')}`;

export class Multipart {
  constructor(
    private readonly fs: FileSystem,
    private readonly ns: Namespace,
    private readonly etags: EtagCache,
    private readonly log: Logger,
  ) {}

  async create(who: Identity, bucket: string, key: Key, contentType: string | undefined, meta: Map<string, Uint8Array>, nowMs: number): Promise<string> {
    const id = randomBytes(16).toString('hex');
    const dir = await this.ns.mkdirs(who, ROOT_INO, [UPLOADS_DIR, id]);
    const info: UploadInfo = { bucket, key: key.text, meta: {}, initiatedMs: nowMs };
    if (contentType !== undefined) info.contentType = contentType;
    for (const [k, v] of meta) info.meta[k] = Buffer.from(v).toString('base64');
    await this.fs.setxattr(who, dir, INFO_XATTR, Buffer.from(JSON.stringify(info)));
    await this.fs.fsync(dir, false);
    return id;
  }

  /** The upload's directory, if `id` names an upload of this bucket and key. */
  private async open(who: Identity, id: string, bucket: string, key: Key): Promise<{ dir: Attr; info: UploadInfo }> {
    if (!/^[0-9a-f]{32}$/.test(id)) throw notFound('upload', 'no such upload');
    const dir = await this.ns.walkPath(who, ROOT_INO, [UPLOADS_DIR, id]);
    if (!dir) throw notFound('upload', 'no such upload');
    let info: UploadInfo;
    try {
      info = JSON.parse(Buffer.from(await this.fs.getxattr(who, dir.ino, INFO_XATTR)).toString('utf8')) as UploadInfo;
    } catch (err) {
      if (err instanceof FsError && err.errno !== 'ENODATA') throw err;
      throw notFound('upload', 'no such upload');
    }
    if (info.bucket !== bucket || info.key !== key.text) throw notFound('upload', 'the upload is for another key');
    return { dir, info };
  }

  async uploadPart(who: Identity, bucket: string, key: Key, id: string, partNumber: number, body: AsyncIterable<Uint8Array>, bytesMax: number): Promise<string> {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > PARTS_MAX) throw badRequest(`partNumber must be 1..${PARTS_MAX}`);
    const { dir } = await this.open(who, id, bucket, key);
    const r = await this.ns.writeFile(who, dir.ino, partName(partNumber), body, { bytesMax });
    return r.md5;
  }

  async complete(who: Identity, cont: Attr, bucket: string, key: Key, id: string, parts: readonly CompletedPart[], bytesMax: number): Promise<PutResult> {
    const { dir, info } = await this.open(who, id, bucket, key);
    if (parts.length === 0) throw badRequest('CompleteMultipartUpload names no parts', 'MalformedXML');
    const files: Attr[] = [];
    const opened: number[] = [];
    try {
      let total = 0;
      for (const [i, p] of parts.entries()) {
        if (i > 0 && p.partNumber <= parts[i - 1]!.partNumber) throw badRequest('parts must be listed in ascending order', 'InvalidPartOrder');
      }
      for (const [i, p] of parts.entries()) {
        const a = await this.ns.lookup(who, dir.ino, partName(p.partNumber));
        if (!a || !isFile(a)) throw badRequest(`part ${p.partNumber} was not uploaded`, 'InvalidPart');
        const held = await this.fs.open(who, a.ino, O_RDONLY); // a re-upload of the part cannot free it under us
        opened.push(a.ino);
        if ((await this.etags.etag(who, held)) !== p.etag) throw badRequest(`part ${p.partNumber} has another ETag`, 'InvalidPart');
        if (i < parts.length - 1 && held.size < PART_BYTES_MIN) throw badRequest(`part ${p.partNumber} is smaller than 5 MiB`, 'EntityTooSmall');
        total += held.size;
        files.push(held);
      }
      if (total > bytesMax) throw new ApiError(413, 'EntityTooLarge', `the object would exceed ${bytesMax} bytes`);
      const fs = this.fs;
      const source: PutSource = fs.coalesce
        ? { fill: (ino) => this.assemble(who, ino, dir.ino, parts, files) }
        : (async function* () {
            for (const f of files) yield* readRange(fs, who, f.ino, 0, f.size);
          })();
      const meta = new Map(Object.entries(info.meta).map(([k, v]) => [k, Buffer.from(v, 'base64')] as const));
      const r = await this.ns.put(who, cont, key, source, { meta, contentType: info.contentType, bytesMax });
      await this.removeUpload(who, id);
      return r;
    } finally {
      for (const ino of opened) await this.fs.release(ino, false).catch(() => {});
    }
  }

  /** Move the parts' extents into the (empty, open) file `ino`, then hash what it holds. */
  private async assemble(who: Identity, ino: number, dir: number, parts: readonly CompletedPart[], files: readonly Attr[]): Promise<{ md5: string; bytes: number }> {
    const coalesce = this.fs.coalesce;
    assert(coalesce !== undefined, 'assemble needs fs.coalesce');
    const sources = parts.map((p, i) => ({ parent: dir, name: partName(p.partNumber), ino: files[i]!.ino }));
    let a: Attr;
    try {
      a = await coalesce.call(this.fs, who, ino, sources);
    } catch (err) {
      // A part replaced (re-uploaded) since its ETag was checked: the client's list is stale.
      if (err instanceof FsError && (err.errno === 'ESTALE' || err.errno === 'ENOENT')) throw badRequest('a part changed while the upload was completed', 'InvalidPart');
      throw err;
    }
    const h = createHash('md5');
    let n = 0;
    for await (const c of readRange(this.fs, who, ino, 0, a.size)) {
      h.update(c);
      n += c.length;
    }
    return { md5: h.digest('hex'), bytes: n };
  }

  async abort(who: Identity, bucket: string, key: Key, id: string): Promise<void> {
    await this.open(who, id, bucket, key);
    await this.removeUpload(who, id);
    await this.fs.sync();
  }

  private async removeUpload(who: Identity, id: string): Promise<void> {
    const uploads = await this.ns.lookup(who, ROOT_INO, UPLOADS_DIR);
    if (!uploads) return;
    const dir = await this.ns.lookup(who, uploads.ino, id);
    if (!dir) return;
    try {
      let cookie = 0n;
      for (;;) {
        const page = await this.fs.readdir(who, dir.ino, cookie, 1024);
        if (page.length === 0) break;
        for (const e of page) {
          cookie = e.cookie;
          if (e.name !== '.' && e.name !== '..') await this.fs.unlink(who, dir.ino, e.name);
        }
      }
      await this.fs.rmdir(who, uploads.ino, id);
    } catch (err) {
      this.log.warn('objapi: cannot remove a finished multipart upload', { id, err: String(err) });
    }
  }
}
