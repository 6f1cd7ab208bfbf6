/**
 * Parameter schemas, one strict zod object per method: unknown keys, wrong types, fractional or
 * unsafe integers, malformed base64 and out-of-range values are rejected with -32602 before the
 * file system sees them. POSIX rules (name length, permissions, existence) stay with the fs layer,
 * which answers with an errno.
 */
import { z } from 'zod';
import { DATA_BYTES_MAX, READDIR_ENTRIES_MAX } from './protocol.ts';

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** Upper bound on any string parameter that is not file data (names, paths, tokens, xattr names). */
const TEXT_MAX = 16 * 1024;

const safeUint = z.number().int().min(0);
const id32 = z.number().int().min(0).max(U32_MAX);
export const inodeNumber = z.number().int().min(1);
const mountId = z.number().int().min(1);
const text = z.string().max(TEXT_MAX);
const mode = z.number().int().min(0).max(0o177777);

/**
 * Base64 (standard or URL-safe alphabet, padded to a multiple of 4) of at most `maxBytes` bytes,
 * decoded to a Buffer. Node's decoder skips characters outside the alphabet and stops at an inner
 * '=', so any such character makes the decoded length fall short of the length the text implies:
 * checking that length is a full validation at the cost of the decode alone (a regex over
 * megabytes of text costs four times as much).
 */
export function base64(maxBytes: number) {
  return z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4, `more than ${maxBytes} bytes of data`)
    .transform((s, ctx) => {
      if (s.length % 4 !== 0) {
        ctx.addIssue({ code: 'custom', message: 'not base64: length is not a multiple of 4' });
        return z.NEVER;
      }
      const b = Buffer.from(s, 'base64');
      const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
      if (b.length !== (s.length / 4) * 3 - pad) {
        ctx.addIssue({ code: 'custom', message: 'not base64: a character outside the alphabet or misplaced padding' });
        return z.NEVER;
      }
      return b;
    });
}

/** Nanoseconds since the epoch as a decimal string (signed 64-bit). */
const timeNs = z
  .string()
  .regex(/^-?\d{1,19}$/, 'not a decimal string of nanoseconds')
  .transform((s) => BigInt(s))
  .refine((n) => n >= I64_MIN && n <= I64_MAX, 'out of the signed 64-bit range');

const cookie = z
  .string()
  .regex(/^\d{1,20}$/, 'not a decimal cookie string')
  .transform((s) => BigInt(s))
  .refine((n) => n <= U64_MAX, 'out of the unsigned 64-bit range');

/** Act as this identity for one call (only a mount made as root may name someone else). */
const caller = z.strictObject({ uid: id32, gid: id32, groups: z.array(id32).max(65536).optional() }).optional();

const onMount = { mountId, caller };
const onInode = { ...onMount, inode: inodeNumber };
const onEntry = { ...onInode, name: text };

const data = base64(DATA_BYTES_MAX);
const xattrValue = base64(64 * 1024);

export const methodParams = {
  RpcPing: z.strictObject({}),
  RpcAuth: z.strictObject({ token: text }),
  RpcMount: z.strictObject({
    volume: text.min(1),
    token: text.optional(),
    uid: id32.optional(),
    gid: id32.optional(),
    groups: z.array(id32).max(65536).optional(),
  }),
  RpcUnmount: z.strictObject({ mountId }),
  RpcLookup: z.strictObject(onEntry),
  RpcLookupPath: z.strictObject({ ...onMount, path: text }),
  RpcGetStat: z.strictObject(onInode),
  RpcSetStat: z.strictObject({
    ...onInode,
    mode: mode.optional(),
    uid: id32.optional(),
    gid: id32.optional(),
    size: safeUint.optional(),
    atime: z.union([z.literal('now'), timeNs]).optional(),
    mtime: z.union([z.literal('now'), timeNs]).optional(),
    ctime: timeNs.optional(),
  }),
  RpcResize: z.strictObject({ ...onInode, size: safeUint }),
  RpcCreate: z.strictObject({ ...onEntry, mode: mode.default(0o644), uid: id32.optional(), gid: id32.optional() }),
  RpcMkdir: z.strictObject({ ...onEntry, mode: mode.default(0o755), uid: id32.optional(), gid: id32.optional() }),
  RpcMknod: z.strictObject({ ...onEntry, mode, rdev: id32.default(0), uid: id32.optional(), gid: id32.optional() }),
  RpcSymlink: z.strictObject({ ...onEntry, target: text, uid: id32.optional(), gid: id32.optional() }),
  RpcReadSymlink: z.strictObject(onInode),
  RpcLink: z.strictObject({ ...onEntry, targetInode: inodeNumber }),
  RpcUnlink: z.strictObject(onEntry),
  RpcRmdir: z.strictObject(onEntry),
  RpcRename: z.strictObject({
    ...onEntry,
    newInode: inodeNumber,
    newName: text,
    noReplace: z.boolean().optional(),
    exchange: z.boolean().optional(),
  }),
  RpcReaddir: z.strictObject({
    ...onInode,
    cookie: cookie.default(0n),
    limit: z.number().int().min(1).max(READDIR_ENTRIES_MAX).default(1024),
    plus: z.boolean().default(false),
  }),
  RpcOpen: z.strictObject({ ...onInode, flags: z.number().int().min(0).max(U32_MAX).default(0) }),
  RpcRelease: z.strictObject({ mountId, inode: inodeNumber, wrote: z.boolean().default(false) }),
  RpcRead: z.strictObject({ ...onInode, offset: safeUint, length: z.number().int().min(0).max(DATA_BYTES_MAX) }),
  RpcWrite: z.strictObject({ ...onInode, offset: safeUint, data }),
  RpcFlush: z.strictObject({ mountId, inode: inodeNumber, dataOnly: z.boolean().default(false) }),
  RpcSync: z.strictObject({ mountId }),
  RpcFallocate: z.strictObject({ ...onInode, mode: id32.default(0), offset: safeUint, length: safeUint }),
  RpcSeek: z.strictObject({ ...onInode, offset: safeUint, whence: z.union([z.literal(3), z.literal(4)]) }),
  RpcAccess: z.strictObject({ ...onInode, mask: z.number().int().min(0).max(7) }),
  RpcPin: z.strictObject({ mountId, inode: inodeNumber, count: z.number().int().min(1).max(U32_MAX).default(1) }),
  RpcUnpin: z.strictObject({ mountId, inode: inodeNumber, count: z.number().int().min(1).max(U32_MAX).default(1) }),
  RpcGetXAttr: z.strictObject({ ...onInode, name: text }),
  RpcSetXAttr: z.strictObject({
    ...onInode,
    name: text,
    value: xattrValue,
    create: z.boolean().optional(),
    replace: z.boolean().optional(),
  }),
  RpcListXAttr: z.strictObject(onInode),
  RpcRemoveXAttr: z.strictObject({ ...onInode, name: text }),
  RpcStatVFS: z.strictObject(onMount),
  RpcSnapShotCreate: z.strictObject({ mountId, name: text }),
  RpcSnapShotDelete: z.strictObject({ mountId, name: text }),
  RpcSnapShotList: z.strictObject({ mountId }),
} as const;

/** RpcWrite as a binary frame: the same parameters, the data being the frame's payload. */
export const writeFrameParams = methodParams.RpcWrite.omit({ data: true });

export type MethodName = keyof typeof methodParams;
/** What a client sends (defaults may be omitted). */
export type ParamsIn<M extends MethodName> = z.input<(typeof methodParams)[M]>;
/** What a handler receives (defaults filled, strings decoded to bigint where noted). */
export type ParamsOut<M extends MethodName> = z.output<(typeof methodParams)[M]>;

export const METHOD_NAMES = Object.keys(methodParams) as MethodName[];

/** Turn zod issues into `{path, message}` pairs and one readable line. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): {
  line: string;
  list: { path: string; message: string }[];
} {
  const list = issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.') || '(params)', message: i.message }));
  return { line: list.map((i) => `${i.path}: ${i.message}`).join('; '), list };
}
