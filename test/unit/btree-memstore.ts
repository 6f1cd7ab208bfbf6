/**
 * Test double for the B+tree's NodeStore: payloads in a Map, never deleted (old roots stay
 * readable), with live-location accounting (written minus released) and optional async read delay.
 */
import assert from 'node:assert/strict';
import { CorruptionError } from '../../src/util/index.ts';
import { decodeNode, type KeyCodec, type NodeLoc, type NodeStore, type ValueCodec } from '../../src/btree/index.ts';

export const locKey = (l: NodeLoc): string => `${l.seg}:${l.off}:${l.len}`;

export class MemNodeStore implements NodeStore {
  readonly blobs = new Map<string, Uint8Array>();
  readonly live = new Set<string>();
  readonly owners = new Map<string, number>();
  writes = 0;
  reads = 0;
  releases = 0;
  /** Yield to the event loop this many macrotasks on each read (exercises interleaving). */
  readDelayTicks = 0;
  private seg = 1;
  private off = 0;

  async readNode(loc: NodeLoc): Promise<Uint8Array> {
    this.reads++;
    for (let i = 0; i < this.readDelayTicks; i++) await new Promise((r) => setImmediate(r));
    const b = this.blobs.get(locKey(loc));
    if (b === undefined) throw new CorruptionError(`no node at ${locKey(loc)}`);
    return b;
  }

  writeNode(payload: Uint8Array, owner: number): NodeLoc {
    this.writes++;
    const loc = { seg: this.seg, off: this.off, len: payload.length };
    this.off += payload.length + 16;
    if (this.off > 1 << 20) {
      this.seg++;
      this.off = 0;
    }
    const k = locKey(loc);
    assert.ok(!this.blobs.has(k), `loc ${k} written twice`);
    this.blobs.set(k, payload.slice());
    this.live.add(k);
    this.owners.set(k, owner);
    return loc;
  }

  releaseNode(loc: NodeLoc): void {
    this.releases++;
    const k = locKey(loc);
    assert.ok(this.live.has(k), `release of non-live loc ${k}`);
    this.live.delete(k);
  }

  /** Every location reachable from `root` by decoding internal nodes. */
  async reachable<K, V>(root: NodeLoc, kc: KeyCodec<K>, vc: ValueCodec<V>): Promise<Set<string>> {
    const out = new Set<string>();
    const walk = async (loc: NodeLoc): Promise<void> => {
      const k = locKey(loc);
      assert.ok(!out.has(k), `loc ${k} reachable twice`);
      out.add(k);
      const b = this.blobs.get(k);
      assert.ok(b !== undefined, `dangling loc ${k}`);
      const n = decodeNode(b, kc, vc);
      if (n.kind === 'internal') for (const c of n.children) await walk(c as NodeLoc);
    };
    await walk(root);
    return out;
  }

  /** After a flush: live locations are exactly those reachable from the root. */
  async assertLiveIsReachable<K, V>(root: NodeLoc, kc: KeyCodec<K>, vc: ValueCodec<V>): Promise<void> {
    const reach = await this.reachable(root, kc, vc);
    assert.deepEqual([...this.live].sort(), [...reach].sort(), 'live locations != reachable from root');
  }
}
