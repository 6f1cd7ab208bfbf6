/**
 * `silt bench DIR`: a quick self-check of any mounted directory (a Silt mount, another FUSE file
 * system, a local disk), in the spirit of `juicefs bench`: one big file written (1 MiB writes, then
 * fsync) and read back, many small files written (each fsync'd, so the figure is what an
 * application that wants its data safe sees) and read back, and a stat of each. A progress bar
 * on stderr while it runs (when stderr is a terminal; otherwise one line per phase) and a summary
 * table on stdout, or JSON with --json.
 *
 * Everything happens inside a fresh folder `DIR/__silt-bench-<pid>`, removed at the end. The work
 * is spread over `threads` concurrent workers (each its own big file and share of small files).
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { CliError } from './common.ts';

export interface BenchOptions {
  /** The directory to test (must exist and be writable). */
  dir: string;
  /** Size of each big file, MiB (0 skips the big-file phases). */
  bigFileMiB: number;
  /** Size of each small file, KiB. */
  smallFileKiB: number;
  /** Small files per thread (0 skips the small-file phases). */
  smallFiles: number;
  /** Concurrent workers. */
  threads: number;
  json: boolean;
  /** Where the progress bar goes (default process.stderr). */
  progress?: NodeJS.WriteStream;
  /** Where the summary goes (default process.stdout). */
  out?: NodeJS.WritableStream;
}

export interface BenchPhase {
  name: string;
  /** Throughput: MiB/s for the big-file phases, files/s or stats/s for the others. */
  value: number;
  unit: 'MiB/s' | 'files/s' | 'stats/s';
  /** Per-item cost: ms per file (or per MiB for big files), as one thread sees it. */
  costMs: number;
  costUnit: 'ms/MiB' | 'ms/file';
  seconds: number;
}

export interface BenchReport {
  dir: string;
  threads: number;
  bigFileMiB: number;
  smallFileKiB: number;
  smallFiles: number;
  phases: BenchPhase[];
}

const MiB = 1024 * 1024;

/** A one-line progress bar: a terminal gets it redrawn in place, a pipe gets the final line only. */
class Progress {
  private last = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly name: string,
    private readonly total: number,
  ) {}

  private line(done: number): string {
    const width = 30;
    const filled = this.total === 0 ? width : Math.round((done / this.total) * width);
    const pct = this.total === 0 ? 100 : Math.floor((done / this.total) * 100);
    return `${this.name.padEnd(18)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(6)}/${this.total} ${String(pct).padStart(3)}%`;
  }

  tick(done: number): void {
    if (!this.stream.isTTY) return;
    const t = Date.now();
    if (t - this.last < 100 && done < this.total) return;
    this.last = t;
    this.stream.write(`\r${this.line(done)}`);
  }

  finish(seconds: number): void {
    const tail = ` ${seconds.toFixed(2)} s`;
    this.stream.write(this.stream.isTTY ? `\r${this.line(this.total)}${tail}\n` : `${this.line(this.total)}${tail}\n`);
  }
}

/** Run `count` units split over `threads` workers; `unit(thread, i)` does one. */
async function phase(opts: BenchOptions, name: string, perThread: number, unit: (thread: number, i: number) => Promise<void>): Promise<number> {
  const total = perThread * opts.threads;
  const bar = new Progress(opts.progress ?? process.stderr, name, total);
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: opts.threads }, async (_, t) => {
      for (let i = 0; i < perThread; i++) {
        await unit(t, i);
        bar.tick(++done);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  bar.finish(seconds);
  return seconds;
}

function checkOptions(o: BenchOptions): void {
  const whole = (n: number, what: string, min: number) => {
    if (!Number.isInteger(n) || n < min) throw new CliError(`${what} must be a whole number >= ${min}, not ${n}`);
  };
  whole(o.bigFileMiB, '--big-file-size', 0);
  whole(o.smallFileKiB, '--small-file-size', 1);
  whole(o.smallFiles, '--small-files', 0);
  whole(o.threads, '--threads', 1);
  if (o.threads > 64) throw new CliError('--threads must be at most 64');
}

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  checkOptions(opts);
  const st = await fsp.stat(opts.dir).catch((e: NodeJS.ErrnoException) => {
    throw new CliError(`cannot use ${opts.dir}: ${e.code ?? e.message}`);
  });
  if (!st.isDirectory()) throw new CliError(`${opts.dir} is not a directory`);
  const work = join(opts.dir, `__silt-bench-${process.pid}`);
  await fsp.mkdir(work).catch((e: NodeJS.ErrnoException) => {
    throw new CliError(`cannot create ${work}: ${e.code ?? e.message}`);
  });
  const phases: BenchPhase[] = [];
  const T = opts.threads;
  try {
    if (opts.bigFileMiB > 0) {
      const chunk = Buffer.alloc(MiB);
      for (let i = 0; i < MiB; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
      const handles: fsp.FileHandle[] = [];
      let s = await phase(opts, 'Write big file', opts.bigFileMiB, async (t, i) => {
        if (i === 0) handles[t] = await fsp.open(join(work, `big.${t}`), 'w');
        const fh = handles[t]!;
        await fh.write(chunk, 0, MiB, i * MiB);
        if (i === opts.bigFileMiB - 1) {
          await fh.sync();
          await fh.close();
        }
      });
      phases.push({ name: 'Write big file', value: (opts.bigFileMiB * T) / s, unit: 'MiB/s', costMs: (s * 1000) / opts.bigFileMiB, costUnit: 'ms/MiB', seconds: s });
      const rbuf = Array.from({ length: T }, () => Buffer.alloc(MiB));
      s = await phase(opts, 'Read big file', opts.bigFileMiB, async (t, i) => {
        if (i === 0) handles[t] = await fsp.open(join(work, `big.${t}`), 'r');
        const fh = handles[t]!;
        const { bytesRead } = await fh.read(rbuf[t]!, 0, MiB, i * MiB);
        if (bytesRead !== MiB || rbuf[t]!.readUInt32LE(4) !== chunk.readUInt32LE(4)) {
          throw new CliError(`big file ${t}: read ${bytesRead} bytes at MiB ${i}, or the wrong bytes`);
        }
        if (i === opts.bigFileMiB - 1) await fh.close();
      });
      phases.push({ name: 'Read big file', value: (opts.bigFileMiB * T) / s, unit: 'MiB/s', costMs: (s * 1000) / opts.bigFileMiB, costUnit: 'ms/MiB', seconds: s });
    }
    if (opts.smallFiles > 0) {
      const size = opts.smallFileKiB * 1024;
      const body = Buffer.alloc(size, 0x5a);
      for (let t = 0; t < T; t++) await fsp.mkdir(join(work, `small.${t}`));
      const path = (t: number, i: number) => join(work, `small.${t}`, `f${i}`);
      let s = await phase(opts, 'Write small file', opts.smallFiles, async (t, i) => {
        const fh = await fsp.open(path(t, i), 'wx');
        try {
          await fh.write(body, 0, size, 0);
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
      const n = opts.smallFiles * T;
      phases.push({ name: 'Write small file', value: n / s, unit: 'files/s', costMs: (s * 1000 * T) / n, costUnit: 'ms/file', seconds: s });
      const rbuf = Array.from({ length: T }, () => Buffer.alloc(size));
      s = await phase(opts, 'Read small file', opts.smallFiles, async (t, i) => {
        const fh = await fsp.open(path(t, i), 'r');
        try {
          const { bytesRead } = await fh.read(rbuf[t]!, 0, size, 0);
          if (bytesRead !== size) throw new CliError(`${path(t, i)}: read ${bytesRead} bytes, expected ${size}`);
        } finally {
          await fh.close();
        }
      });
      phases.push({ name: 'Read small file', value: n / s, unit: 'files/s', costMs: (s * 1000 * T) / n, costUnit: 'ms/file', seconds: s });
      s = await phase(opts, 'Stat file', opts.smallFiles, async (t, i) => {
        const st2 = await fsp.lstat(path(t, i));
        if (st2.size !== size) throw new CliError(`${path(t, i)}: size ${st2.size}, expected ${size}`);
      });
      phases.push({ name: 'Stat file', value: n / s, unit: 'stats/s', costMs: (s * 1000 * T) / n, costUnit: 'ms/file', seconds: s });
    }
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  const report: BenchReport = { dir: opts.dir, threads: T, bigFileMiB: opts.bigFileMiB, smallFileKiB: opts.smallFileKiB, smallFiles: opts.smallFiles, phases };
  const out = opts.out ?? process.stdout;
  out.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : summary(report));
  return report;
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** The summary table people read. */
export function summary(r: BenchReport): string {
  const rows = r.phases.map((p) => [p.name, `${fmt(p.value)} ${p.unit}`, `${fmt(p.costMs)} ${p.costUnit}`, `${p.seconds.toFixed(2)} s`]);
  const head = ['ITEM', 'VALUE', 'COST', 'TIME'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ')} |`;
  const sep = `+${w.map((x) => '-'.repeat(x + 2)).join('+')}+`;
  return [
    `Benchmark of ${r.dir}: ${r.threads} thread(s); big file ${r.bigFileMiB} MiB per thread; ${r.smallFiles} small files of ${r.smallFileKiB} KiB per thread (each fsync'd)`,
    sep,
    line(head),
    sep,
    ...rows.map(line),
    sep,
    '',
  ].join('\n');
}
