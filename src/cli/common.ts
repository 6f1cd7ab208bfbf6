import { InstrumentedStore, openStore, type ObjectStore } from '../objstore/index.ts';
import {
  CorruptionError,
  FsError,
  StoreError,
  defaultLogFormat,
  defaultLogLevel,
  lineLogger,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  type Logger,
} from '../util/index.ts';
import type { StoreTuning } from './config.ts';

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

/** The log level and format of this run (set once settings are resolved; `--log-level`, `--log-format`). */
const logSettings: { level?: LogLevel; format?: LogFormat } = {};

export function configureLogging(level: string | undefined, format: string | undefined): void {
  if (level !== undefined && (LOG_LEVELS as readonly string[]).includes(level)) logSettings.level = level as LogLevel;
  if (format === 'json' || format === 'text') logSettings.format = format;
}

/**
 * The logger of a command: stderr, at `level` (else --log-level, SILT_LOG_LEVEL, info), as JSON
 * lines or, on a terminal or with --log-format text, readable lines.
 */
export function logger(level?: string): Logger {
  const l = level !== undefined && (LOG_LEVELS as readonly string[]).includes(level) ? (level as LogLevel) : (logSettings.level ?? defaultLogLevel());
  return lineLogger({ level: l, format: logSettings.format ?? defaultLogFormat() });
}

/** Store client limits for every store a command opens (--store-connections, --store-*-timeout-ms, --store-retry-attempts). */
let storeTuning: StoreTuning = {};
export function configureStore(t: StoreTuning): void {
  storeTuning = t;
}

/** Open the store named by a URL; a clear message when it cannot be reached. */
export async function connect(url: string, create = false): Promise<ObjectStore> {
  try {
    // Every store a command opens is measured (Prometheus metrics of verbs, latency, bytes).
    return new InstrumentedStore(await openStore(url, { create, ...storeTuning }));
  } catch (err) {
    throw describe(err, `cannot open store ${url}`, url);
  }
}

/** The socket error code anywhere in an error's cause chain (ECONNREFUSED, ENOTFOUND, ...). */
function netCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e !== undefined && e !== null && i < 6; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$|^UND_ERR_CONNECT_TIMEOUT$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const NET_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  ECONNRESET: 'connection reset',
};

/** host:port of a store URL (http schemes), for messages. */
export function storeHostPort(url: string): string | undefined {
  const m = /^(?:swift|s3)\+(https?):\/\/(?:[^@/]*@)?([^/?#]+)/.exec(url);
  if (!m) return undefined;
  return /:\d+$/.test(m[2]!) ? m[2] : `${m[2]}:${m[1] === 'https' ? 443 : 80}`;
}

/** Which credentials a store URL uses, for the hint of an auth failure. */
function credentialHint(url: string | undefined): string {
  if (url?.startsWith('swift+')) return 'check SILT_SWIFT_USER and SILT_SWIFT_KEY (or USER:KEY@ in the URL)';
  if (url?.startsWith('s3+')) return 'check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or KEY:SECRET@ in the URL)';
  return 'check SILT_SWIFT_USER/SILT_SWIFT_KEY (Swift) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (S3)';
}

/**
 * Turn any error into a one-line CliError a person can act on: what failed, why, and the fix.
 * `storeUrl` (when the failure came from opening a store) lets the message name its host and port.
 */
export function describe(err: unknown, context?: string, storeUrl?: string): CliError {
  if (err instanceof CliError) return err;
  const pre = context ? `${context}: ` : '';
  if (err instanceof FsError) {
    const m = /^ENOENT: no volume (\S+) in (.*?)(?:: run silt mkfs first)?$/.exec(err.message);
    if (m) {
      return new CliError(
        `${pre}volume '${m[1]}' does not exist in ${m[2]}: create it with 'silt mkfs --volume ${m[1]}' (or mount/serve with --mkfs), or name an existing one with --volume`,
      );
    }
    return new CliError(`${pre}${err.message}`);
  }
  if (err instanceof StoreError) {
    if (err.kind === 'auth') {
      // Credentials missing altogether: the backend's message already says which variables to set.
      if (/^no (Swift|S3) credentials/.test(err.message)) return new CliError(`${pre}${err.message}`);
      return new CliError(`${pre}the object store refused the credentials: ${err.message}; ${credentialHint(storeUrl)}`);
    }
    if (err.kind === 'unavailable') {
      const code = netCode(err);
      const where = (storeUrl && storeHostPort(storeUrl)) ?? /(?:reach|to) (\S+:\d+)/.exec(err.message)?.[1];
      if (where !== undefined) {
        const why = code !== undefined ? `${NET_WORDS[code] ?? code} (${code})` : 'no answer';
        return new CliError(
          `${pre}cannot reach the object store at ${where}: ${why}; start the store, or fix the host and port in --store (${err.message})`,
        );
      }
      return new CliError(`${pre}${err.message} (is the store running and reachable?)`);
    }
    if (err.kind === 'not_found' && /no store at/.test(err.message)) {
      return new CliError(`${pre}${err.message.replace(/: run silt mkfs$/, '')}: create it with 'silt mkfs', or fix the path in --store`);
    }
    return new CliError(`${pre}${err.message}`);
  }
  if (err instanceof CorruptionError) return new CliError(`${pre}the volume is damaged: ${err.message} (run silt fsck)`);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' && !/in use/.test(err.message)) return new CliError(`${pre}${err.message}: the address is in use; stop what listens there, or choose another port`);
    return new CliError(`${pre}${err.message}`);
  }
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

/**
 * A one-line progress indicator on stderr, only when stderr is a terminal (quiet in pipes, files
 * and CI). `update(text, done?, total?)` redraws at most 10 times a second; with a total it draws a
 * bar and a percentage, and the elapsed time is always shown. `done()` clears the line.
 */
export class Progress {
  private last = 0;
  private readonly started = Date.now();
  private drawn = false;
  constructor(
    private readonly stream: { isTTY?: boolean; columns?: number; write(s: string): boolean } = process.stderr,
    private readonly tty = stream.isTTY === true,
  ) {}
  update(text: string, done?: number, total?: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.stream.write(`\r\x1b[K${this.render(text, done, total, now)}`);
    this.drawn = true;
  }
  /** The line update() draws (exposed for tests). */
  render(text: string, done?: number, total?: number, now = Date.now()): string {
    const elapsed = ` ${formatAge(now - this.started)}`;
    let bar = '';
    if (done !== undefined && total !== undefined && total > 0) {
      const f = Math.min(1, Math.max(0, done / total));
      const width = 20;
      const full = Math.round(f * width);
      bar = ` [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(f * 100).toFixed(0).padStart(3)}%`;
    }
    const line = `${text}${bar}${elapsed}`;
    const cols = this.stream.columns ?? 120;
    return line.length >= cols ? line.slice(0, cols - 1) : line;
  }
  done(): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
