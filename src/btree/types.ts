/**
 * The contract between the B+tree and whatever stores its nodes (the segment layer), plus the key and
 * value codecs each tree is instantiated with. Other layers code against these shapes; change them
 * only together with every implementer.
 */
import type { ByteReader, ByteWriter } from '../util/index.ts';

/** Where a node record lives: segment id, byte offset of the record in the segment, record length. */
export interface NodeLoc { seg: number; off: number; len: number }
export interface NodeStore {
  /** Read back a node payload written earlier by writeNode (checksum already verified). */
  readNode(loc: NodeLoc): Promise<Uint8Array>;
  /** Append a node payload to the open segment (in memory, synchronous); returns its location. `owner` is the tree's owner inode (0 for volume trees), recorded for fsck/cleaner. */
  writeNode(payload: Uint8Array, owner: number): NodeLoc;
  /** The node at loc is no longer referenced by the newest tree version (live-bytes accounting). */
  releaseNode(loc: NodeLoc): void;
}
export interface KeyCodec<K> { compare(a: K, b: K): number; encode(k: K, w: ByteWriter): void; decode(r: ByteReader): K; }
export interface ValueCodec<V> { encode(v: V, w: ByteWriter): void; decode(r: ByteReader): V; }
