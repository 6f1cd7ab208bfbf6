/**
 * btree: a copy-on-write B+tree whose nodes are records in log segments, paged in lazily.
 * Used for the inode table, directories, extent maps and the segment table.
 *
 * Invariants (checked by `BTree.check()`; cheap ones asserted on every flush):
 * - Order: keys are strictly ascending within every node and across leaves in order. An internal
 *   node with n children holds n - 1 separators; every key under children[i] is >= keys[i - 1] and
 *   < keys[i]. Leaves hold all entries; separators are copies of keys that were in the tree.
 * - Shape: every leaf is at level 0, every internal node at its children's level + 1, so all leaves
 *   are at the same depth. Only the root may be an empty leaf; the root, if internal, has >= 2
 *   children; no non-root node is empty.
 * - Size: a node's encoding is <= nodeBytesMax unless it cannot be split (a leaf with one entry, an
 *   internal node with fewer than 4 children); counts fit in u16. Nodes below nodeBytesMax / 4 are
 *   merged or evened out with a sibling when the sibling is in memory; underfull nodes are legal.
 *   Each node's `bytes` equals its encoded length (asserted at flush).
 * - Copy-on-write: a stored node is never rewritten. A dirty node holds no location and all its
 *   ancestors are dirty; a clean node holds the location of its stored version, and so does every
 *   clean ancestor chain. Modifying or freeing a stored node queues its old location, released by
 *   the next flush, so after each flush the locations written and not released are exactly the
 *   nodes reachable from the returned root. Old roots stay readable (snapshots).
 * - Memory: dirty nodes are always in memory (flush is synchronous); evictClean unloads only clean
 *   subtrees. Operations never hold a path across an await, so flush/evictClean may interleave with
 *   any in-flight operation.
 * - Corruption: decoding validates magic, version, kind, level, counts, key order, exact length and
 *   a child's level and key range against its parent slot, throwing CorruptionError.
 */
export type { KeyCodec, NodeLoc, NodeStore, ValueCodec } from './types.ts';
export { BTree, NODE_BYTES_MAX_DEFAULT, type BTreeOptions, type EntriesOptions } from './btree.ts';
export { u64Key, bytesValue } from './codecs.ts';
export { NODE_MAGIC, NODE_VERSION, NODE_HEADER_BYTES, decodeNode, encodeNode } from './node.ts';
