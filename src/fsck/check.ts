import { decodeNode, u64Key, bytesValue, type KeyCodec, type NodeLoc, type ValueCodec } from '../btree/index.ts';
import {
  Volume,
  decodeInode,
  dirKey,
  dirValue,
  extentValue,
  nameHash,
  offsetKey,
  readCommit,
  segStatsValue,
  segmentsReferencedBy,
  type Extent,
  type InodeRecord,
} from '../headhunter/index.ts';
import { listAll, type ObjectStore } from '../objstore/index.ts';
import { RecordType, isCommitSegment, segmentKey } from '../segment/index.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../util/index.ts';

export interface FsckProblem {
  /** error: the volume is damaged; warning: wasted space or a recoverable oddity. */
  severity: 'error' | 'warning';
  where: string;
  message: string;
}

export interface FsckStats {
  commitSeq: number;
  commitTimeMs: number;
  inodes: number;
  files: number;
  directories: number;
  symlinks: number;
  others: number;
  fileBytes: number;
  extents: number;
  treeNodes: number;
  dataRecordsVerified: number;
  liveBytes: number;
  segmentsReferenced: number;
  storeObjects: number;
  storeBytes: number;
  orphanSegments: number;
  snapshots: number;
  /** Delta commits after the newest checkpoint, whose journals were replayed to check the volume. */
  replayedCommits: number;
}

export interface FsckReport {
  volume: string;
  problems: FsckProblem[];
  stats: FsckStats;
  /** True when no problem has severity 'error'. */
  clean: boolean;
}

export interface FsckProgress {
  phase: 'commit' | 'inodes' | 'store' | 'snapshots';
  inodesChecked: number;
  inodesTotal?: number;
}

export interface FsckOptions {
  /** Read and checksum every data record (default true). */
  verifyData?: boolean;
  onProgress?: (p: FsckProgress) => void;
}

/**
 * Check a volume as of its newest valid commit: every tree node and (by default) every data record
 * checksum, every reference, link counts, the directory tree, extent maps, and live-byte
 * accounting against the segment table. Read-only. Throws only when it cannot run at all (no
 * volume, store unreachable); everything else is a problem in the report.
 */
export async function checkVolume(store: ObjectStore, name: string, opts: FsckOptions = {}): Promise<FsckReport> {
  const verifyData = opts.verifyData ?? true;
  const problems: FsckProblem[] = [];
  const err = (where: string, message: string): void => void problems.push({ severity: 'error', where, message });
  const warn = (where: string, message: string): void => void problems.push({ severity: 'warning', where, message });
  opts.onProgress?.({ phase: 'commit', inodesChecked: 0 });
  const vol = await Volume.open(store, name, { cacheBytesMax: 16 * 1024 * 1024 });
  for (const w of vol.openWarnings) err('commit', w);
  const stats: FsckStats = {
    commitSeq: vol.lastCommit.seq,
    commitTimeMs: vol.lastCommit.timeMs,
    inodes: 0,
    files: 0,
    directories: 0,
    symlinks: 0,
    others: 0,
    fileBytes: 0,
    extents: 0,
    treeNodes: 0,
    dataRecordsVerified: 0,
    liveBytes: 0,
    segmentsReferenced: 0,
    storeObjects: 0,
    storeBytes: 0,
    orphanSegments: 0,
    snapshots: vol.lastCommit.snapshots.length,
    replayedCommits: vol.replayed?.commits ?? 0,
  };
  const live = new Map<number, number>();
  const addLive = (seg: number, n: number): void => void live.set(seg, (live.get(seg) ?? 0) + n);

  /** Visit every node of a tree from its stored root; false if a node is unreadable. */
  async function walk<K, V>(
    root: NodeLoc,
    kc: KeyCodec<K>,
    vc: ValueCodec<V>,
    where: string,
    accounted: boolean,
    onEntry: (k: K, v: V) => void | Promise<void>,
  ): Promise<boolean> {
    const stack: Array<{ loc: NodeLoc; level: number | undefined }> = [{ loc: root, level: undefined }];
    let prev: K | undefined;
    // Depth-first, children left to right, so leaf entries arrive in key order.
    while (stack.length) {
      const { loc, level } = stack.pop()!;
      let node;
      try {
        node = decodeNode(await vol.nodeStore.readNode(loc), kc, vc);
      } catch (e) {
        err(where, `tree node ${segmentKey(vol.prefix, loc.seg)}@${loc.off} unreadable: ${(e as Error).message}`);
        return false;
      }
      stats.treeNodes++;
      if (accounted) addLive(loc.seg, loc.len);
      if (level !== undefined && node.level !== level) err(where, `node at level ${node.level}, expected ${level}`);
      if (node.kind === 'internal') {
        for (let i = node.children.length - 1; i >= 0; i--) {
          stack.push({ loc: node.children[i] as NodeLoc, level: node.level - 1 });
        }
      } else {
        for (let i = 0; i < node.keys.length; i++) {
          const k = node.keys[i] as K;
          if (prev !== undefined && kc.compare(prev, k) >= 0) err(where, 'keys out of order across leaves');
          prev = k;
          await onEntry(k, node.vals[i] as V);
        }
      }
    }
    return true;
  }

  // 1. The inode table.
  const inodes = new Map<number, InodeRecord>();
  // A delta commit's state is replayed at open and written out in memory: walk that.
  const roots = vol.treeRoots;
  await walk(roots.inodeTableRoot, u64Key, bytesValue, 'inode table', true, (ino, raw) => {
    try {
      inodes.set(ino, decodeInode(raw, ino));
    } catch (e) {
      err(`inode ${ino}`, (e as Error).message);
    }
  });
  stats.inodes = inodes.size;
  if (!inodes.has(1)) err('inode 1', 'the root directory is missing');
  if (vol.inodeCount < inodes.size) {
    err('commit', `commit counts ${vol.inodeCount} inodes but the table holds ${inodes.size}`);
  } else if (vol.inodeCount > inodes.size) {
    warn('commit', `commit counts ${vol.inodeCount} inodes, the table holds ${inodes.size} (unlinked files open at commit time)`);
  }

  // 2. Every inode's own tree.
  const refs = new Map<number, number>();
  const parentOf = new Map<number, number>();
  const children = new Map<number, number[]>();
  let checked = 0;
  for (const [ino, rec] of inodes) {
    const where = `inode ${ino}`;
    const type = rec.mode & S_IFMT;
    if (type === S_IFDIR) {
      stats.directories++;
      let entries = 0;
      let subdirs = 0;
      const kids: number[] = [];
      if (rec.treeRoot) {
        await walk(rec.treeRoot, dirKey, dirValue, where, true, (k, v) => {
          entries++;
          const name = Buffer.from(k.name).toString('utf8');
          if (k.name.length === 0 || k.name.length > 255 || k.name.includes(0x2f) || k.name.includes(0)) {
            err(where, `bad entry name ${JSON.stringify(name)}`);
          }
          if (nameHash(k.name) !== k.h) err(where, `entry ${JSON.stringify(name)} filed under the wrong hash`);
          const child = inodes.get(v.ino);
          if (!child) {
            err(where, `entry ${JSON.stringify(name)} names missing inode ${v.ino}`);
            return;
          }
          if ((child.mode & S_IFMT) !== v.type) err(where, `entry ${JSON.stringify(name)} has type ${v.type}, inode ${v.ino} is ${child.mode & S_IFMT}`);
          refs.set(v.ino, (refs.get(v.ino) ?? 0) + 1);
          if (v.type === S_IFDIR) {
            subdirs++;
            kids.push(v.ino);
            if (parentOf.has(v.ino)) err(`inode ${v.ino}`, 'directory has more than one name');
            parentOf.set(v.ino, ino);
          } else kids.push(v.ino);
        });
      }
      children.set(ino, kids);
      if (rec.size !== entries) err(where, `directory size ${rec.size} but ${entries} entries`);
      if (rec.nlink !== 2 + subdirs) err(where, `directory nlink ${rec.nlink}, expected ${2 + subdirs}`);
    } else if (type === S_IFREG) {
      stats.files++;
      stats.fileBytes += rec.size;
      let end = 0;
      let allocated = 0;
      if (rec.treeRoot) {
        const exts: Array<[number, Extent]> = [];
        await walk(rec.treeRoot, offsetKey, extentValue, where, true, (off, e) => void exts.push([off, e]));
        for (const [off, e] of exts) {
          stats.extents++;
          if (off < end) err(where, `extent at ${off} overlaps the previous one (ends ${end})`);
          if (e.n <= 0) err(where, `empty extent at ${off}`);
          end = off + e.n;
          allocated += e.n;
          addLive(e.rec.seg, e.n);
          if (verifyData) {
            try {
              const payload = await vol.reader.read(e.rec, RecordType.DATA);
              stats.dataRecordsVerified++;
              if (e.skip + e.n > payload.length) err(where, `extent at ${off} points past its data record`);
            } catch (x) {
              err(where, `data at ${off} (${segmentKey(vol.prefix, e.rec.seg)}@${e.rec.off}) unreadable: ${(x as Error).message}`);
            }
          }
        }
      }
      if (end > rec.size) err(where, `extents reach ${end}, beyond the file size ${rec.size}`);
      if (allocated !== rec.allocated) err(where, `allocated ${rec.allocated} but extents hold ${allocated}`);
    } else {
      if (type === S_IFLNK) {
        stats.symlinks++;
        if (rec.symlinkTarget === undefined) err(where, 'symlink without a target');
      } else stats.others++;
      if (rec.treeRoot) err(where, 'non-file, non-directory inode with a tree');
    }
    checked++;
    if (checked % 1000 === 0) opts.onProgress?.({ phase: 'inodes', inodesChecked: checked, inodesTotal: inodes.size });
  }

  // 3. Link counts, parents, reachability.
  for (const [ino, rec] of inodes) {
    const where = `inode ${ino}`;
    const n = refs.get(ino) ?? 0;
    if ((rec.mode & S_IFMT) === S_IFDIR) {
      const expectParent = ino === 1 ? 1 : parentOf.get(ino);
      if (ino !== 1 && n !== 1) err(where, `directory has ${n} names`);
      if (ino === 1 && n !== 0) err(where, `the root directory is named by ${n} directory entries (a cycle)`);
      if (expectParent !== undefined && rec.parent !== expectParent) err(where, `".." says ${rec.parent}, but it lives in ${expectParent}`);
    } else if (rec.nlink !== n) {
      err(where, `nlink ${rec.nlink} but ${n} directory entries name it`);
    }
  }
  const seen = new Set<number>([1]);
  const queue = [1];
  while (queue.length) {
    const d = queue.pop()!;
    for (const c of children.get(d) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      if (children.has(c)) queue.push(c);
    }
  }
  for (const ino of inodes.keys()) if (!seen.has(ino)) err(`inode ${ino}`, 'not reachable from the root directory');

  // 4. Live-byte accounting against the segment table. The count is exact, so a difference either
  // way is damage, except that files unlinked but still open when the commit was made keep their
  // bytes counted without being in the inode table (the commit then counts more inodes than the
  // table holds): with those, an over-count is only a warning.
  const unlinkedOpen = vol.inodeCount > inodes.size;
  const overCount = (where: string, message: string): void =>
    unlinkedOpen ? warn(where, `${message} (unlinked files were open at commit time)`) : err(where, `${message}: the live-byte count is off`);
  const stored = new Map<number, number>();
  await walk(roots.segmentTableRoot, u64Key, segStatsValue, 'segment table', false, (seg, s) => void stored.set(seg, s.liveBytes));
  for (const [seg, n] of live) {
    stats.liveBytes += n;
    const s = stored.get(seg) ?? 0;
    if (s < n) err(`segment ${segmentKey(vol.prefix, seg)}`, `segment table says ${s} live bytes, ${n} are referenced`);
    else if (s > n) overCount(`segment ${segmentKey(vol.prefix, seg)}`, `segment table says ${s} live bytes, only ${n} are referenced`);
  }
  for (const [seg, s] of stored) {
    if (!live.has(seg)) overCount(`segment ${segmentKey(vol.prefix, seg)}`, `segment table says ${s} live bytes, nothing references it`);
  }
  stats.segmentsReferenced = live.size;

  // 5. The objects in the store.
  opts.onProgress?.({ phase: 'store', inodesChecked: checked, inodesTotal: inodes.size });
  const present = new Set<string>();
  for await (const o of listAll(store, vol.prefix)) {
    present.add(o.key);
    stats.storeObjects++;
    stats.storeBytes += o.size;
  }
  for (const seg of live.keys()) {
    const key = segmentKey(vol.prefix, seg);
    if (vol.writer.isInMemory(seg)) continue; // replayed state written out in memory at open
    if (!present.has(key) && !(await store.head(key))) {
      err(key, 'referenced segment is missing from the store');
      continue;
    }
    // The trailer and summary of every live segment: the cleaner finds records through them.
    if (verifyData) {
      try {
        await vol.reader.readSummary(seg);
      } catch (e) {
        err(key, `trailer or summary unreadable: ${(e as Error).message}`);
      }
    }
  }
  for (const key of present) {
    if (!key.startsWith(`${vol.prefix}seg/`)) continue;
    const n = parseInt(key.slice(vol.prefix.length + 4), 16);
    const id = n * 2 + 1;
    if (!isCommitSegment(id) && !live.has(id)) stats.orphanSegments++;
  }
  if (stats.orphanSegments > 0) {
    warn('store', `${stats.orphanSegments} data segment(s) no commit references (left by a crash or overwritten data; gc removes them)`);
  }

  // 6. Snapshots: each retained commit verifies, and every segment it references is in the store
  // (gc must never have deleted what a snapshot still names).
  opts.onProgress?.({ phase: 'snapshots', inodesChecked: checked, inodesTotal: inodes.size });
  for (const snap of vol.lastCommit.snapshots) {
    const where = `snapshot ${snap.name}`;
    let c;
    try {
      c = await readCommit(store, vol.prefix, snap.seq);
    } catch (e) {
      err(where, `its commit ${snap.seq} (${segmentKey(vol.prefix, snap.seq * 2)}) is unreadable: ${(e as Error).message}`);
      continue;
    }
    const r = snap.inodeTableRoot;
    if (c.inodeTableRoot.seg !== r.seg || c.inodeTableRoot.off !== r.off || c.inodeTableRoot.len !== r.len) {
      err(where, `the inode table root it records differs from that of commit ${snap.seq}`);
    }
    let segs: Map<number, number>;
    try {
      segs = await segmentsReferencedBy(vol, c);
    } catch (e) {
      err(where, `its segment table is unreadable: ${(e as Error).message}`);
      continue;
    }
    for (const seg of segs.keys()) {
      const key = segmentKey(vol.prefix, seg);
      if (!present.has(key)) err(where, `references ${key}, which is missing from the store`);
    }
  }
  return { volume: name, problems, stats, clean: !problems.some((p) => p.severity === 'error') };
}

