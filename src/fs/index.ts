/**
 * fs: POSIX semantics, permission checks and errno errors over the inode layer; the API every
 * front end calls (FUSE, RPC, object API).
 *
 * Invariants:
 * - Every method rejects with FsError and nothing else; EIO carries the store's cause.
 * - Mutations run one at a time under the volume lock, so each is atomic in the next commit.
 * - fsync/sync (and release of a written file in sync-on-close mode) resolve only after a commit
 *   covering everything before the call is durable in the store.
 * - A directory entry is written in the same commit as the inode it names.
 */
export * from './types.ts';
export { SiltFileSystem, openFileSystem, mkfs, rootIdentity, type FileSystemOptions, type OpenFileSystemOptions } from './filesystem.ts';
export { permits } from './perm.ts';
export { MountTable, effectiveIdentity, type Mount, type MountTableOptions, type SnapshotAdmin, type SnapshotInfo } from './mounts.ts';
export { LockTable, LOCK_OFFSET_MAX, type PosixLock, type PosixLockType, type FlockType, type LockTableOptions } from './locks.ts';
export { SnapshotDirectory, SNAPSHOT_DIR_NAME, SNAPSHOT_DIR_INO } from './snapshots.ts';
