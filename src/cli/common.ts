import { InstrumentedStore, openStore, type ObjectStore } from '../objstore/index.ts';
import { CorruptionError, FsError, StoreError, stderrLogger, type Logger } from '../util/index.ts';

export const DEFAULT_STORE = 'file:./silt-data';
export const DEFAULT_VOLUME = 'default';

/** A user-facing failure: printed as one line, exit code attached. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export interface StoreFlags {
  store: string;
  volume: string;
}

export function logger(level?: string): Logger {
  const l = (level ?? process.env['SILT_LOG_LEVEL'] ?? 'info') as 'debug' | 'info' | 'warn' | 'error';
  return stderrLogger(['debug', 'info', 'warn', 'error'].includes(l) ? l : 'info');
}

/** Open the store named by a URL; a clear message when it cannot be reached. */
export async function connect(url: string, create = false): Promise<ObjectStore> {
  try {
    // Every store a command opens is measured (Prometheus metrics of verbs, latency, bytes).
    return new InstrumentedStore(await openStore(url, { create }));
  } catch (err) {
    throw describe(err, `cannot open store ${url}`);
  }
}

/** Turn any error into a one-line CliError a person can act on. */
export function describe(err: unknown, context?: string): CliError {
  if (err instanceof CliError) return err;
  const pre = context ? `${context}: ` : '';
  if (err instanceof FsError) return new CliError(`${pre}${err.message}`);
  if (err instanceof StoreError) {
    const hint =
      err.kind === 'auth'
        ? ' (check the credentials: SILT_SWIFT_USER/SILT_SWIFT_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)'
        : err.kind === 'unavailable'
          ? ' (is the store running and reachable?)'
          : '';
    return new CliError(`${pre}${err.message}${hint}`);
  }
  if (err instanceof CorruptionError) return new CliError(`${pre}the volume is damaged: ${err.message} (run silt fsck)`);
  if (err instanceof Error) return new CliError(`${pre}${err.message}`);
  return new CliError(`${pre}${String(err)}`);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

/** A one-line progress indicator on stderr, only when stderr is a terminal. */
export class Progress {
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;
  update(text: string): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    process.stderr.write(`\r\x1b[K${text}`);
  }
  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}
