/**
 * inode: inodes in memory over the volume's inode table — regular files with extent maps,
 * directories, symlinks, xattrs — plus the time-based flusher.
 *
 * Invariants:
 * - Every mutation marks its inode dirty; the next commit writes each dirty inode's trees, then its
 *   record, into the same commit segment as the data they reference.
 * - An inode with no links is never written to the table; it lives in memory until the last open
 *   handle or front-end reference goes, then its extents and tree nodes are released.
 * - Extents of a file never overlap; each names bytes of a checksummed data record.
 * - Methods run under the volume lock, except `fetch`, which only reads immutable records.
 */
export { Inodes, defaultInodeLayerOptions, ROOT_INO, type InodeLayerOptions, type ReadPiece, type DirListing } from './inodes.ts';
export { Inode } from './inode.ts';
export { cleanSegments, pickVictims, CLEANER_FAILPOINTS, type CleanOptions, type CleanReport } from './cleaner.ts';
export {
  nameHash,
  type Extent,
  type InodeRecord,
  type DirKey,
  type DirValue,
} from '../headhunter/index.ts';
