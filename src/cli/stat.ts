/**
 * `silt stat`: a volume's health at a glance, for people (a table) or scripts (--json): the
 * volume and store, the newest commit (checkpoint) sequence and age, inodes and files, bytes
 * live (referenced) and stored (objects in the store), segments, snapshots, and the process
 * owning the volume (its owner lease), or 'unknown' when the volume keeps no lease.
 *
 * It only reads: the volume is opened without writing a commit, so it is safe on a served volume
 * (it shows the newest durable commit, which may trail the server's memory by one flush interval).
 */
import { Volume, decodeInode, readOwnerSummary, validateVolumeName, type OwnerSummary } from '../headhunter/index.ts';
import { listAll } from '../objstore/index.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../util/index.ts';
import { CliError, connect, describe, formatAge, formatBytes, type StoreFlags } from './common.ts';

export interface VolumeStat {
  volume: string;
  store: string;
  volumeId: string;
  /** Sequence of the newest durable commit (the checkpoint). */
  commitSeq: number;
  commitTimeMs: number;
  commitAgeMs: number;
  inodes: number;
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of regular files' sizes. */
  fileBytes: number;
  /** Segments holding live records (in the segment table). */
  segments: number;
  /** Bytes of records the newest commit references. */
  liveBytes: number;
  /** Objects and bytes under the volume's prefix in the store (segments, commits, head, leases). */
  storedObjects: number;
  storedBytes: number;
  /** liveBytes / storedBytes (1 when nothing is stored). */
  utilization: number;
  snapshots: Array<{ name: string; commitSeq: number; createdMs: number }>;
  /** Who owns the volume: its owner lease, or 'unknown' when there is none to read. */
  owner: OwnerStat | 'unknown';
}

/** Who owns a volume (headhunter/lease.ts), as stat shows it. */
export type OwnerStat = OwnerSummary;

export async function collectStat(f: StoreFlags): Promise<VolumeStat> {
  try {
    validateVolumeName(f.volume);
  } catch (err) {
    throw new CliError((err as Error).message.replace(/^EINVAL: /, ''));
  }
  const store = await connect(f.store);
  try {
    const v = await Volume.open(store, f.volume, {});
    let liveBytes = 0;
    let segments = 0;
    let files = 0;
    let directories = 0;
    let symlinks = 0;
    let fileBytes = 0;
    let inodes = 0;
    await v.lock.run(async () => {
      for await (const [, s] of v.segments()) {
        segments++;
        liveBytes += s.liveBytes;
      }
      for await (const [ino, bytes] of v.inodeTable.entries()) {
        inodes++;
        const r = decodeInode(bytes, ino);
        const type = r.mode & S_IFMT;
        if (type === S_IFREG) {
          files++;
          fileBytes += r.size;
        } else if (type === S_IFDIR) directories++;
        else if (type === S_IFLNK) symlinks++;
      }
    });
    let storedObjects = 0;
    let storedBytes = 0;
    for await (const o of listAll(store, v.prefix)) {
      storedObjects++;
      storedBytes += o.size;
    }
    const owner = await readOwnerSummary(store, f.volume).catch(() => 'unknown' as const);
    return {
      volume: f.volume,
      store: store.capabilities.description,
      volumeId: v.volumeId,
      commitSeq: v.lastCommit.seq,
      commitTimeMs: v.lastCommit.timeMs,
      commitAgeMs: Date.now() - v.lastCommit.timeMs,
      inodes,
      files,
      directories,
      symlinks,
      fileBytes,
      segments,
      liveBytes,
      storedObjects,
      storedBytes,
      utilization: storedBytes > 0 ? liveBytes / storedBytes : 1,
      snapshots: v.snapshots.map((s) => ({ name: s.name, commitSeq: s.seq, createdMs: s.createdMs })),
      owner,
    };
  } catch (err) {
    throw describe(err, `stat ${f.volume}`, f.store);
  } finally {
    await store.close();
  }
}

export async function runStat(f: StoreFlags & { json: boolean }): Promise<void> {
  const s = await collectStat(f);
  if (f.json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return;
  }
  const snaps = s.snapshots.length === 0 ? 'none' : `${s.snapshots.length}: ${s.snapshots.map((x) => `${x.name} (commit ${x.commitSeq})`).join(', ')}`;
  const rows: Array<[string, string]> = [
    ['volume', `${s.volume} (${s.volumeId})`],
    ['store', s.store],
    ['commit', `${s.commitSeq}, ${formatAge(s.commitAgeMs)} ago (${new Date(s.commitTimeMs).toISOString()})`],
    ['inodes', `${s.inodes}: ${s.files} files, ${s.directories} directories, ${s.symlinks} symlinks`],
    ['files', `${formatBytes(s.fileBytes)} in ${s.files} files`],
    ['bytes', `${formatBytes(s.liveBytes)} live, ${formatBytes(s.storedBytes)} stored (${(s.utilization * 100).toFixed(1)}% live)`],
    ['segments', `${s.segments} holding live data, ${s.storedObjects} objects in the store`],
    ['snapshots', snaps],
    ['owner', s.owner === 'unknown' ? 'unknown (no owner lease: not served or mounted, or served by an older silt)' : `${s.owner.state}: ${s.owner.description}`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(10)} ${v}\n`);
}
