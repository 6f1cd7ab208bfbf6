/**
 * Jobs started from the admin pages: fsck and gc, at most one running per kind, each with live
 * progress and a final report. The runner keeps the last `historyMax` jobs in memory (a restart
 * forgets them; the volume itself is the record).
 *
 * fsck is the library `silt fsck` uses (checkVolume), run after a commit so it checks what the
 * server holds now. gc is what `silt gc` does (the cleaner, one more commit, then collectGarbage),
 * except that a served volume has readers in flight: an object found unreferenced is deleted only
 * after it stayed unreferenced for `graceMs` (two passes), never at first sight.
 */
import { checkVolume, type FsckReport } from '../fsck/index.ts';
import type { SiltFileSystem } from '../fs/index.ts';
import { collectGarbage, type GcReport } from '../headhunter/index.ts';
import { cleanSegments, type CleanReport } from '../inode/index.ts';
import { FsError, assert, nullLogger, type Logger } from '../util/index.ts';

export type JobKind = 'fsck' | 'gc';
export const JOB_KINDS: readonly JobKind[] = ['fsck', 'gc'];

export interface FsckJobOptions {
  /** Read and checksum every data record (default true). */
  verifyData: boolean;
}

export interface GcJobOptions {
  /** Only report what would be deleted. */
  dryRun: boolean;
  /** The cleaner rewrites segments less live than this fraction (0 skips the cleaner). */
  utilization: number;
}

export interface JobProgress {
  phase: string;
  /** One line for people. */
  text: string;
  /** 0..1 when known. */
  fraction?: number;
}

export interface FsckJobReport {
  clean: boolean;
  errors: number;
  warnings: number;
  stats: FsckReport['stats'];
  /** The first problems (all of them up to 200). */
  problems: FsckReport['problems'];
  problemsTotal: number;
}

export interface GcJobReport {
  dryRun: boolean;
  cleaner: CleanReport | null;
  /** Summed over the passes. */
  deleted: number;
  bytesFreed: number;
  /** The last pass's view of what remains. */
  last: GcReport;
  passes: number;
}

export interface Job {
  id: number;
  kind: JobKind;
  state: 'running' | 'succeeded' | 'failed';
  startedMs: number;
  endedMs: number | null;
  /** Who started it (the admin user). */
  startedBy: string;
  options: FsckJobOptions | GcJobOptions;
  progress: JobProgress;
  report: FsckJobReport | GcJobReport | null;
  error: string | null;
}

export interface JobRunnerOptions {
  fs: SiltFileSystem;
  volume: string;
  /** How long an object must stay unreferenced before gc deletes it (readers in flight). */
  gcGraceMs: number;
  historyMax: number;
  logger?: Logger;
  nowMs: () => number;
}

const PROBLEMS_SHOWN = 200;

export class JobRunner {
  private readonly jobs: Job[] = [];
  private nextId = 1;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly o: JobRunnerOptions) {
    assert(o.historyMax > 0 && o.gcGraceMs >= 0, 'jobs: bad limits');
    this.log = o.logger ?? nullLogger;
  }

  /** Newest first. */
  list(): readonly Job[] {
    return [...this.jobs].reverse();
  }

  get(id: number): Job {
    const j = this.jobs.find((x) => x.id === id);
    if (!j) throw new FsError('ENOENT', `no job ${id} (jobs are kept in memory, the last ${this.o.historyMax})`);
    return j;
  }

  running(kind: JobKind): Job | undefined {
    return this.jobs.find((j) => j.kind === kind && j.state === 'running');
  }

  /** Start a job; EBUSY while one of the same kind runs. Resolves at once with the running job. */
  start(kind: JobKind, options: FsckJobOptions | GcJobOptions, startedBy: string): Job {
    if (this.closed) throw new FsError('ECANCELED', 'the admin server is stopping');
    const busy = this.running(kind);
    if (busy) throw new FsError('EBUSY', `a ${kind} job is already running (job ${busy.id})`);
    const job: Job = {
      id: this.nextId++,
      kind,
      state: 'running',
      startedMs: this.o.nowMs(),
      endedMs: null,
      startedBy,
      options,
      progress: { phase: 'starting', text: 'starting' },
      report: null,
      error: null,
    };
    this.jobs.push(job);
    while (this.jobs.length > this.o.historyMax) {
      const i = this.jobs.findIndex((j) => j.state !== 'running');
      if (i < 0) break;
      this.jobs.splice(i, 1);
    }
    const work = kind === 'fsck' ? this.runFsck(job, options as FsckJobOptions) : this.runGc(job, options as GcJobOptions);
    this.log.info('admin job started', { id: job.id, kind, by: startedBy });
    work.then(
      (report) => {
        job.report = report;
        job.state = 'succeeded';
        job.progress = { phase: 'done', text: 'done', fraction: 1 };
      },
      (err: unknown) => {
        job.error = err instanceof Error ? err.message : String(err);
        job.state = 'failed';
        job.progress = { ...job.progress, text: `failed: ${job.error}` };
        this.log.warn('admin job failed', { id: job.id, kind, err: job.error });
      },
    ).finally(() => {
      job.endedMs = this.o.nowMs();
    });
    return job;
  }

  /** Refuse new jobs (running ones end on their own, or fail once the volume is closed). */
  close(): void {
    this.closed = true;
  }

  private async runFsck(job: Job, o: FsckJobOptions): Promise<FsckJobReport> {
    const vol = this.o.fs.volume;
    job.progress = { phase: 'commit', text: 'committing what the server holds, so the check covers it' };
    if (vol.readOnlySnapshot === undefined && !vol.fenced) await this.o.fs.sync();
    const r = await checkVolume(vol.store, this.o.volume, {
      verifyData: o.verifyData,
      onProgress: (p) => {
        const fraction = p.phase === 'commit' ? 0 : p.phase === 'store' ? 0.95 : p.inodesTotal ? (0.9 * p.inodesChecked) / p.inodesTotal : undefined;
        job.progress = {
          phase: p.phase,
          text: p.phase === 'inodes' ? `checked ${p.inodesChecked} of ${p.inodesTotal ?? '?'} inodes` : p.phase === 'store' ? 'listing the store' : 'reading the commit',
          ...(fraction !== undefined && { fraction }),
        };
      },
    });
    const errors = r.problems.filter((p) => p.severity === 'error').length;
    return {
      clean: r.clean,
      errors,
      warnings: r.problems.length - errors,
      stats: r.stats,
      problems: r.problems.slice(0, PROBLEMS_SHOWN),
      problemsTotal: r.problems.length,
    };
  }

  private async runGc(job: Job, o: GcJobOptions): Promise<GcJobReport> {
    const fs = this.o.fs;
    const vol = fs.volume;
    vol.checkWritable();
    let cleaner: CleanReport | null = null;
    if (!o.dryRun && o.utilization > 0) {
      job.progress = { phase: 'clean', text: 'looking for mostly-dead segments', fraction: 0 };
      cleaner = await cleanSegments(fs.inodes, {
        utilizationMax: o.utilization,
        segmentsMax: 1_000_000,
        onProgress: (p) => {
          job.progress = { phase: 'clean', text: `cleaned ${p.segmentsDone} of ${p.segmentsTotal} segments`, fraction: (0.4 * p.segmentsDone) / Math.max(1, p.segmentsTotal) };
        },
      });
      if (cleaner.recordsMoved > 0) {
        // One more commit, so the fallback commit no longer names the cleaned segments either.
        vol.markChanged();
        await vol.sync();
      }
    }
    const grace = o.dryRun ? 0 : this.o.gcGraceMs;
    const pass = async (n: number, base: number): Promise<GcReport> =>
      collectGarbage(vol, {
        dryRun: o.dryRun,
        graceMs: grace,
        onProgress: (p) => {
          job.progress = {
            phase: p.phase,
            text: `pass ${n}: ${p.phase === 'scan' ? `scanned ${p.done} objects` : `deleted ${p.done} of ${p.total ?? '?'} objects`}`,
            fraction: base + (p.phase === 'delete' && p.total ? (0.25 * p.done) / p.total : 0),
          };
        },
      });
    job.progress = { phase: 'scan', text: 'pass 1: listing the store', fraction: 0.4 };
    let last = await pass(1, 0.4);
    let deleted = last.deleted;
    let bytesFreed = last.bytesFreed;
    let passes = 1;
    if (last.waiting > 0 && grace > 0) {
      // The objects just found unreferenced are deleted once no read that began before can need them.
      const until = this.o.nowMs() + grace + 50; // gc stamps with Date.now(): a margin
      while (this.o.nowMs() < until) {
        if (this.closed) throw new FsError('ECANCELED', 'the admin server is stopping');
        job.progress = {
          phase: 'grace',
          text: `${last.waiting} objects found unreferenced; deleting them in ${Math.ceil((until - this.o.nowMs()) / 1000)} s (reads in flight)`,
          fraction: 0.7,
        };
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(1, until - this.o.nowMs()))));
      }
      job.progress = { phase: 'scan', text: 'pass 2: listing the store', fraction: 0.75 };
      last = await pass(2, 0.75);
      deleted += last.deleted;
      bytesFreed += last.bytesFreed;
      passes = 2;
    }
    return { dryRun: o.dryRun, cleaner, deleted, bytesFreed, last, passes };
  }
}
