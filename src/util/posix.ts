/** POSIX constants shared by every layer (values as in Linux <sys/stat.h>, <limits.h>). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

export const NAME_MAX = 255;
export const PATH_MAX = 4096;
/** Largest file we accept (bytes): 2^52, comfortably inside a JS safe integer. */
export const FILE_SIZE_MAX = 2 ** 52;
/** Linux XATTR limits: name 255 bytes, value 64 KiB. We also cap an inode's total xattr bytes. */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;
export const XATTR_TOTAL_MAX = 256 * 1024;

/** Whether a process with this pid exists on this machine (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
