import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from '../util/index.ts';
import { LocalStore } from './local.ts';
import { MemoryStore } from './memory.ts';
import type { ObjectStore } from './types.ts';

/**
 * Store URLs: `file:PATH`, `file:///ABS`, `memory:NAME`, and whatever other modules register
 * (`swift+http:`, `s3+http:`, ... call registerStoreScheme from their own file; index.ts imports
 * those modules so that opening a URL never depends on import order).
 */

export interface OpenStoreOptions {
  /** Create a missing store (`silt mkfs`); without it a missing local directory is 'not_found'. */
  create?: boolean;
  /** HTTP backends (Swift, S3): sockets per origin; the local and memory stores ignore it. */
  connections?: number;
  /** HTTP backends: connect, response-headers and body-idle timeouts (ms). */
  timeouts?: { connectMs?: number; headersMs?: number; bodyIdleMs?: number };
  /** HTTP backends: tries of an idempotent request (1 = no retry). */
  retry?: { attempts?: number };
}

export type StoreOpener = (url: string, options: OpenStoreOptions) => Promise<ObjectStore>;

interface Scheme {
  opener: StoreOpener;
  usage: string;
}

/** Keyed by the scheme with its colon, lower case: 'file:', 'swift+http:'. */
const schemes = new Map<string, Scheme>();

/**
 * Register an opener for URLs starting with `prefix` (a scheme such as 'swift+http' or
 * 'swift+http:'). `usage` is shown when a URL matches no scheme. Registering a scheme twice
 * with different openers is a programming error.
 */
export function registerStoreScheme(prefix: string, opener: StoreOpener, usage?: string): void {
  const scheme = normalizeScheme(prefix);
  if (!/^[a-z][a-z0-9+.-]*:$/.test(scheme)) throw new RangeError(`bad store scheme ${JSON.stringify(prefix)}`);
  const existing = schemes.get(scheme);
  if (existing !== undefined && existing.opener !== opener) throw new RangeError(`store scheme ${scheme} is already registered`);
  schemes.set(scheme, { opener, usage: usage ?? existing?.usage ?? `${scheme}...` });
}

export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<ObjectStore> {
  const colon = url.indexOf(':');
  const entry = colon > 0 ? schemes.get(url.slice(0, colon + 1).toLowerCase()) : undefined;
  if (entry === undefined) {
    const forms = [...schemes.values()].map((s) => `  ${s.usage}`).join('\n');
    throw new StoreError('bad_request', `unsupported store URL ${JSON.stringify(url)}; supported forms:\n${forms}`);
  }
  return entry.opener(url, options);
}

const memoryStores = new Map<string, MemoryStore>();

/** Forget a named memory store (tests that want a fresh `memory:NAME`). */
export function dropMemoryStore(name: string): void {
  memoryStores.delete(name);
}

registerStoreScheme(
  'file:',
  async (url, options) => {
    const dir = filePath(url);
    let isDir: boolean;
    try {
      isDir = (await stat(dir)).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StoreError('io', `cannot open store at ${dir}: ${(err as Error).message}`, { cause: err });
      }
      if (!options.create) throw new StoreError('not_found', `no store at ${dir}: run silt mkfs`);
      await mkdir(dir, { recursive: true });
      isDir = true;
    }
    if (!isDir) throw new StoreError('bad_request', `store path ${dir} exists and is not a directory`);
    return new LocalStore(dir);
  },
  'file:PATH or file:///ABSOLUTE/PATH (a local directory)',
);

registerStoreScheme(
  'memory:',
  async (url) => {
    // One store per name per process, so a test and the CLI it drives can reopen the same one.
    const name = url.slice('memory:'.length);
    let store = memoryStores.get(name);
    if (store === undefined) {
      store = new MemoryStore(name === '' ? 'memory:' : `memory:${name}`);
      memoryStores.set(name, store);
    }
    return store;
  },
  'memory:NAME (in-process, shared by name, for tests)',
);

function normalizeScheme(prefix: string): string {
  const lower = prefix.toLowerCase();
  return lower.endsWith(':') ? lower : `${lower}:`;
}

/** `file:rel`, `file:/abs`, `file:///abs`, `file://localhost/abs` -> absolute path. */
function filePath(url: string): string {
  const rest = url.slice('file:'.length);
  if (rest.startsWith('//')) {
    try {
      return fileURLToPath(url); // decodes %20 etc., rejects a remote host
    } catch (err) {
      throw new StoreError('bad_request', `bad file URL ${JSON.stringify(url)}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (rest === '') throw new StoreError('bad_request', 'file: URL without a path');
  return resolve(rest);
}
