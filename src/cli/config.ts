/**
 * Settings: one configuration file, environment variables and flags, with one precedence rule
 * for every option of every command: flag > environment > configuration file > default.
 *
 * The configuration file is JSON (docs/CONFIG.md, silt.example.json). It is found at `--config
 * FILE`, else `$SILT_CONFIG`, else ./silt.json, else $XDG_CONFIG_HOME/silt/config.json
 * (~/.config/silt/config.json) — the first that is named or exists. Its top-level keys are option
 * names in camelCase and apply to every command that has that option; a section named after a
 * command (`"mount": {...}`) applies to that command only and wins over the top level.
 *
 * The environment variable of an option is SILT_ and its name in UPPER_SNAKE_CASE
 * (flushIntervalMs -> SILT_FLUSH_INTERVAL_MS). Everything is checked before a command runs, and a
 * mistake names its source exactly: `silt.json: serve.listen: expected HOST:PORT, got 8091`.
 *
 * Every cache, queue and timeout is a typed setting below with a default and a range.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command, Option } from 'commander';
import type { InodeLayerOptions } from '../inode/index.ts';
import type { VolumeOptions } from '../headhunter/index.ts';
import type { RpcLimits } from '../rpc/index.ts';
import { LOG_FORMATS, LOG_LEVELS } from '../util/index.ts';

/** The type of a setting's value, and what it may be. */
export type SettingKind =
  | { t: 'string' }
  | { t: 'boolean' }
  /** A boolean flag that may also carry a value (`--http [host:port]`). */
  | { t: 'flagOrAddress' }
  | { t: 'list' }
  | { t: 'int'; min: number; max: number; unit?: 'ms' | 'bytes' | 's' }
  | { t: 'number'; min: number; max: number }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'address' };

export type SettingValue = string | number | boolean | string[];

/** A setting with a type, limits and a documented default (options without one are inferred). */
export interface SettingSpec {
  key: string;
  kind: SettingKind;
  /** The default the layer applies when the setting is absent (documentation; layers own it). */
  default?: SettingValue;
  /** Commands that take it; all commands when absent. */
  commands?: readonly string[];
  /** Flag description, for settings main.ts adds to commands (tuning). */
  description?: string;
  /** Extra environment variable names read when the standard one is unset (older names). */
  envAliases?: readonly string[];
  /** A tuning option main.ts adds to `commands` (caches, queues, timeouts). */
  tuning?: 'engine' | 'store' | 'rpc';
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HOUR_MS = 3_600_000;
const ENGINE_COMMANDS = ['mount', 'serve'] as const;
const STORE_COMMANDS = ['mkfs', 'fsck', 'stat', 'gc', 'snapshot', 'mount', 'serve', 'smb'] as const;

/** Settings with a type and range. Every other option is a string or a boolean, as its flag says. */
export const SETTINGS: readonly SettingSpec[] = [
  { key: 'logLevel', kind: { t: 'enum', values: LOG_LEVELS }, default: 'info' },
  { key: 'logFormat', kind: { t: 'enum', values: LOG_FORMATS }, default: 'text on a terminal, else json' },
  { key: 'metrics', kind: { t: 'address' }, commands: ['mount', 'serve'] },
  { key: 'rpc', kind: { t: 'address' }, commands: ['serve'], envAliases: ['SILT_RPC_LISTEN'] },
  { key: 'listen', kind: { t: 'address' }, commands: ['serve'] },
  { key: 'http', kind: { t: 'flagOrAddress' }, commands: ['serve'] },
  { key: 'utilization', kind: { t: 'number', min: 0, max: 1 }, commands: ['gc'] },
  { key: 'port', kind: { t: 'int', min: 1, max: 65535 }, commands: ['smb'] },
  { key: 'smbLogLevel', kind: { t: 'int', min: 0, max: 10 }, commands: ['smb'], default: 1 },
  { key: 'flushIntervalMs', kind: { t: 'int', min: 0, max: HOUR_MS, unit: 'ms' }, default: 1000, commands: ['mount', 'serve', 'smb'] },
  // --- engine: caches, queues and timers of a mounted or served volume
  {
    key: 'gcIntervalMs',
    kind: { t: 'int', min: 0, max: 24 * HOUR_MS, unit: 'ms' },
    default: 60_000,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'background gc and cleaner pass interval, ms (0 disables)',
  },
  {
    key: 'cacheBytesMax',
    kind: { t: 'int', min: MiB, max: 64 * GiB, unit: 'bytes' },
    default: 64 * MiB,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'segment read cache size, bytes (suffixes KiB, MiB, GiB)',
  },
  {
    key: 'readAheadBytes',
    kind: { t: 'int', min: 0, max: 256 * MiB, unit: 'bytes' },
    default: 4 * MiB,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'ranged GET size for sequential reads, bytes',
  },
  {
    key: 'inodeCacheMax',
    kind: { t: 'int', min: 16, max: 10_000_000 },
    default: 50_000,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'clean, unused inodes kept in memory',
  },
  {
    key: 'treeNodesMax',
    kind: { t: 'int', min: 64, max: 10_000_000 },
    default: 4096,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'loaded B+tree nodes kept per tree after a commit',
  },
  {
    key: 'segmentBytesMax',
    kind: { t: 'int', min: MiB, max: GiB, unit: 'bytes' },
    default: 16 * MiB,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'data segments close at this size, bytes',
  },
  {
    key: 'inflightSegmentsMax',
    kind: { t: 'int', min: 1, max: 64 },
    default: 4,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'data segment PUTs in flight before writers wait (the upload queue)',
  },
  {
    key: 'commitBytesMax',
    kind: { t: 'int', min: 64 * 1024, max: GiB, unit: 'bytes' },
    default: 8 * MiB,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'commit early when the open commit segment holds this much, bytes',
  },
  {
    key: 'checkpointIntervalMs',
    kind: { t: 'int', min: 1000, max: HOUR_MS, unit: 'ms' },
    default: 30_000,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'a commit writes the trees whole (a checkpoint) at least this often; the ones between are deltas, ms',
  },
  {
    key: 'checkpointDeltasMax',
    kind: { t: 'int', min: 1, max: 65_536 },
    default: 256,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'delta commits after a checkpoint before the next checkpoint (bounds what recovery replays)',
  },
  {
    key: 'largeRunBytes',
    kind: { t: 'int', min: 4096, max: GiB, unit: 'bytes' },
    default: MiB,
    commands: ENGINE_COMMANDS,
    tuning: 'engine',
    description: 'a sequential write run longer than this streams into data segments, bytes',
  },
  // --- object store client (Swift, S3)
  {
    key: 'storeConnections',
    kind: { t: 'int', min: 1, max: 1024 },
    default: 16,
    commands: STORE_COMMANDS,
    tuning: 'store',
    description: 'HTTP connections to the object store (Swift, S3)',
  },
  {
    key: 'storeConnectTimeoutMs',
    kind: { t: 'int', min: 100, max: 10 * 60_000, unit: 'ms' },
    default: 5000,
    commands: STORE_COMMANDS,
    tuning: 'store',
    description: 'object store TCP/TLS connect timeout, ms',
  },
  {
    key: 'storeHeadersTimeoutMs',
    kind: { t: 'int', min: 100, max: HOUR_MS, unit: 'ms' },
    default: 60_000,
    commands: STORE_COMMANDS,
    tuning: 'store',
    description: 'object store response headers timeout, ms',
  },
  {
    key: 'storeBodyIdleTimeoutMs',
    kind: { t: 'int', min: 100, max: HOUR_MS, unit: 'ms' },
    default: 30_000,
    commands: STORE_COMMANDS,
    tuning: 'store',
    description: 'longest pause inside an object store request or response body, ms',
  },
  {
    key: 'storeRetryAttempts',
    kind: { t: 'int', min: 1, max: 20 },
    default: 5,
    commands: STORE_COMMANDS,
    tuning: 'store',
    description: 'tries of an idempotent object store request (1 = no retry)',
  },
  // --- JSON-RPC server (silt serve)
  {
    key: 'rpcConnectionsMax',
    kind: { t: 'int', min: 1, max: 65_536 },
    default: 1024,
    commands: ['serve'],
    tuning: 'rpc',
    description: 'RPC connections at once',
  },
  {
    key: 'rpcInflightMax',
    kind: { t: 'int', min: 1, max: 4096 },
    default: 64,
    commands: ['serve'],
    tuning: 'rpc',
    description: 'RPC requests of one connection executed at once (the request queue)',
  },
  {
    key: 'rpcFrameBytesMax',
    kind: { t: 'int', min: 64 * 1024, max: GiB, unit: 'bytes' },
    default: 16 * MiB,
    commands: ['serve'],
    tuning: 'rpc',
    description: 'longest RPC request, bytes',
  },
  {
    key: 'rpcIdleTimeoutMs',
    kind: { t: 'int', min: 1000, max: 7 * 24 * HOUR_MS, unit: 'ms' },
    default: 600_000,
    commands: ['serve'],
    tuning: 'rpc',
    description: 'an idle RPC connection is closed after this long, ms',
  },
  {
    key: 'rpcAuthTimeoutMs',
    kind: { t: 'int', min: 100, max: HOUR_MS, unit: 'ms' },
    default: 10_000,
    commands: ['serve'],
    tuning: 'rpc',
    description: 'an RPC connection must authenticate within this long, ms',
  },
  {
    key: 'rpcDrainTimeoutMs',
    kind: { t: 'int', min: 0, max: HOUR_MS, unit: 'ms' },
    default: 10_000,
    commands: ['serve'],
    tuning: 'rpc',
    description: 'on shutdown, how long in-flight RPC requests may take, ms',
  },
];

/**
 * Options that change what one invocation does to the data; they are taken from the command line
 * only, never from the environment or a file someone else may have written.
 */
export const FLAG_ONLY = new Set(['force', 'dryRun', 'config', 'help', 'version']);

/** A user mistake in a setting: every problem found, one per line, each naming its source. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} problems in the settings:\n  ${problems.join('\n  ')}`);
  }
}

/** SILT_ and the key in UPPER_SNAKE_CASE. */
export function envName(key: string): string {
  return 'SILT_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** --kebab-case of a camelCase key. */
export function flagName(key: string): string {
  return '--' + key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

export function specFor(command: string, key: string): SettingSpec | undefined {
  return SETTINGS.find((s) => s.key === key && (s.commands === undefined || s.commands.includes(command)));
}

/** What a kind accepts, in words (for messages and docs). */
export function describeKind(k: SettingKind): string {
  switch (k.t) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'flagOrAddress':
      return 'true, false or HOST:PORT';
    case 'list':
      return 'a list of strings';
    case 'int': {
      const f = (n: number): string => (k.unit === 'bytes' ? formatSize(n) : String(n));
      return `a whole number from ${f(k.min)} to ${f(k.max)}${k.unit && k.unit !== 'bytes' ? ` (${k.unit})` : ''}`;
    }
    case 'number':
      return `a number from ${k.min} to ${k.max}`;
    case 'enum':
      return `one of ${k.values.join(', ')}`;
    case 'address':
      return 'HOST:PORT';
  }
}

/** A setting's documented default, sizes in KiB/MiB/GiB. */
export function formatDefault(s: Pick<SettingSpec, 'kind' | 'default'>): string {
  if (s.default === undefined) return '';
  if (s.kind.t === 'int' && s.kind.unit === 'bytes' && typeof s.default === 'number') return formatSize(s.default);
  return Array.isArray(s.default) ? s.default.join(', ') : String(s.default);
}

function formatSize(n: number): string {
  for (const [u, v] of [['GiB', GiB], ['MiB', MiB], ['KiB', 1024]] as const) if (n >= v && n % v === 0) return `${n / v} ${u}`;
  return String(n);
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: GiB, gb: GiB, gib: GiB };

/**
 * Check and convert one value. `raw` is a string when it came from a flag or the environment,
 * any JSON value when it came from the file. Returns the value or a message (without the source).
 */
export function checkValue(k: SettingKind, raw: unknown): { ok: true; value: SettingValue } | { ok: false; why: string } {
  const bad = (): { ok: false; why: string } => ({ ok: false, why: `expected ${describeKind(k)}, got ${JSON.stringify(raw)}` });
  const fromText = typeof raw === 'string';
  switch (k.t) {
    case 'string':
      return typeof raw === 'string' ? { ok: true, value: raw } : bad();
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const b = fromText ? parseBool(raw) : undefined;
      return b === undefined ? bad() : { ok: true, value: b };
    }
    case 'flagOrAddress': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (typeof raw !== 'string') return bad();
      const b = parseBool(raw);
      if (b !== undefined) return { ok: true, value: b };
      return isAddress(raw) ? { ok: true, value: raw } : bad();
    }
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return { ok: true, value: raw as string[] };
      if (typeof raw === 'string') return { ok: true, value: raw.split(',').map((s) => s.trim()).filter((s) => s !== '') };
      return bad();
    case 'int':
    case 'number': {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string') {
        const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
        if (!m) return bad();
        const mult = k.t === 'int' && k.unit === 'bytes' ? BYTE_UNITS[m[2]!.toLowerCase()] : m[2] === '' ? 1 : undefined;
        if (mult === undefined) return bad();
        n = Number(m[1]) * mult;
      } else return bad();
      if (!Number.isFinite(n) || (k.t === 'int' && !Number.isInteger(n)) || n < k.min || n > k.max) return bad();
      return { ok: true, value: n };
    }
    case 'enum':
      return typeof raw === 'string' && k.values.includes(raw) ? { ok: true, value: raw } : bad();
    case 'address':
      return typeof raw === 'string' && isAddress(raw) ? { ok: true, value: raw } : bad();
  }
}

function parseBool(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return undefined;
}

/** HOST:PORT, :PORT or [v6]:PORT with a port 0..65535. */
export function isAddress(s: string): boolean {
  const m = /^(?:\[[^\]]+\]|[^:\s[\]]*):(\d{1,5})$/.exec(s.trim());
  return m !== null && Number(m[1]) <= 65535;
}

// ---------------------------------------------------------------------------------------------
// The options of the commands, as the config file and the environment see them

/** One option of one command: its key, flag, environment variable and type. */
export interface OptionSpec {
  command: string;
  key: string;
  flag: string;
  env: string;
  envAliases: readonly string[];
  kind: SettingKind;
  description: string;
  /** The default shown by the flag, or the layer default the table documents. */
  default: SettingValue | undefined;
  flagOnly: boolean;
}

/** The options of `cmd`, typed from SETTINGS or inferred from the flag. */
export function optionSpecs(cmd: Command): OptionSpec[] {
  const out: OptionSpec[] = [];
  for (const o of cmd.options as readonly Option[]) {
    const key = o.attributeName();
    if (key === 'help' || key === 'version' || o.hidden) continue;
    const spec = specFor(cmd.name(), key);
    const inferred: SettingKind = o.negate || (!o.required && !o.optional) ? { t: 'boolean' } : Array.isArray(o.defaultValue) ? { t: 'list' } : { t: 'string' };
    const flagDefault = o.negate ? true : (o.defaultValue as SettingValue | undefined);
    out.push({
      command: cmd.name(),
      key,
      flag: o.long ?? o.flags,
      env: envName(key),
      envAliases: spec?.envAliases ?? [],
      kind: spec?.kind ?? inferred,
      description: spec?.description ?? o.description,
      default: spec?.default ?? (flagDefault === false && !o.negate ? undefined : flagDefault),
      flagOnly: FLAG_ONLY.has(key),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The file

export interface ConfigLocation {
  path: string;
  /** How it was found: '--config', 'SILT_CONFIG', or 'default'. */
  from: '--config' | 'SILT_CONFIG' | 'default';
}

/** Which configuration file applies, if any. A file named by --config or SILT_CONFIG must exist. */
export function locateConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ConfigLocation | undefined {
  const named = flag !== undefined ? { path: flag, from: '--config' as const } : env['SILT_CONFIG'] ? { path: env['SILT_CONFIG'], from: 'SILT_CONFIG' as const } : undefined;
  if (named) {
    const p = resolve(cwd, named.path);
    if (!existsSync(p)) throw new ConfigError([`configuration file ${p} (from ${named.from}) does not exist: fix the path, or create it (see silt.example.json and docs/CONFIG.md)`]);
    return { path: p, from: named.from };
  }
  const xdg = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  for (const p of [resolve(cwd, 'silt.json'), join(xdg, 'silt', 'config.json')]) if (existsSync(p)) return { path: p, from: 'default' };
  return undefined;
}

/** A validated configuration file: values per key, typed, for the top level and each command. */
export interface ConfigFile {
  path: string;
  top: Record<string, SettingValue>;
  sections: Record<string, Record<string, SettingValue>>;
}

/** Read and parse a JSON file; a syntax error names the line and column. */
export function readConfigJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`${path}: cannot read: ${(e as Error).message}`]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const msg = (e as Error).message;
    let at = /position (\d+)/.exec(msg)?.[1] !== undefined ? Number(/position (\d+)/.exec(msg)![1]) : undefined;
    // Node 20 sometimes quotes the text around the error instead of giving its position.
    const quoted = /^Unexpected token '(.)', (?:\.\.\.)?"([\s\S]*?)(?:\.\.\.)?" is not valid JSON$/.exec(msg);
    if (at === undefined && quoted) {
      const i = text.indexOf(quoted[2]!);
      if (i >= 0) at = i + quoted[2]!.indexOf(quoted[1]!);
    }
    let where = '';
    if (at !== undefined) {
      const pos = [String(at), String(at)];
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` at line ${line}, column ${Number(pos[1]) - before.lastIndexOf('\n')}`;
    }
    const what = quoted ? `unexpected '${quoted[1]}'` : msg.replace(/ in JSON at position \d+.*$/, '');
    throw new ConfigError([`${path}: not valid JSON${where}: ${what}`]);
  }
}

/**
 * Check a parsed configuration against the commands' options. Every problem is reported (file,
 * key path, what was expected, what was there), not only the first.
 */
export function validateConfig(raw: unknown, path: string, commands: readonly Command[]): ConfigFile {
  const problems: string[] = [];
  const file: ConfigFile = { path, top: {}, sections: {} };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([`${path}: expected a JSON object of settings ({"store": "file:/srv/silt", ...}), got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)}`]);
  }
  const byCommand = new Map<string, OptionSpec[]>();
  for (const c of commands) byCommand.set(c.name(), optionSpecs(c).filter((s) => !s.flagOnly));
  const allKeys = new Map<string, OptionSpec[]>();
  for (const specs of byCommand.values()) for (const s of specs) allKeys.set(s.key, [...(allKeys.get(s.key) ?? []), s]);

  const check = (at: string, value: unknown, specs: readonly OptionSpec[]): SettingValue | undefined => {
    // A key several commands share may have different types in each (listen); it must suit all.
    let out: SettingValue | undefined;
    const kinds = new Set(specs.map((s) => JSON.stringify(s.kind)));
    if (kinds.size === 1) specs = specs.slice(0, 1);
    for (const s of specs) {
      const r = checkValue(s.kind, value);
      if (!r.ok) {
        problems.push(`${path}: ${at}: ${r.why}${specs.length > 1 ? ` (for silt ${s.command})` : ''}`);
        return undefined;
      }
      out = r.value;
    }
    return out;
  };

  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k === '$schema' || k === '//' || k.startsWith('_comment')) continue;
    const section = byCommand.get(k);
    const isObject = typeof v === 'object' && v !== null && !Array.isArray(v);
    // A command's name holding an object is its section ("mount" is also an option of smb and serve).
    if (section !== undefined && (isObject || !allKeys.has(k))) {
      if (!isObject) {
        problems.push(`${path}: ${k}: expected an object of settings for silt ${k}, got ${JSON.stringify(v)}`);
        continue;
      }
      const sec: Record<string, SettingValue> = {};
      for (const [sk, sv] of Object.entries(v as Record<string, unknown>)) {
        if (sk === '//' || sk.startsWith('_comment')) continue;
        const spec = section.find((s) => s.key === sk);
        if (!spec) {
          problems.push(`${path}: ${k}.${sk}: silt ${k} has no setting "${sk}"${suggest(sk, section.map((s) => s.key))}`);
          continue;
        }
        const val = check(`${k}.${sk}`, sv, [spec]);
        if (val !== undefined) sec[sk] = val;
      }
      file.sections[k] = sec;
      continue;
    }
    const specs = allKeys.get(k);
    if (!specs) {
      const flagOnly = FLAG_ONLY.has(k) ? ` ("${k}" is taken from the command line only)` : '';
      problems.push(`${path}: ${k}: unknown setting${flagOnly}${suggest(k, [...allKeys.keys(), ...byCommand.keys()])}`);
      continue;
    }
    const val = check(k, v, specs);
    if (val !== undefined) file.top[k] = val;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return file;
}

/** " (did you mean X?)" for the closest known name, if it is close. */
function suggest(word: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of new Set(known)) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Applying: flag > environment > file > default

export type SettingSource = 'cli' | 'env' | 'config' | 'default';

/** The effective settings of one command run, with where each came from (`silt config show`). */
export interface Resolved {
  file: ConfigLocation | undefined;
  values: Record<string, { value: SettingValue | undefined; source: SettingSource; from?: string }>;
}

/**
 * Fill the options of `cmd` the user did not give on the command line from the environment, then
 * the configuration file, and check every typed value whatever its source. `program` supplies the
 * other commands, so the file is validated as a whole (a typo in the `serve` section is reported
 * when running `silt mount` too). Throws ConfigError listing every problem.
 */
export function applySettings(cmd: Command, program: Command, env: NodeJS.ProcessEnv = process.env): Resolved {
  const problems: string[] = [];
  const configFlag = cmd.getOptionValueSource('config') === 'cli' ? (cmd.getOptionValue('config') as string) : undefined;
  const location = locateConfig(configFlag, env);
  const file = location ? validateConfig(readConfigJson(location.path), location.path, program.commands) : undefined;
  const resolved: Resolved = { file: location, values: {} };
  const name = cmd.name();
  for (const spec of optionSpecs(cmd)) {
    if (spec.key === 'config') continue;
    const source = cmd.getOptionValueSource(spec.key);
    const set = (value: SettingValue, src: SettingSource, from: string): void => {
      cmd.setOptionValueWithSource(spec.key, value, src);
      resolved.values[spec.key] = { value, source: src, from };
    };
    if (source === 'cli') {
      const v = cmd.getOptionValue(spec.key) as unknown;
      // A flag's text is checked like any other source; booleans and lists are commander's own.
      if (typeof v === 'string' && spec.kind.t !== 'string' && spec.kind.t !== 'list') {
        const r = checkValue(spec.kind, v);
        if (!r.ok) problems.push(`${spec.flag}: ${r.why}`);
        else set(r.value, 'cli', spec.flag);
      } else resolved.values[spec.key] = { value: v as SettingValue, source: 'cli', from: spec.flag };
      continue;
    }
    if (spec.flagOnly) continue;
    const envVar = [spec.env, ...spec.envAliases].find((e) => env[e] !== undefined && env[e] !== '');
    if (envVar !== undefined) {
      const r = checkValue(spec.kind, env[envVar]);
      if (!r.ok) problems.push(`${envVar}: ${r.why}`);
      else set(r.value, 'env', envVar);
      continue;
    }
    const fromSection = file?.sections[name]?.[spec.key];
    const fromTop = file?.top[spec.key];
    if (fromSection !== undefined) set(fromSection, 'config', `${file!.path}: ${name}.${spec.key}`);
    else if (fromTop !== undefined) set(fromTop, 'config', `${file!.path}: ${spec.key}`);
    else resolved.values[spec.key] = { value: cmd.getOptionValue(spec.key) as SettingValue | undefined, source: 'default' };
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return resolved;
}

// ---------------------------------------------------------------------------------------------
// From settings to the layers' options

/** What the tuning settings of a command run mean to the layers (only what was set). */
export interface EngineTuning {
  volume: Partial<Pick<VolumeOptions, 'segmentBytesMax' | 'inflightSegmentsMax' | 'cacheBytesMax' | 'readAheadBytes' | 'commitBytesMax' | 'checkpointIntervalMs' | 'checkpointDeltasMax'>>;
  inode: Partial<Pick<InodeLayerOptions, 'inodeCacheMax' | 'largeRunBytes' | 'treeNodesMax'>>;
  gcIntervalMs?: number;
  rpc: Partial<RpcLimits>;
  store: StoreTuning;
}

export interface StoreTuning {
  connections?: number;
  timeouts?: { connectMs?: number; headersMs?: number; bodyIdleMs?: number };
  retry?: { attempts?: number };
}

/** The layer options of the tuning settings present in a command's parsed options. */
export function engineTuning(o: Record<string, unknown>): EngineTuning {
  const n = (k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : typeof o[k] === 'string' && o[k] !== '' ? Number(o[k]) : undefined);
  const pick = <T extends string>(map: Record<T, string>): Partial<Record<T, number>> => {
    const out: Partial<Record<T, number>> = {};
    for (const [to, from] of Object.entries(map) as Array<[T, string]>) {
      const v = n(from);
      if (v !== undefined) out[to] = v;
    }
    return out;
  };
  const t: EngineTuning = {
    volume: pick({
      segmentBytesMax: 'segmentBytesMax',
      inflightSegmentsMax: 'inflightSegmentsMax',
      cacheBytesMax: 'cacheBytesMax',
      readAheadBytes: 'readAheadBytes',
      commitBytesMax: 'commitBytesMax',
      checkpointIntervalMs: 'checkpointIntervalMs',
      checkpointDeltasMax: 'checkpointDeltasMax',
    }),
    inode: pick({ inodeCacheMax: 'inodeCacheMax', largeRunBytes: 'largeRunBytes', treeNodesMax: 'treeNodesMax' }),
    rpc: pick({
      connectionsMax: 'rpcConnectionsMax',
      inflightMax: 'rpcInflightMax',
      frameBytesMax: 'rpcFrameBytesMax',
      idleTimeoutMs: 'rpcIdleTimeoutMs',
      authTimeoutMs: 'rpcAuthTimeoutMs',
      drainTimeoutMs: 'rpcDrainTimeoutMs',
    }),
    store: {},
  };
  const gc = n('gcIntervalMs');
  if (gc !== undefined) t.gcIntervalMs = gc;
  const conns = n('storeConnections');
  if (conns !== undefined) t.store.connections = conns;
  const timeouts = pick({ connectMs: 'storeConnectTimeoutMs', headersMs: 'storeHeadersTimeoutMs', bodyIdleMs: 'storeBodyIdleTimeoutMs' });
  if (Object.keys(timeouts).length > 0) t.store.timeouts = timeouts;
  const attempts = n('storeRetryAttempts');
  if (attempts !== undefined) t.store.retry = { attempts };
  return t;
}

// ---------------------------------------------------------------------------------------------
// The reference (docs/CONFIG.md is generated from it: `silt config reference`)

export function configReference(program: Command): string {
  const lines: string[] = [];
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const fmt = (s: OptionSpec): string => formatDefault(s);
  for (const cmd of program.commands) {
    const specs = optionSpecs(cmd).filter((s) => s.key !== 'config');
    if (specs.length === 0) continue;
    lines.push(`### silt ${cmd.name()}`, '', '| config key | flag | environment | default | accepts | what |', '|---|---|---|---|---|---|');
    for (const s of specs) {
      const env = s.flagOnly ? '(flag only)' : [s.env, ...s.envAliases].join(', ');
      const key = s.flagOnly ? '(flag only)' : `\`${s.key}\``;
      lines.push(`| ${key} | \`${s.flag}\` | ${env} | ${esc(fmt(s))} | ${esc(describeKind(s.kind))} | ${esc(s.description)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
