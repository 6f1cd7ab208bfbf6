/**
 * In-memory B+tree nodes and their on-store encoding.
 *
 * Node record (little-endian):
 *   header (8 bytes): magic u16 = 0x5442 ('BT'), version u8 = 1, kind u8 (0 leaf, 1 internal),
 *                     level u8 (0 for leaves, child level + 1 for internal nodes), flags u8 = 0,
 *                     count u16 (leaf: entries; internal: children)
 *   leaf:     count × (key, value)                       via the tree's codecs
 *   internal: child0 loc, (count - 1) × (key, child loc) where loc = seg u64, off u64, len u32
 * The record must end exactly after the last entry. Keys are strictly ascending within a node.
 *
 * Every node tracks `bytes`, its exact encoded length, maintained incrementally from per-entry sizes
 * (leaf `sizes[i]` = key + value bytes; internal `ksizes[i]` = separator key bytes) so that a put
 * never re-encodes a node; flush asserts the accounting against the real encoding.
 */
import { ByteReader, ByteWriter, CorruptionError } from '../util/index.ts';
import type { KeyCodec, NodeLoc, ValueCodec } from './types.ts';

export const NODE_MAGIC = 0x5442;
export const NODE_VERSION = 1;
export const NODE_HEADER_BYTES = 8;
export const NODE_LOC_BYTES = 20;
/** Largest entry count a node header can express. */
export const NODE_COUNT_MAX = 0xffff;
/** Deeper than any real tree (a 2-way tree of 2^40 keys); bounds garbage `level` bytes. */
export const NODE_LEVEL_MAX = 40;

const KIND_LEAF = 0;
const KIND_INTERNAL = 1;

interface NodeState {
  /** Where this node's current version is stored; undefined while dirty (its old loc is queued for release). */
  loc: NodeLoc | undefined;
  dirty: boolean;
  /** Operation tick of the last visit (eviction order). */
  touched: number;
  /** Set once the node is no longer part of the tree (freed, merged away or evicted). */
  detached: boolean;
}

export class LeafNode<K, V> implements NodeState {
  readonly kind = 'leaf' as const;
  readonly level = 0;
  loc: NodeLoc | undefined = undefined;
  dirty = false;
  touched = 0;
  detached = false;
  constructor(
    public keys: K[] = [],
    public vals: V[] = [],
    public sizes: number[] = [],
    public bytes: number = NODE_HEADER_BYTES,
  ) {}
  get count(): number {
    return this.keys.length;
  }
}

export class InternalNode<K, V> implements NodeState {
  readonly kind = 'internal' as const;
  loc: NodeLoc | undefined = undefined;
  dirty = false;
  touched = 0;
  detached = false;
  constructor(
    public level: number,
    /** children.length - 1 separators: keys in children[i] are >= keys[i-1] and < keys[i]. */
    public keys: K[],
    public ksizes: number[],
    public children: Array<Node<K, V> | NodeLoc>,
    public bytes: number,
  ) {}
  get count(): number {
    return this.children.length;
  }
}

export type Node<K, V> = LeafNode<K, V> | InternalNode<K, V>;
export type Child<K, V> = Node<K, V> | NodeLoc;

export function isNode<K, V>(c: Child<K, V>): c is Node<K, V> {
  return c instanceof LeafNode || c instanceof InternalNode;
}

export function internalBytes(children: number, ksizes: readonly number[]): number {
  let b = NODE_HEADER_BYTES + children * NODE_LOC_BYTES;
  for (const s of ksizes) b += s;
  return b;
}

function writeLoc(w: ByteWriter, loc: NodeLoc): void {
  w.u64(loc.seg).u64(loc.off).u32(loc.len);
}

function readLoc(r: ByteReader): NodeLoc {
  const seg = r.u64();
  const off = r.u64();
  const len = r.u32();
  if (len === 0) throw new CorruptionError('btree node: child loc with zero length');
  return { seg, off, len };
}

export function childLoc<K, V>(c: Child<K, V>): NodeLoc {
  if (!isNode(c)) return c;
  if (c.loc === undefined || c.dirty) throw new CorruptionError('btree: encoding a node whose child is unflushed');
  return c.loc;
}

export function encodeNode<K, V>(node: Node<K, V>, kc: KeyCodec<K>, vc: ValueCodec<V>): Uint8Array {
  const w = new ByteWriter(node.bytes + 16);
  w.u16(NODE_MAGIC).u8(NODE_VERSION);
  if (node.kind === 'leaf') {
    w.u8(KIND_LEAF).u8(0).u8(0).u16(node.keys.length);
    for (let i = 0; i < node.keys.length; i++) {
      kc.encode(node.keys[i] as K, w);
      vc.encode(node.vals[i] as V, w);
    }
  } else {
    w.u8(KIND_INTERNAL).u8(node.level).u8(0).u16(node.children.length);
    writeLoc(w, childLoc(node.children[0] as Child<K, V>));
    for (let i = 1; i < node.children.length; i++) {
      kc.encode(node.keys[i - 1] as K, w);
      writeLoc(w, childLoc(node.children[i] as Child<K, V>));
    }
  }
  return w.finish();
}

/**
 * Decode and validate a node record. Throws CorruptionError on any malformed input (including
 * errors thrown by the codecs on garbage); the loop is bounded by the u16 count.
 */
export function decodeNode<K, V>(bytes: Uint8Array, kc: KeyCodec<K>, vc: ValueCodec<V>): Node<K, V> {
  const r = new ByteReader(bytes, 'btree node');
  try {
    const magic = r.u16();
    if (magic !== NODE_MAGIC) throw new CorruptionError(`btree node: bad magic 0x${magic.toString(16)}`);
    const version = r.u8();
    if (version !== NODE_VERSION) throw new CorruptionError(`btree node: unsupported version ${version}`);
    const kind = r.u8();
    const level = r.u8();
    const flags = r.u8();
    if (flags !== 0) throw new CorruptionError(`btree node: unknown flags ${flags}`);
    const count = r.u16();
    let node: Node<K, V>;
    if (kind === KIND_LEAF) {
      if (level !== 0) throw new CorruptionError(`btree node: leaf with level ${level}`);
      const keys: K[] = [];
      const vals: V[] = [];
      const sizes: number[] = [];
      for (let i = 0; i < count; i++) {
        const start = r.pos;
        const k = kc.decode(r);
        const v = vc.decode(r);
        if (i > 0 && !(kc.compare(keys[i - 1] as K, k) < 0)) throw new CorruptionError('btree node: leaf keys not ascending');
        keys.push(k);
        vals.push(v);
        sizes.push(r.pos - start);
      }
      node = new LeafNode<K, V>(keys, vals, sizes, r.pos);
    } else if (kind === KIND_INTERNAL) {
      if (level < 1 || level > NODE_LEVEL_MAX) throw new CorruptionError(`btree node: internal with level ${level}`);
      if (count < 1) throw new CorruptionError('btree node: internal node without children');
      const keys: K[] = [];
      const ksizes: number[] = [];
      const children: NodeLoc[] = [readLoc(r)];
      for (let i = 1; i < count; i++) {
        const start = r.pos;
        const k = kc.decode(r);
        ksizes.push(r.pos - start);
        if (i > 1 && !(kc.compare(keys[i - 2] as K, k) < 0)) throw new CorruptionError('btree node: separators not ascending');
        keys.push(k);
        children.push(readLoc(r));
      }
      node = new InternalNode<K, V>(level, keys, ksizes, children, r.pos);
    } else {
      throw new CorruptionError(`btree node: unknown kind ${kind}`);
    }
    r.expectEnd();
    return node;
  } catch (e) {
    if (e instanceof CorruptionError) throw e;
    throw new CorruptionError(`btree node: undecodable (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}
