import { BTree, type KeyCodec, type ValueCodec } from '../btree/index.ts';
import { ByteReader, CorruptionError, S_IFDIR, S_IFMT, S_IFREG, assert } from '../util/index.ts';
import { JournalOp, type JournalEntry } from './journal.ts';
import { decodeInode, dirKey, dirValue, encodeInode, extentValue, offsetKey, type Extent, type InodeRecord } from './records.ts';
import type { Volume } from './volume.ts';

/** What replay tracks of one inode the journals touch. */
interface Touched {
  ino: number;
  /** Attributes from the newest INODE entry, or the checkpoint's record. */
  record: InodeRecord | undefined;
  /** The checkpoint's inode table holds a record for it. */
  inTable: boolean;
  /** Its tree root in the checkpoint (undefined once a TREE_DROP emptied it). */
  checkpointRoot: { seg: number; off: number; len: number } | undefined;
  tree: BTree<unknown, unknown> | null;
  treeKind: 'dir' | 'file' | null;
  unlinked: boolean;
  freed: boolean;
}

export interface ReplayReport {
  /** Delta commits whose journals were applied. */
  commits: number;
  entries: number;
  /** Inodes unlinked while still open when the last journal was written, freed now. */
  orphansFreed: number;
}

/**
 * Apply the journals of delta commits (oldest first) to the volume's trees as of their checkpoint,
 * then write the resulting state into the open commit segment as a checkpoint would (in memory:
 * nothing is PUT; the volume's next commit must be a checkpoint). Runs under the volume lock, on
 * a volume nobody else uses yet (recovery, fsck).
 *
 * Replay re-runs tree operations, not node writes: the same operations on the same checkpoint
 * supersede the same nodes, so node live bytes come out as they would have at a checkpoint of the
 * original run; data live bytes come from the LIVE entries.
 *
 * An inode unlinked but never freed when the journals end was open in a process that stopped:
 * nothing can use it any more, so its data and trees are released here (a checkpoint of the
 * original run would have kept them counted until the file was closed).
 */
export async function replayJournals(vol: Volume, journals: ReadonlyArray<{ seq: number; entries: readonly JournalEntry[] }>): Promise<ReplayReport> {
  const touched = new Map<number, Touched>();
  const report: ReplayReport = { commits: journals.length, entries: 0, orphansFreed: 0 };

  const state = async (ino: number): Promise<Touched> => {
    let t = touched.get(ino);
    if (t) return t;
    const raw = await vol.inodeTable.get(ino);
    const record = raw ? decodeInode(raw, ino) : undefined;
    t = { ino, record, inTable: raw !== undefined, checkpointRoot: record?.treeRoot, tree: null, treeKind: null, unlinked: false, freed: false };
    touched.set(ino, t);
    return t;
  };
  const treeOf = async (t: Touched, kind: 'dir' | 'file', where: string): Promise<BTree<unknown, unknown>> => {
    if (t.tree) {
      if (t.treeKind !== kind) throw new CorruptionError(`${where}: inode ${t.ino} is used as both a directory and a file`);
      return t.tree;
    }
    const root = t.checkpointRoot;
    // The checkpoint's record says what the inode is; one created since then takes its first use.
    const mode = t.record?.mode;
    if (mode !== undefined && (mode & S_IFMT) !== (kind === 'dir' ? S_IFDIR : S_IFREG)) {
      throw new CorruptionError(`${where}: a ${kind === 'dir' ? 'directory' : 'file'} operation on inode ${t.ino} of mode ${mode.toString(8)}`);
    }
    const kc = (kind === 'dir' ? dirKey : offsetKey) as KeyCodec<unknown>;
    const vc = (kind === 'dir' ? dirValue : extentValue) as ValueCodec<unknown>;
    t.tree = root ? BTree.open(vol.nodeStore, kc, vc, root, { owner: t.ino }) : BTree.create(vol.nodeStore, kc, vc, { owner: t.ino });
    t.treeKind = kind;
    return t.tree;
  };
  /** The trees a checkpoint record names, for inodes whose tree no entry has opened yet. */
  const ensureTree = async (t: Touched, where: string): Promise<BTree<unknown, unknown> | null> => {
    if (t.tree) return t.tree;
    const mode = t.record?.mode ?? 0;
    if (!t.checkpointRoot) return null;
    if ((mode & S_IFMT) === S_IFDIR) return treeOf(t, 'dir', where);
    if ((mode & S_IFMT) === S_IFREG) return treeOf(t, 'file', where);
    return null;
  };

  for (const j of journals) {
    vol.failpoints.hit('during-replay');
    const where = `journal of commit ${j.seq}`;
    for (const e of j.entries) {
      report.entries++;
      switch (e.op) {
        case JournalOp.INODE: {
          const t = await state(e.ino);
          t.record = decodeInode(e.record, e.ino);
          break;
        }
        case JournalOp.UNLINK:
          (await state(e.ino)).unlinked = true;
          break;
        case JournalOp.FREE: {
          const t = await state(e.ino);
          const tree = await ensureTree(t, where);
          if (tree) await tree.destroy();
          t.tree = null;
          t.treeKind = null;
          t.unlinked = t.freed = true;
          break;
        }
        case JournalOp.TREE_DROP: {
          const t = await state(e.ino);
          const tree = await ensureTree(t, where);
          if (tree) await tree.destroy();
          // As the file system leaves it: no tree until the next extent is set.
          t.tree = null;
          t.treeKind = null;
          t.checkpointRoot = undefined;
          break;
        }
        case JournalOp.DIR_PUT:
        case JournalOp.DIR_DEL:
        case JournalOp.EXT_PUT:
        case JournalOp.EXT_DEL: {
          const t = await state(e.ino);
          const dir = e.op === JournalOp.DIR_PUT || e.op === JournalOp.DIR_DEL;
          const tree = await treeOf(t, dir ? 'dir' : 'file', where);
          const r = new ByteReader(e.kv, `${where}: tree entry of inode ${e.ino}`);
          const key = (dir ? dirKey : offsetKey).decode(r);
          if (e.op === JournalOp.DIR_PUT || e.op === JournalOp.EXT_PUT) {
            const value = (dir ? dirValue : extentValue).decode(r);
            r.expectEnd();
            await tree.put(key, value);
          } else {
            r.expectEnd();
            await tree.delete(key);
          }
          break;
        }
        case JournalOp.LIVE:
          vol.addLive(e.seg, e.delta);
          break;
      }
    }
  }

  // Fold the touched inodes into the inode table, as a checkpoint does.
  for (const t of touched.values()) {
    if (t.unlinked && !t.freed) {
      // Open-and-unlinked when the process stopped: release its data and trees now.
      const tree = await ensureTree(t, 'replay');
      if (tree && t.treeKind === 'file') {
        for await (const [, e] of (tree as BTree<number, Extent>).entries()) vol.addLive(e.rec.seg, -e.n);
      }
      if (tree) await tree.destroy();
      t.freed = true;
      vol.inodeCount--;
      report.orphansFreed++;
    }
    if (t.freed) {
      if (t.inTable) await vol.inodeTable.delete(t.ino);
      continue;
    }
    if (!t.record) throw new CorruptionError(`journal: inode ${t.ino} has tree entries but no record`);
    t.record.treeRoot = t.tree ? t.tree.flush() : t.checkpointRoot;
    assert(t.record.nlink > 0, `replay: linked inode ${t.ino} with nlink 0`);
    await vol.inodeTable.put(t.ino, encodeInode(t.record));
  }
  return report;
}
