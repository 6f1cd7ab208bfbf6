/**
 * Copy-on-write B+tree over a NodeStore. See index.ts for the invariants.
 *
 * Concurrency model: every operation runs as a sequence of *synchronous attempts*. An attempt walks
 * from the root; if it meets a child that is not in memory it throws NeedLoad before changing
 * anything, the node is read (the only await), attached to its slot if that slot still holds the
 * same stub, and the attempt restarts from the root. So no path is ever held across an await, and
 * flush() and evictClean() (both synchronous) may run between any two awaits of any operation.
 */
import { AssertionError, ByteWriter, CorruptionError, assert } from '../util/index.ts';
import {
  InternalNode,
  LeafNode,
  NODE_COUNT_MAX,
  NODE_HEADER_BYTES,
  NODE_LOC_BYTES,
  decodeNode,
  encodeNode,
  isNode,
  type Child,
  type Node,
} from './node.ts';
import type { KeyCodec, NodeLoc, NodeStore, ValueCodec } from './types.ts';

export interface BTreeOptions {
  /** Owner inode recorded with every node written (0 for volume trees). */
  owner: number;
  /** Split nodes whose encoding exceeds this; merge/borrow below a quarter of it. Default 16 KiB. */
  nodeBytesMax?: number;
  /**
   * Called once after each put, and after each delete that removed something, with the key (and
   * for a put the value after it) encoded by the tree's codecs: what a redo log records. The bytes
   * are a view, valid only during the call.
   */
  onChange?: (op: 'put' | 'delete', encoded: Uint8Array) => void;
}

export interface EntriesOptions<K> {
  /** Start here (inclusive unless `exclusive`); default: the smallest key. */
  from?: K;
  exclusive?: boolean;
}

export const NODE_BYTES_MAX_DEFAULT = 16 * 1024;
export const NODE_BYTES_MAX_MIN = 128;
export const NODE_BYTES_MAX_MAX = 4 * 1024 * 1024;

/** Thrown inside a synchronous attempt when it needs a node that is not in memory. Never escapes. */
class NeedLoad {
  constructor(
    /** The internal node holding the stub, or undefined for the root. */
    readonly parent: object | undefined,
    readonly index: number,
    readonly stub: NodeLoc,
  ) {}
}

interface Path<K, V> {
  /** Root first, leaf last. */
  nodes: Node<K, V>[];
  /** idxs[i] is the index of nodes[i + 1] among nodes[i].children. */
  idxs: number[];
}

export class BTree<K, V> {
  readonly owner: number;
  readonly nodeBytesMax: number;
  /** Below this a node is underfull and is merged with or borrows from a sibling (when in memory). */
  readonly nodeBytesMin: number;

  private readonly onChange: BTreeOptions['onChange'];
  private rootRef: Child<K, V>;
  private flushedRoot: NodeLoc | undefined;
  private modified: boolean;
  /** Old locations of nodes modified or freed since the last flush; released by the next flush. */
  private pendingRelease: NodeLoc[] = [];
  private loaded = 0;
  private tick = 0;
  private destroyed = false;

  private constructor(
    private readonly store: NodeStore,
    private readonly kc: KeyCodec<K>,
    private readonly vc: ValueCodec<V>,
    rootRef: Child<K, V>,
    flushedRoot: NodeLoc | undefined,
    opts: BTreeOptions,
  ) {
    const max = opts.nodeBytesMax ?? NODE_BYTES_MAX_DEFAULT;
    assert(Number.isSafeInteger(opts.owner) && opts.owner >= 0, `btree: bad owner ${opts.owner}`);
    assert(
      Number.isInteger(max) && max >= NODE_BYTES_MAX_MIN && max <= NODE_BYTES_MAX_MAX,
      `btree: nodeBytesMax ${max} outside [${NODE_BYTES_MAX_MIN}, ${NODE_BYTES_MAX_MAX}]`,
    );
    this.owner = opts.owner;
    this.onChange = opts.onChange;
    this.nodeBytesMax = max;
    this.nodeBytesMin = Math.floor(max / 4);
    this.rootRef = rootRef;
    this.flushedRoot = flushedRoot;
    this.modified = flushedRoot === undefined;
    if (isNode(rootRef)) this.loaded = 1;
  }

  /** A new, empty tree: one dirty empty root leaf. */
  static create<K, V>(store: NodeStore, keyCodec: KeyCodec<K>, valueCodec: ValueCodec<V>, opts: BTreeOptions): BTree<K, V> {
    const leaf = new LeafNode<K, V>();
    leaf.dirty = true;
    return new BTree(store, keyCodec, valueCodec, leaf, undefined, opts);
  }

  /** The tree whose root was flushed at `root`; the root is read on first use. */
  static open<K, V>(
    store: NodeStore,
    keyCodec: KeyCodec<K>,
    valueCodec: ValueCodec<V>,
    root: NodeLoc,
    opts: BTreeOptions,
  ): BTree<K, V> {
    const stub: NodeLoc = { seg: root.seg, off: root.off, len: root.len };
    return new BTree(store, keyCodec, valueCodec, stub, stub, opts);
  }

  /** True if anything changed since the last flush (or the tree was never flushed). */
  get dirty(): boolean {
    return this.modified;
  }

  /** The root location returned by the last flush (or given to open); undefined before the first flush. */
  get root(): NodeLoc | undefined {
    return this.flushedRoot;
  }

  /** Nodes currently held in memory (attached to the tree). */
  get loadedNodes(): number {
    return this.loaded;
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  async get(k: K): Promise<V | undefined> {
    return this.run(() => {
      const leaf = this.findLeaf(k);
      const i = this.lowerBound(leaf.keys, k);
      return i < leaf.keys.length && this.kc.compare(leaf.keys[i] as K, k) === 0 ? leaf.vals[i] : undefined;
    });
  }

  /** The entry with the greatest key <= k. */
  async floor(k: K): Promise<[K, V] | undefined> {
    return this.run(() => {
      const path = this.descend(k);
      const leaf = path.nodes[path.nodes.length - 1] as LeafNode<K, V>;
      const i = this.upperBound(leaf.keys, k) - 1;
      if (i >= 0) return [leaf.keys[i] as K, leaf.vals[i] as V];
      for (let l = path.nodes.length - 2; l >= 0; l--) {
        const ci = path.idxs[l] as number;
        if (ci > 0) {
          const prev = this.rightmostLeaf(this.childAt(path.nodes[l] as InternalNode<K, V>, ci - 1));
          const j = prev.keys.length - 1;
          assert(j >= 0, 'btree: empty non-root leaf');
          return [prev.keys[j] as K, prev.vals[j] as V];
        }
      }
      return undefined;
    });
  }

  /** The entry with the least key >= k. */
  async ceil(k: K): Promise<[K, V] | undefined> {
    return this.run(() => {
      const at = this.seekGE(k, true, false);
      return at === undefined ? undefined : [at.leaf.keys[at.i] as K, at.leaf.vals[at.i] as V];
    });
  }

  async isEmpty(): Promise<boolean> {
    return this.run(() => {
      const root = this.rootNode();
      return root.kind === 'leaf' && root.keys.length === 0;
    });
  }

  /**
   * Ascending entries from `from`. Works one leaf at a time: each step re-seeks from the last key
   * returned, so mutating the tree (or flushing, evicting) between steps is safe. Guarantees: keys
   * come strictly ascending and never twice; a key present for the whole iteration is returned;
   * keys inserted or deleted during the iteration may or may not be seen, and a value may be up to
   * one leaf-batch stale.
   */
  async *entries(opts: EntriesOptions<K> = {}): AsyncGenerator<[K, V]> {
    let has = opts.from !== undefined;
    let from = opts.from as K;
    let exclusive = opts.exclusive ?? false;
    for (;;) {
      const batch = await this.run(() => {
        const at = this.seekGE(from, has, exclusive);
        if (at === undefined) return undefined;
        return { keys: at.leaf.keys.slice(at.i), vals: at.leaf.vals.slice(at.i) };
      });
      if (batch === undefined) return;
      for (let j = 0; j < batch.keys.length; j++) yield [batch.keys[j] as K, batch.vals[j] as V];
      from = batch.keys[batch.keys.length - 1] as K;
      has = true;
      exclusive = true;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Mutations

  /** Insert or replace. */
  async put(k: K, v: V): Promise<void> {
    const w = this.scratchWriter();
    const start = w.length;
    this.kc.encode(k, w);
    this.vc.encode(v, w);
    const size = w.length - start;
    await this.run(() => {
      const path = this.descend(k);
      const leaf = path.nodes[path.nodes.length - 1] as LeafNode<K, V>;
      const i = this.lowerBound(leaf.keys, k);
      this.markPathDirty(path.nodes);
      if (i < leaf.keys.length && this.kc.compare(leaf.keys[i] as K, k) === 0) {
        leaf.bytes += size - (leaf.sizes[i] as number);
        leaf.vals[i] = v;
        leaf.sizes[i] = size;
      } else {
        leaf.keys.splice(i, 0, k);
        leaf.vals.splice(i, 0, v);
        leaf.sizes.splice(i, 0, size);
        leaf.bytes += size;
      }
      this.fixup(path);
    });
    this.onChange?.('put', w.written(start, start + size));
  }

  /** Remove k; returns whether it was present. */
  async delete(k: K): Promise<boolean> {
    const removed = await this.run(() => {
      const path = this.descend(k);
      const leaf = path.nodes[path.nodes.length - 1] as LeafNode<K, V>;
      const i = this.lowerBound(leaf.keys, k);
      if (i >= leaf.keys.length || this.kc.compare(leaf.keys[i] as K, k) !== 0) return false;
      // Bring into memory the siblings that rebalancing may need, before changing anything.
      this.loadRebalanceSiblings(path, leaf.sizes[i] as number);
      this.markPathDirty(path.nodes);
      leaf.bytes -= leaf.sizes[i] as number;
      leaf.keys.splice(i, 1);
      leaf.vals.splice(i, 1);
      leaf.sizes.splice(i, 1);
      this.fixup(path);
      return true;
    });
    if (removed && this.onChange) {
      const w = this.scratchWriter();
      const start = w.length;
      this.kc.encode(k, w);
      this.onChange('delete', w.written(start, w.length));
    }
    return removed;
  }

  // ---------------------------------------------------------------------------------------------
  // Flush, eviction, destruction

  /**
   * Write every dirty node children-first, release every superseded location, and return the new
   * root location. Synchronous: dirty nodes are always in memory. If nothing changed, writes nothing.
   */
  flush(): NodeLoc {
    this.assertUsable();
    if (!this.modified) {
      assert(this.flushedRoot !== undefined, 'btree: clean tree without a root');
      return this.flushedRoot;
    }
    const r = this.rootRef;
    const loc = isNode(r) ? this.writeDirty(r) : r;
    const released = this.pendingRelease;
    this.pendingRelease = [];
    for (const old of released) this.store.releaseNode(old);
    this.flushedRoot = loc;
    this.modified = false;
    return loc;
  }

  /**
   * Unload clean subtrees, least recently used first, until at most `maxLoadedNodes` nodes are in
   * memory (or only dirty nodes and their ancestors remain). Returns the number of nodes unloaded.
   */
  evictClean(maxLoadedNodes: number): number {
    this.assertUsable();
    if (this.loaded <= maxLoadedNodes) return 0;
    const cands: Array<{ node: Node<K, V>; parent: InternalNode<K, V> | undefined; idx: number }> = [];
    const stack: Array<{ node: Node<K, V>; parent: InternalNode<K, V> | undefined; idx: number }> = [];
    if (isNode(this.rootRef)) stack.push({ node: this.rootRef, parent: undefined, idx: 0 });
    while (stack.length > 0) {
      const e = stack.pop()!;
      if (!e.node.dirty) cands.push(e);
      if (e.node.kind === 'internal') {
        const ch = e.node.children;
        for (let i = 0; i < ch.length; i++) {
          const c = ch[i] as Child<K, V>;
          if (isNode(c)) stack.push({ node: c, parent: e.node, idx: i });
        }
      }
    }
    cands.sort((a, b) => a.node.touched - b.node.touched || a.node.level - b.node.level);
    let evicted = 0;
    for (const { node, parent, idx } of cands) {
      if (this.loaded <= maxLoadedNodes) break;
      if (node.detached) continue; // went with an evicted ancestor
      assert(node.loc !== undefined, 'btree: clean node without a location');
      if (parent === undefined) {
        assert(this.rootRef === node, 'btree: evicting a stale root');
        this.rootRef = node.loc;
      } else {
        assert(parent.children[idx] === node, 'btree: evicting from a stale slot');
        parent.children[idx] = node.loc;
      }
      const n = this.detachSubtree(node);
      this.loaded -= n;
      evicted += n;
    }
    return evicted;
  }

  /**
   * Release every stored node of this tree (reading internal nodes it must), including superseded
   * versions not yet released by a flush. All reads happen before the first release, so a failed
   * read releases nothing. The tree is unusable afterwards. The caller must not mutate or flush the
   * tree while destroy is in progress.
   */
  async destroy(): Promise<void> {
    this.assertUsable();
    const locs: NodeLoc[] = [];
    const walk = async (c: Child<K, V>, level: number | undefined): Promise<void> => {
      let node: Node<K, V> | undefined;
      if (isNode(c)) {
        node = c;
        if (c.loc !== undefined) locs.push(c.loc);
      } else {
        locs.push(c);
        if (level !== 0) node = await this.readDecode(c, level);
      }
      if (node !== undefined && node.kind === 'internal') {
        for (const child of node.children) await walk(child, node.level - 1);
      }
    };
    await walk(this.rootRef, undefined);
    this.assertUsable();
    locs.push(...this.pendingRelease);
    if (isNode(this.rootRef)) this.detachSubtree(this.rootRef);
    this.destroyed = true;
    this.pendingRelease = [];
    this.loaded = 0;
    this.rootRef = new LeafNode<K, V>();
    for (const l of locs) this.store.releaseNode(l);
  }

  /**
   * Full invariant check, reading (without keeping) nodes not in memory. Throws AssertionError (or
   * CorruptionError for undecodable nodes). Must not run concurrently with mutations.
   */
  async check(): Promise<void> {
    this.assertUsable();
    const kc = this.kc;
    let attachedCount = 0;
    let prevKey: K | undefined;
    let hasPrev = false;
    const visit = async (
      c: Child<K, V>,
      level: number | undefined,
      lo: K | undefined,
      hasLo: boolean,
      hi: K | undefined,
      hasHi: boolean,
      parentDirty: boolean | undefined,
      isRoot: boolean,
    ): Promise<void> => {
      let node: Node<K, V>;
      if (isNode(c)) {
        node = c;
        attachedCount++;
        ensure(!node.detached, 'attached node marked detached');
        if (node.dirty) {
          ensure(node.loc === undefined, 'dirty node still holds a location');
          ensure(parentDirty !== false, 'dirty node under a clean parent');
        } else {
          ensure(node.loc !== undefined, 'clean node without a location');
        }
      } else {
        node = await this.readDecode(c, level);
      }
      if (level !== undefined) ensure(node.level === level, `level ${node.level}, expected ${level}`);
      // Sizes: the incremental accounting matches a real encoding of every entry.
      if (node.kind === 'leaf') {
        ensure(node.vals.length === node.keys.length && node.sizes.length === node.keys.length, 'leaf arrays disagree');
        ensure(isRoot || node.keys.length > 0, 'empty non-root leaf');
        let bytes = NODE_HEADER_BYTES;
        for (let i = 0; i < node.keys.length; i++) {
          const w = new ByteWriter(64);
          kc.encode(node.keys[i] as K, w);
          this.vc.encode(node.vals[i] as V, w);
          ensure(w.length === node.sizes[i], `leaf entry ${i} size ${node.sizes[i]}, encodes to ${w.length}`);
          bytes += w.length;
        }
        ensure(bytes === node.bytes, `leaf bytes ${node.bytes}, encodes to ${bytes}`);
      } else {
        ensure(node.children.length >= (isRoot ? 2 : 1), `internal node with ${node.children.length} children`);
        ensure(node.keys.length === node.children.length - 1 && node.ksizes.length === node.keys.length, 'internal arrays disagree');
        let bytes = NODE_HEADER_BYTES + node.children.length * NODE_LOC_BYTES;
        for (let i = 0; i < node.keys.length; i++) {
          const w = new ByteWriter(64);
          kc.encode(node.keys[i] as K, w);
          ensure(w.length === node.ksizes[i], `separator ${i} size ${node.ksizes[i]}, encodes to ${w.length}`);
          bytes += w.length;
        }
        ensure(bytes === node.bytes, `internal bytes ${node.bytes}, encodes to ${bytes}`);
      }
      ensure(!this.overflows(node), `node over ${this.nodeBytesMax} bytes (${node.bytes}, ${node.count} entries)`);
      const keys = node.keys;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as K;
        if (i > 0) ensure(kc.compare(keys[i - 1] as K, k) < 0, `keys not ascending at ${i}`);
        if (hasLo) ensure(kc.compare(lo as K, k) <= 0, `key ${i} below the parent's separator`);
        if (hasHi) ensure(kc.compare(k, hi as K) < 0, `key ${i} not below the parent's separator`);
      }
      if (node.kind === 'leaf') {
        if (keys.length > 0) {
          if (hasPrev) ensure(kc.compare(prevKey as K, keys[0] as K) < 0, 'keys not ascending across leaves');
          prevKey = keys[keys.length - 1];
          hasPrev = true;
        }
        return;
      }
      const dirty = isNode(c) ? node.dirty : undefined;
      for (let i = 0; i < node.children.length; i++) {
        await visit(
          node.children[i] as Child<K, V>,
          node.level - 1,
          i > 0 ? node.keys[i - 1] : lo,
          i > 0 || hasLo,
          i < node.keys.length ? node.keys[i] : hi,
          i < node.keys.length || hasHi,
          dirty,
          false,
        );
      }
    };
    await visit(this.rootRef, undefined, undefined, false, undefined, false, undefined, true);
    ensure(attachedCount === this.loaded, `loadedNodes ${this.loaded}, attached ${attachedCount}`);
    if (!this.modified) {
      ensure(this.pendingRelease.length === 0, 'clean tree with pending releases');
      ensure(!isNode(this.rootRef) || !this.rootRef.dirty, 'clean tree with a dirty root');
    }
  }

  /**
   * The cleaner is moving the node stored at `loc` out of its segment. If this tree still
   * references it (found by descending toward `firstKey`, its first key, down to `level`), mark
   * it and its ancestors dirty: the next flush writes them anew and releases `loc`. Returns
   * whether the node was live. `firstKey` undefined means the leftmost path (an empty root).
   */
  async relocate(loc: NodeLoc, firstKey: K | undefined, level: number): Promise<boolean> {
    const same = (a: NodeLoc, b: NodeLoc): boolean => a.seg === b.seg && a.off === b.off && a.len === b.len;
    return this.run(() => {
      let n = this.rootNode();
      const nodes: Node<K, V>[] = [n];
      for (;;) {
        if (n.loc !== undefined && same(n.loc, loc)) {
          this.markPathDirty(nodes);
          return true;
        }
        if (n.kind === 'leaf' || n.level <= level) return false;
        const i = firstKey === undefined ? 0 : this.upperBound(n.keys, firstKey);
        const c = n.children[i];
        // Do not page in a sibling at the target level just to find it is not the one.
        if (c !== undefined && !isNode(c) && n.level - 1 === level && !same(c, loc)) return false;
        n = this.childAt(n, i);
        nodes.push(n);
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Attempts and loading

  private assertUsable(): void {
    assert(!this.destroyed, 'btree: used after destroy');
  }

  private async run<T>(attempt: () => T): Promise<T> {
    this.assertUsable();
    for (;;) {
      this.tick++;
      try {
        return attempt();
      } catch (e) {
        if (!(e instanceof NeedLoad)) throw e;
        await this.load(e);
        this.assertUsable();
      }
    }
  }

  private async readDecode(loc: NodeLoc, level: number | undefined): Promise<Node<K, V>> {
    const bytes = await this.store.readNode(loc);
    const node = decodeNode(bytes, this.kc, this.vc);
    if (level !== undefined && node.level !== level) {
      throw new CorruptionError(`btree node at ${fmtLoc(loc)}: level ${node.level}, expected ${level}`);
    }
    node.loc = loc;
    return node;
  }

  private async load(need: NeedLoad): Promise<void> {
    const parent = need.parent as InternalNode<K, V> | undefined;
    const node: Node<K, V> = await this.readDecode(need.stub, parent === undefined ? undefined : parent.level - 1);
    node.touched = this.tick;
    if (parent === undefined) {
      if (this.rootRef !== need.stub) return; // root changed meanwhile; the attempt will retry
      this.rootRef = node;
    } else {
      if (parent.detached || parent.children[need.index] !== need.stub) return;
      // Cheap structural validation against the slot: non-empty, keys within the separators.
      const where = `btree node at ${fmtLoc(need.stub)}`;
      if (node.keys.length === 0 && node.kind === 'leaf') throw new CorruptionError(`${where}: empty non-root leaf`);
      const i = need.index;
      const first = node.keys[0];
      const last = node.keys[node.keys.length - 1];
      if (i > 0 && first !== undefined && this.kc.compare(parent.keys[i - 1] as K, first) > 0) {
        throw new CorruptionError(`${where}: keys below the parent's separator`);
      }
      if (i < parent.keys.length && last !== undefined && this.kc.compare(last, parent.keys[i] as K) >= 0) {
        throw new CorruptionError(`${where}: keys above the parent's separator`);
      }
      parent.children[i] = node;
    }
    this.loaded++;
  }

  private rootNode(): Node<K, V> {
    const r = this.rootRef;
    if (!isNode(r)) throw new NeedLoad(undefined, 0, r);
    r.touched = this.tick;
    return r;
  }

  private childAt(parent: InternalNode<K, V>, i: number): Node<K, V> {
    const c = parent.children[i];
    assert(c !== undefined, `btree: child ${i} out of range`);
    if (!isNode(c)) throw new NeedLoad(parent, i, c);
    c.touched = this.tick;
    return c;
  }

  // ---------------------------------------------------------------------------------------------
  // Searching (synchronous; may throw NeedLoad)

  /** First index with keys[i] >= k. */
  private lowerBound(keys: readonly K[], k: K): number {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.kc.compare(keys[mid] as K, k) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index with keys[i] > k. */
  private upperBound(keys: readonly K[], k: K): number {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.kc.compare(keys[mid] as K, k) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private findLeaf(k: K): LeafNode<K, V> {
    let n = this.rootNode();
    while (n.kind === 'internal') n = this.childAt(n, this.upperBound(n.keys, k));
    return n;
  }

  private descend(k: K): Path<K, V> {
    let n = this.rootNode();
    const nodes: Node<K, V>[] = [n];
    const idxs: number[] = [];
    while (n.kind === 'internal') {
      const i = this.upperBound(n.keys, k);
      n = this.childAt(n, i);
      idxs.push(i);
      nodes.push(n);
    }
    return { nodes, idxs };
  }

  private descendLeftmost(): Path<K, V> {
    let n = this.rootNode();
    const nodes: Node<K, V>[] = [n];
    const idxs: number[] = [];
    while (n.kind === 'internal') {
      n = this.childAt(n, 0);
      idxs.push(0);
      nodes.push(n);
    }
    return { nodes, idxs };
  }

  private leftmostLeaf(n: Node<K, V>): LeafNode<K, V> {
    while (n.kind === 'internal') n = this.childAt(n, 0);
    return n;
  }

  private rightmostLeaf(n: Node<K, V>): LeafNode<K, V> {
    while (n.kind === 'internal') n = this.childAt(n, n.children.length - 1);
    return n;
  }

  /** The first entry >= k (> k if exclusive; the first entry if !hasKey), as (leaf, index). */
  private seekGE(k: K, hasKey: boolean, exclusive: boolean): { leaf: LeafNode<K, V>; i: number } | undefined {
    const path = hasKey ? this.descend(k) : this.descendLeftmost();
    const leaf = path.nodes[path.nodes.length - 1] as LeafNode<K, V>;
    const i = !hasKey ? 0 : exclusive ? this.upperBound(leaf.keys, k) : this.lowerBound(leaf.keys, k);
    if (i < leaf.keys.length) return { leaf, i };
    for (let l = path.nodes.length - 2; l >= 0; l--) {
      const parent = path.nodes[l] as InternalNode<K, V>;
      const ci = path.idxs[l] as number;
      if (ci + 1 < parent.children.length) {
        const next = this.leftmostLeaf(this.childAt(parent, ci + 1));
        assert(next.keys.length > 0, 'btree: empty non-root leaf');
        return { leaf: next, i: 0 };
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Structure maintenance (synchronous)

  private markDirty(n: Node<K, V>): void {
    if (n.dirty) return;
    n.dirty = true;
    if (n.loc !== undefined) {
      this.pendingRelease.push(n.loc);
      n.loc = undefined;
    }
  }

  /** Mark the path dirty, leaf upwards, stopping at the first dirty node (its ancestors are dirty). */
  private markPathDirty(nodes: Node<K, V>[]): void {
    for (let l = nodes.length - 1; l >= 0; l--) {
      const n = nodes[l] as Node<K, V>;
      if (n.dirty) break;
      this.markDirty(n);
    }
    this.modified = true;
  }

  /** Forget a node that left the tree; its stored version (if any) is released at the next flush. */
  private free(n: Node<K, V>): void {
    n.detached = true;
    if (n.loc !== undefined) this.pendingRelease.push(n.loc);
    n.loc = undefined;
    this.loaded--;
  }

  private detachSubtree(n: Node<K, V>): number {
    let count = 1;
    n.detached = true;
    if (n.kind === 'internal') {
      for (const c of n.children) if (isNode(c)) count += this.detachSubtree(c);
    }
    return count;
  }

  private overflows(n: Node<K, V>): boolean {
    if (n.count > NODE_COUNT_MAX) return true;
    return n.bytes > this.nodeBytesMax && n.count >= (n.kind === 'leaf' ? 2 : 4);
  }

  private keySize(k: K): number {
    const w = this.scratchWriter();
    const start = w.length;
    this.kc.encode(k, w);
    return w.length - start;
  }

  private scratchWriter(): ByteWriter {
    if (scratch.length > SCRATCH_BYTES) scratch = new ByteWriter(2 * SCRATCH_BYTES);
    return scratch;
  }

  /**
   * Before a delete changes anything: bring in the sibling each level may need if it underflows.
   * Conservative; if it misses one, fixup just leaves that node underfull (still valid).
   */
  private loadRebalanceSiblings(path: Path<K, V>, removedBytes: number): void {
    const leaf = path.nodes[path.nodes.length - 1] as Node<K, V>;
    let mayUnderflow = leaf.bytes - removedBytes < this.nodeBytesMin;
    for (let l = path.nodes.length - 1; l >= 1 && mayUnderflow; l--) {
      const parent = path.nodes[l - 1] as InternalNode<K, V>;
      const ci = path.idxs[l - 1] as number;
      const sib = ci > 0 ? ci - 1 : ci + 1;
      if (sib < parent.children.length) this.childAt(parent, sib);
      let maxKey = 0;
      for (const s of parent.ksizes) if (s > maxKey) maxKey = s;
      mayUnderflow = parent.bytes - NODE_LOC_BYTES - maxKey < this.nodeBytesMin;
    }
  }

  /** Restore size invariants bottom-up along a path whose nodes are all dirty. */
  private fixup(path: Path<K, V>): void {
    for (let l = path.nodes.length - 1; l >= 1; l--) {
      const node = path.nodes[l] as Node<K, V>;
      const parent = path.nodes[l - 1] as InternalNode<K, V>;
      const ci = path.idxs[l - 1] as number;
      assert(parent.children[ci] === node && parent.dirty && node.dirty, 'btree: fixup path is stale');
      if (node.count === 0) {
        this.removeChild(parent, ci);
        this.free(node);
      } else if (this.overflows(node)) {
        const { pieces, seps, sepSizes } = this.split(node);
        parent.children.splice(ci + 1, 0, ...pieces.slice(1));
        parent.keys.splice(ci, 0, ...seps);
        parent.ksizes.splice(ci, 0, ...sepSizes);
        parent.bytes += (pieces.length - 1) * NODE_LOC_BYTES + sum(sepSizes);
      } else if (node.bytes < this.nodeBytesMin) {
        this.rebalance(parent, ci);
      }
    }
    this.fixRoot();
  }

  private fixRoot(): void {
    const r0 = this.rootRef;
    assert(isNode(r0) && r0.dirty, 'btree: fixRoot on a clean root');
    let root: Node<K, V> = r0;
    while (this.overflows(root)) {
      const { pieces, seps, sepSizes } = this.split(root);
      const nr: InternalNode<K, V> = new InternalNode<K, V>(
        root.level + 1,
        seps,
        sepSizes,
        pieces,
        NODE_HEADER_BYTES + pieces.length * NODE_LOC_BYTES + sum(sepSizes),
      );
      nr.dirty = true;
      nr.touched = this.tick;
      this.loaded++;
      this.rootRef = root = nr;
    }
    while (root.kind === 'internal' && root.children.length <= 1) {
      this.free(root);
      const only: Child<K, V> | undefined = root.children[0];
      if (only === undefined) {
        const leaf = new LeafNode<K, V>();
        leaf.dirty = true;
        this.loaded++;
        this.rootRef = leaf;
        return;
      }
      this.rootRef = only;
      if (!isNode(only)) return;
      root = only;
    }
  }

  private removeChild(parent: InternalNode<K, V>, ci: number): void {
    parent.children.splice(ci, 1);
    parent.bytes -= NODE_LOC_BYTES;
    if (parent.keys.length > 0) {
      const ki = ci > 0 ? ci - 1 : 0;
      parent.bytes -= parent.ksizes[ki] as number;
      parent.keys.splice(ki, 1);
      parent.ksizes.splice(ki, 1);
    }
  }

  /**
   * Choose cut points splitting entries [0, n) into pieces that each fit in nodeBytesMax (or hold a
   * single entry that cannot be split further), balancing bytes, with at least 2 entries per side
   * when the range has 4 or more. `bytesOf(a, b)` is the encoded size of a node holding [a, b).
   */
  private cuts(n: number, minSplit: number, bytesOf: (a: number, b: number) => number): number[] {
    const out: number[] = [];
    const rec = (a: number, b: number): void => {
      const count = b - a;
      if (count < minSplit || (count <= NODE_COUNT_MAX && bytesOf(a, b) <= this.nodeBytesMax)) return;
      const side = count >= 4 ? 2 : 1;
      let best = a + side;
      let bestCost = Infinity;
      for (let c = a + side; c <= b - side; c++) {
        const cost = Math.max(bytesOf(a, c), bytesOf(c, b));
        if (cost < bestCost) {
          bestCost = cost;
          best = c;
        }
      }
      rec(a, best);
      out.push(best);
      rec(best, b);
    };
    rec(0, n);
    return out;
  }

  /** Split an overflowing node: `node` keeps the first piece; returns all pieces and separators. */
  private split(node: Node<K, V>): { pieces: Node<K, V>[]; seps: K[]; sepSizes: number[] } {
    const pieces: Node<K, V>[] = [node];
    const seps: K[] = [];
    const sepSizes: number[] = [];
    if (node.kind === 'leaf') {
      const pre = prefixSums(node.sizes);
      const cuts = this.cuts(node.count, 2, (a, b) => NODE_HEADER_BYTES + (pre[b] as number) - (pre[a] as number));
      assert(cuts.length > 0, 'btree: split found no cut');
      const bounds = [0, ...cuts, node.count];
      const { keys, vals, sizes } = node;
      for (let p = 1; p < bounds.length - 1; p++) {
        const a = bounds[p] as number;
        const b = bounds[p + 1] as number;
        const leaf = new LeafNode<K, V>(keys.slice(a, b), vals.slice(a, b), sizes.slice(a, b));
        leaf.bytes = NODE_HEADER_BYTES + (pre[b] as number) - (pre[a] as number);
        pieces.push(leaf);
        seps.push(keys[a] as K);
        sepSizes.push(this.keySize(keys[a] as K));
      }
      const c0 = bounds[1] as number;
      node.keys = keys.slice(0, c0);
      node.vals = vals.slice(0, c0);
      node.sizes = sizes.slice(0, c0);
      node.bytes = NODE_HEADER_BYTES + (pre[c0] as number);
    } else {
      // Weight of child i: its loc plus the separator before it (dropped for a piece's first child).
      const w = node.children.map((_, i) => NODE_LOC_BYTES + (i > 0 ? (node.ksizes[i - 1] as number) : 0));
      const pre = prefixSums(w);
      const bytesOf = (a: number, b: number): number =>
        NODE_HEADER_BYTES + (pre[b] as number) - (pre[a] as number) - (a > 0 ? (node.ksizes[a - 1] as number) : 0);
      const cuts = this.cuts(node.count, 4, bytesOf);
      assert(cuts.length > 0, 'btree: split found no cut');
      const bounds = [0, ...cuts, node.count];
      const { keys, ksizes, children } = node;
      for (let p = 1; p < bounds.length - 1; p++) {
        const a = bounds[p] as number;
        const b = bounds[p + 1] as number;
        pieces.push(new InternalNode<K, V>(node.level, keys.slice(a, b - 1), ksizes.slice(a, b - 1), children.slice(a, b), bytesOf(a, b)));
        seps.push(keys[a - 1] as K);
        sepSizes.push(ksizes[a - 1] as number);
      }
      const c0 = bounds[1] as number;
      node.keys = keys.slice(0, c0 - 1);
      node.ksizes = ksizes.slice(0, c0 - 1);
      node.children = children.slice(0, c0);
      node.bytes = bytesOf(0, c0);
    }
    for (let p = 1; p < pieces.length; p++) {
      const piece = pieces[p] as Node<K, V>;
      piece.dirty = true;
      piece.touched = this.tick;
    }
    this.loaded += pieces.length - 1;
    return { pieces, seps, sepSizes };
  }

  /** Merge the underfull child ci with a sibling, or even out bytes between them. Needs the sibling in memory. */
  private rebalance(parent: InternalNode<K, V>, ci: number): void {
    let li: number;
    if (ci > 0) li = ci - 1;
    else if (ci + 1 < parent.children.length) li = ci;
    else return; // only child: nothing to merge with
    const left = parent.children[li] as Child<K, V>;
    const right = parent.children[li + 1] as Child<K, V>;
    if (!isNode(left) || !isNode(right)) return; // sibling not in memory: stay underfull (still valid)
    assert(left.level === right.level, 'btree: siblings at different levels');
    if (left.kind === 'leaf' && right.kind === 'leaf') {
      const n = left.count + right.count;
      if (n <= NODE_COUNT_MAX && left.bytes + right.bytes - NODE_HEADER_BYTES <= this.nodeBytesMax) {
        this.markDirty(left);
        left.keys.push(...right.keys);
        left.vals.push(...right.vals);
        left.sizes.push(...right.sizes);
        left.bytes += right.bytes - NODE_HEADER_BYTES;
        this.removeChild(parent, li + 1);
        this.free(right);
        return;
      }
      const keys = [...left.keys, ...right.keys];
      const vals = [...left.vals, ...right.vals];
      const sizes = [...left.sizes, ...right.sizes];
      const pre = prefixSums(sizes);
      const c = this.bestCut(n, 2, left.count, (a, b) => NODE_HEADER_BYTES + (pre[b] as number) - (pre[a] as number));
      if (c === left.count) return;
      this.markDirty(left);
      this.markDirty(right);
      left.keys = keys.slice(0, c);
      left.vals = vals.slice(0, c);
      left.sizes = sizes.slice(0, c);
      left.bytes = NODE_HEADER_BYTES + (pre[c] as number);
      right.keys = keys.slice(c);
      right.vals = vals.slice(c);
      right.sizes = sizes.slice(c);
      right.bytes = NODE_HEADER_BYTES + (pre[n] as number) - (pre[c] as number);
      const sepSize = this.keySize(keys[c] as K);
      parent.bytes += sepSize - (parent.ksizes[li] as number);
      parent.keys[li] = keys[c] as K;
      parent.ksizes[li] = sepSize;
    } else if (left.kind === 'internal' && right.kind === 'internal') {
      const sepSize = parent.ksizes[li] as number;
      const n = left.count + right.count;
      if (n <= NODE_COUNT_MAX && left.bytes + right.bytes - NODE_HEADER_BYTES + sepSize <= this.nodeBytesMax) {
        this.markDirty(left);
        left.keys.push(parent.keys[li] as K, ...right.keys);
        left.ksizes.push(sepSize, ...right.ksizes);
        left.children.push(...right.children);
        left.bytes += right.bytes - NODE_HEADER_BYTES + sepSize;
        this.removeChild(parent, li + 1);
        this.free(right);
        return;
      }
      const keys = [...left.keys, parent.keys[li] as K, ...right.keys];
      const ksizes = [...left.ksizes, sepSize, ...right.ksizes];
      const children = [...left.children, ...right.children];
      const w = children.map((_, i) => NODE_LOC_BYTES + (i > 0 ? (ksizes[i - 1] as number) : 0));
      const pre = prefixSums(w);
      const bytesOf = (a: number, b: number): number =>
        NODE_HEADER_BYTES + (pre[b] as number) - (pre[a] as number) - (a > 0 ? (ksizes[a - 1] as number) : 0);
      const c = this.bestCut(n, 4, left.count, bytesOf);
      if (c === left.count) return;
      this.markDirty(left);
      this.markDirty(right);
      left.keys = keys.slice(0, c - 1);
      left.ksizes = ksizes.slice(0, c - 1);
      left.children = children.slice(0, c);
      left.bytes = bytesOf(0, c);
      right.keys = keys.slice(c);
      right.ksizes = ksizes.slice(c);
      right.children = children.slice(c);
      right.bytes = bytesOf(c, n);
      parent.bytes += (ksizes[c - 1] as number) - sepSize;
      parent.keys[li] = keys[c - 1] as K;
      parent.ksizes[li] = ksizes[c - 1] as number;
    } else {
      throw new AssertionError('btree: sibling kinds differ');
    }
  }

  /**
   * The cut of [0, n) into two non-empty pieces minimizing the larger piece, among cuts where both
   * pieces are legal (fit in nodeBytesMax, or are too small to split: fewer than `minSplit` entries).
   * Returns `current` if no cut is legal, so redistribution never creates an overfull node.
   */
  private bestCut(n: number, minSplit: number, current: number, bytesOf: (a: number, b: number) => number): number {
    const legal = (a: number, b: number): boolean =>
      b - a <= NODE_COUNT_MAX && (b - a < minSplit || bytesOf(a, b) <= this.nodeBytesMax);
    const side = n >= 4 ? 2 : 1;
    let best = current;
    let bestCost = Infinity;
    for (let c = side; c <= n - side; c++) {
      if (!legal(0, c) || !legal(c, n)) continue;
      const cost = Math.max(bytesOf(0, c), bytesOf(c, n));
      if (cost < bestCost) {
        bestCost = cost;
        best = c;
      }
    }
    return best;
  }

  private writeDirty(n: Node<K, V>): NodeLoc {
    if (!n.dirty) {
      assert(n.loc !== undefined, 'btree: clean node without a location');
      return n.loc;
    }
    if (n.kind === 'internal') {
      for (const c of n.children) if (isNode(c) && c.dirty) this.writeDirty(c);
    }
    const payload = encodeNode(n, this.kc, this.vc);
    assert(payload.length === n.bytes, `btree: ${n.kind} node encodes to ${payload.length} bytes, accounted ${n.bytes}`);
    n.loc = this.store.writeNode(payload, this.owner);
    n.dirty = false;
    return n.loc;
  }
}

/**
 * One writer shared by all trees, used only to measure encoded sizes synchronously (ByteWriter has
 * no reset): entries are appended and the length difference taken; replaced once past SCRATCH_BYTES.
 */
const SCRATCH_BYTES = 64 * 1024;
let scratch = new ByteWriter(2 * SCRATCH_BYTES);

function ensure(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new AssertionError(`btree check: ${msg}`);
}

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

function prefixSums(xs: readonly number[]): number[] {
  const pre = new Array<number>(xs.length + 1);
  pre[0] = 0;
  for (let i = 0; i < xs.length; i++) pre[i + 1] = (pre[i] as number) + (xs[i] as number);
  return pre;
}

function fmtLoc(l: NodeLoc): string {
  return `${l.seg}:${l.off}+${l.len}`;
}
