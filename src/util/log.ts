/** The logger interface library layers log through; the CLI decides where lines go. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const nullLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
/** json: one JSON object per line (for collectors); text: one readable line (for terminals). */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Text on a terminal, JSON lines otherwise (a file, a pipe, journald), unless SILT_LOG_FORMAT says. */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stderr): LogFormat {
  const env = process.env['SILT_LOG_FORMAT'];
  if (env === 'json' || env === 'text') return env;
  return stream.isTTY === true ? 'text' : 'json';
}

/** The level SILT_LOG_LEVEL names, else `fallback`. */
export function defaultLogLevel(fallback: LogLevel = 'info'): LogLevel {
  const env = process.env['SILT_LOG_LEVEL'];
  return (LOG_LEVELS as readonly string[]).includes(env ?? '') ? (env as LogLevel) : fallback;
}

export interface LineLoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
  /** Default Date.now (tests pin it). */
  now?: () => number;
}

/**
 * A logger writing one line per event at or above `level`. JSON lines carry
 * {time, level, msg, ...fields}; an Error anywhere in the fields becomes {name, message, code,
 * errno, cause} (the whole cause chain), so a failed request's cause is in its one log line.
 */
export function lineLogger(opts: LineLoggerOptions = {}): Logger {
  const order = { debug: 0, info: 1, warn: 2, error: 3 } as const;
  const min = order[opts.level ?? 'info'];
  const format = opts.format ?? defaultLogFormat();
  const write = opts.write ?? ((s: string) => void process.stderr.write(s));
  const now = opts.now ?? Date.now;
  const line = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (order[lvl] < min) return;
    const time = new Date(now()).toISOString();
    if (format === 'json') {
      const rec: Record<string, unknown> = { time, level: lvl, msg };
      for (const [k, v] of Object.entries(fields ?? {})) if (!(k in rec)) rec[k] = v;
      write(safeStringify(rec) + '\n');
      return;
    }
    const extra = Object.entries(fields ?? {})
      .map(([k, v]) => ` ${k}=${textValue(v)}`)
      .join('');
    write(`${time} ${lvl.toUpperCase().padEnd(5)} ${msg}${extra}\n`);
  };
  return {
    debug: (m, f) => line('debug', m, f),
    info: (m, f) => line('info', m, f),
    warn: (m, f) => line('warn', m, f),
    error: (m, f) => line('error', m, f),
  };
}

/** A logger writing to stderr at or above `level`, in `format` (default: text on a terminal, else JSON). */
export function stderrLogger(level: LogLevel = 'info', format?: LogFormat): Logger {
  return lineLogger({ level, ...(format !== undefined && { format }) });
}

/** An Error as plain data: name, message, code/errno/kind when present, and its cause chain. */
export function errorFields(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return typeof err === 'bigint' ? err.toString() : err;
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const extra = err as unknown as Record<string, unknown>;
  for (const k of ['code', 'errno', 'kind', 'status', 'syscall', 'address', 'port']) {
    if (extra[k] !== undefined && typeof extra[k] !== 'object') out[k] = extra[k];
  }
  if (err.cause !== undefined && depth < 5) out['cause'] = errorFields(err.cause, depth + 1);
  return out;
}

function replacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return errorFields(v);
  return v;
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v, replacer);
  } catch {
    return JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'unserialisable log record' });
  }
}

function textValue(v: unknown): string {
  if (v instanceof Error) {
    let s = `${v.name}: ${v.message}`;
    let c: unknown = v.cause;
    for (let i = 0; c !== undefined && i < 5; i++) {
      s += ` (cause: ${c instanceof Error ? c.message : String(c)})`;
      c = c instanceof Error ? c.cause : undefined;
    }
    return JSON.stringify(s);
  }
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'bigint') return v.toString();
  try {
    return JSON.stringify(v, replacer) ?? String(v);
  } catch {
    return String(v);
  }
}
