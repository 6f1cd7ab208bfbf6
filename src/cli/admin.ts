import { checkVolume, type FsckReport } from '../fsck/index.ts';
import { Volume, collectGarbage, readCommit, segmentsReferencedBy, validateVolumeName } from '../headhunter/index.ts';
import { mkfs, openFileSystem, type SiltFileSystem } from '../fs/index.ts';
import { cleanSegments, type CleanReport } from '../inode/index.ts';
import { listAll } from '../objstore/index.ts';
import { segmentKey } from '../segment/index.ts';
import { CliError, Progress, connect, describe, formatAge, formatBytes, type StoreFlags } from './common.ts';

/** A progress bar: `[#####.....] 50/100 (50%)`, or just the count when the total is unknown. */
export function progressBar(done: number, total: number | undefined, width = 24): string {
  if (total === undefined || total <= 0) return String(done);
  const frac = Math.min(1, Math.max(0, done / total));
  const n = Math.round(frac * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${done}/${total} (${Math.round(frac * 100)}%)`;
}

export async function runMkfs(f: StoreFlags): Promise<void> {
  validate(f.volume);
  const t0 = Date.now();
  const progress = new Progress();
  progress.update(`mkfs: connecting to ${f.store}...`);
  const store = await connect(f.store, true);
  try {
    // On a remote store each step is a round trip or more: say which one we are waiting for.
    progress.update(`mkfs: creating volume ${f.volume} in ${store.capabilities.description} (superblock, root directory, first commit)...`);
    const v = await mkfs(store, f.volume);
    progress.update(`mkfs: checking what was written...`);
    let objects = 0;
    let bytes = 0;
    for await (const o of listAll(store, v.prefix)) {
      objects++;
      bytes += o.size;
    }
    progress.done();
    process.stdout.write(
      `Created volume ${f.volume} in ${store.capabilities.description} (commit ${v.lastCommit.seq}; ` +
        `${objects} objects, ${formatBytes(bytes)}; ${((Date.now() - t0) / 1000).toFixed(1)} s).\n` +
        `Mount it with: npx silt mount --store ${f.store} --volume ${f.volume} MOUNTPOINT\n`,
    );
  } catch (err) {
    throw describe(err, `mkfs ${f.volume}`);
  } finally {
    progress.done();
    await store.close();
  }
}

/** fsck: exit 0 when clean, 1 when problems were found, 2 when it could not run. */
export async function runFsck(f: StoreFlags & { json: boolean; data: boolean }): Promise<number> {
  validate(f.volume);
  const store = await connect(f.store);
  const progress = new Progress();
  let report: FsckReport;
  try {
    report = await checkVolume(store, f.volume, {
      verifyData: f.data,
      onProgress: (p) =>
        progress.update(
          p.phase === 'inodes'
            ? `fsck: inodes ${progressBar(p.inodesChecked, p.inodesTotal)}`
            : p.phase === 'commit'
              ? 'fsck: reading the newest commit...'
              : p.phase === 'store'
                ? 'fsck: listing the store...'
                : 'fsck: checking snapshots...',
        ),
    });
  } catch (err) {
    throw describe(err, `fsck ${f.volume}`);
  } finally {
    progress.done();
    await store.close();
  }
  if (f.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const s = report.stats;
    const errors = report.problems.filter((p) => p.severity === 'error');
    const warnings = report.problems.filter((p) => p.severity === 'warning');
    for (const p of report.problems) process.stdout.write(`${p.severity.toUpperCase()} ${p.where}: ${p.message}\n`);
    process.stdout.write(
      `fsck ${f.volume}: commit ${s.commitSeq}; ${s.inodes} inodes (${s.files} files, ${s.directories} directories, ` +
        `${s.symlinks} symlinks); ${formatBytes(s.fileBytes)} in files; ${s.treeNodes} tree nodes and ` +
        `${s.dataRecordsVerified} data records verified; ${s.snapshots} snapshots; ${s.storeObjects} objects ` +
        `(${formatBytes(s.storeBytes)}) in the store; ${errors.length} errors, ${warnings.length} warnings: ` +
        `${report.clean ? 'clean' : 'PROBLEMS FOUND'}\n`,
    );
  }
  return report.clean ? 0 : 1;
}

function validate(volume: string): void {
  try {
    validateVolumeName(volume);
  } catch (err) {
    throw new CliError((err as Error).message.replace(/^EINVAL: /, ''));
  }
}

/**
 * gc: the cleaner rewrites the live records of mostly-dead segments, then every segment object the
 * newest commits do not reference is deleted. A progress line, then a summary.
 */
export async function runGc(
  f: StoreFlags & { dryRun: boolean; force: boolean; json: boolean; compact: boolean; utilization: number },
): Promise<void> {
  validate(f.volume);
  const store = await connect(f.store);
  const progress = new Progress();
  let fs: SiltFileSystem | undefined;
  try {
    fs = await openFileSystem({ store, volume: f.volume, flushIntervalMs: 0, gcIntervalMs: 0 });
    const v = fs.volume;
    const ageMs = Date.now() - v.lastCommit.timeMs;
    if (ageMs < 30_000 && !f.force && !f.dryRun) {
      throw new CliError(
        `volume ${f.volume} committed ${formatAge(ageMs)} ago: it may be in use by a server, whose own background gc ` +
          `is the safe way to collect it. Run again when it is idle, or pass --force.`,
      );
    }
    let clean: CleanReport | undefined;
    if (f.compact && !f.dryRun) {
      clean = await cleanSegments(fs.inodes, {
        utilizationMax: f.utilization,
        segmentsMax: 1_000_000,
        onProgress: (p) => progress.update(`gc: cleaning segments ${progressBar(p.segmentsDone, p.segmentsTotal)}`),
      });
      if (clean.recordsMoved > 0) {
        // One more commit, so the fallback commit no longer names the cleaned segments either.
        v.markChanged();
        await v.sync();
      }
    }
    const r = await collectGarbage(v, {
      dryRun: f.dryRun,
      graceMs: 0,
      onProgress: (p) =>
        progress.update(p.phase === 'scan' ? `gc: scanned ${p.done} objects...` : `gc: deleting ${progressBar(p.done, p.total)}`),
    });
    progress.done();
    if (f.json) {
      process.stdout.write(JSON.stringify({ ...r, cleaner: clean ?? null }, null, 2) + '\n');
      return;
    }
    const verb = f.dryRun ? 'would delete' : 'deleted';
    const count = f.dryRun ? r.candidates : r.deleted;
    const cleaned = clean
      ? `cleaned ${clean.segmentsCleaned} of ${clean.segmentsExamined} segments (moved ${clean.recordsMoved} records, ${formatBytes(clean.bytesMoved)}); `
      : '';
    process.stdout.write(
      `gc ${f.volume}: ${cleaned}scanned ${r.objectsScanned} objects (${formatBytes(r.bytesScanned)}); ${verb} ${count} ` +
        `(${formatBytes(f.dryRun ? r.candidateBytes : r.bytesFreed)}), ${r.orphanDataSegments} of them unreferenced data segments ` +
        `and ${r.strayObjects} stray objects${r.waiting > 0 ? `, ${r.waiting} left for a later pass` : ''}; ` +
        `${formatBytes(r.liveBytes)} live, ${(r.utilization * 100).toFixed(1)}% of what remains\n`,
    );
  } catch (err) {
    throw describe(err, `gc ${f.volume}`);
  } finally {
    progress.done();
    await fs?.close();
    await store.close();
  }
}

/**
 * snapshot create|list|delete. Creating or deleting commits to the volume, so (as with gc) it
 * refuses a volume that committed in the last 30 s, which may be served by another process:
 * a second writer would be fenced or fence the server. Served volumes use RpcSnapShotCreate.
 */
export async function runSnapshot(
  action: string,
  name: string | undefined,
  f: StoreFlags & { force: boolean; json: boolean },
): Promise<void> {
  validate(f.volume);
  if (!['create', 'list', 'delete'].includes(action)) throw new CliError(`unknown snapshot action ${action}: use create, list or delete`);
  if (action !== 'list' && !name) throw new CliError(`snapshot ${action} needs a NAME`);
  const store = await connect(f.store);
  try {
    const v = await Volume.open(store, f.volume, {});
    if (action === 'list') {
      if (f.json) process.stdout.write(JSON.stringify(v.snapshots, null, 2) + '\n');
      else if (v.snapshots.length === 0) process.stdout.write(`volume ${f.volume} has no snapshots\n`);
      else for (const s of v.snapshots) process.stdout.write(`${s.name}\tcommit ${s.seq}\t${new Date(s.createdMs).toISOString()}\n`);
      return;
    }
    const ageMs = Date.now() - v.lastCommit.timeMs;
    if (ageMs < 30_000 && !f.force) {
      throw new CliError(
        `volume ${f.volume} committed ${formatAge(ageMs)} ago: it may be served by another process; ` +
          `use the server (RpcSnapShotCreate), wait until it is idle, or pass --force.`,
      );
    }
    if (action === 'create') {
      const s = await v.createSnapshot(name!);
      process.stdout.write(`Created snapshot ${s.name} of volume ${f.volume} (commit ${s.seq}).\n` +
        `Mount it read-only with: npx silt mount --store ${f.store} --volume ${f.volume} --snapshot ${s.name} MOUNTPOINT\n`);
    } else {
      const progress = new Progress();
      try {
        progress.update(`snapshot delete: finding what only ${name} references...`);
        const only = await heldOnlyBy(v, name!, (done, total) => progress.update(`snapshot delete: sizing segments ${progressBar(done, total)}`));
        progress.update(`snapshot delete: committing...`);
        await v.deleteSnapshot(name!);
        progress.done();
        process.stdout.write(
          `Deleted snapshot ${name} of volume ${f.volume}: ${only.segments} segments (${formatBytes(only.bytes)}) ` +
            `were kept only for it; silt gc (or the server's background gc) reclaims them.\n`,
        );
      } finally {
        progress.done();
      }
    }
    await v.close();
  } catch (err) {
    throw describe(err, `snapshot ${action}`);
  } finally {
    await store.close();
  }
}

/**
 * The segments a snapshot alone keeps alive (neither the newest commit nor another snapshot
 * references them) and their stored size: what deleting it will let gc reclaim.
 */
async function heldOnlyBy(v: Volume, name: string, onProgress: (done: number, total: number) => void): Promise<{ segments: number; bytes: number }> {
  const snap = v.snapshots.find((s) => s.name === name);
  if (!snap) return { segments: 0, bytes: 0 }; // deleteSnapshot says ENOENT
  const mine = new Set((await segmentsReferencedBy(v, await readCommit(v.store, v.prefix, snap.seq))).keys());
  mine.add(snap.seq * 2); // its commit segment
  // After the delete commits, gc keeps that commit and the current one (same trees) and the
  // other snapshots: what the snapshot references beyond them is what gc will reclaim.
  const others = [v.lastCommit.seq, ...v.snapshots.filter((s) => s.name !== name).map((s) => s.seq)];
  for (const seq of others) {
    if (seq < 1) continue;
    mine.delete(seq * 2);
    const c = seq === v.lastCommit.seq ? v.lastCommit : await readCommit(v.store, v.prefix, seq).catch(() => undefined);
    if (c) for (const seg of (await segmentsReferencedBy(v, c)).keys()) mine.delete(seg);
  }
  let bytes = 0;
  let done = 0;
  for (const seg of mine) {
    bytes += (await v.store.head(segmentKey(v.prefix, seg)))?.size ?? 0;
    if (++done % 20 === 0) onProgress(done, mine.size);
  }
  return { segments: mine.size, bytes };
}
