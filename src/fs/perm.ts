import type { Inode } from '../inode/index.ts';
import { FsError } from '../util/index.ts';
import { R_OK, W_OK, X_OK, type Identity } from './types.ts';

export function inGroup(who: Identity, gid: number): boolean {
  return who.gid === gid || who.groups.includes(gid);
}

/** Does `who` have every access in `mask` (R_OK|W_OK|X_OK) to the inode? Linux rules, root included. */
export function permits(who: Identity, inode: Inode, mask: number): boolean {
  if (who.uid === 0) {
    // root may read and write anything, and execute anything with some x bit (or any directory)
    if (mask & X_OK && !inode.isDir && (inode.mode & 0o111) === 0) return false;
    return true;
  }
  let bits: number;
  if (who.uid === inode.uid) bits = (inode.mode >> 6) & 7;
  else if (inGroup(who, inode.gid)) bits = (inode.mode >> 3) & 7;
  else bits = inode.mode & 7;
  return (bits & mask) === mask;
}

export function requireAccess(who: Identity, inode: Inode, mask: number, what: string): void {
  if (!permits(who, inode, mask)) {
    const want = `${mask & R_OK ? 'r' : ''}${mask & W_OK ? 'w' : ''}${mask & X_OK ? 'x' : ''}`;
    throw new FsError('EACCES', `${what}: uid ${who.uid} lacks ${want} permission on inode ${inode.ino}`);
  }
}

/** Owner or root: required for chmod, utimes with explicit times, xattrs on sticky dirs... */
export function isOwnerOrRoot(who: Identity, inode: Inode): boolean {
  return who.uid === 0 || who.uid === inode.uid;
}

/** Sticky directory rule: only the file's owner, the directory's owner or root may remove/rename. */
export function requireStickyRight(who: Identity, dir: Inode, target: Inode, what: string): void {
  if ((dir.mode & 0o1000) === 0 || who.uid === 0 || who.uid === dir.uid || who.uid === target.uid) return;
  throw new FsError('EPERM', `${what}: directory ${dir.ino} is sticky and uid ${who.uid} owns neither it nor the entry`);
}
