/**
 * Who sent a FUSE request. The in-header carries uid, gid and the calling thread's pid; the
 * supplementary groups are read from /proc/<pid>/status ("Groups:") and cached briefly per pid.
 * Best effort: a process that already exited gets no supplementary groups. Root needs none (uid 0
 * bypasses mode checks), so root requests never read /proc.
 */
import { readFileSync } from 'node:fs';
import type { Identity } from '../fs/index.ts';

export interface GroupCacheOptions {
  /** How long a pid's groups are trusted. Default 1000 ms. */
  ttlMs?: number;
  /** Most pids remembered. Default 4096. */
  entriesMax?: number;
  /** Injected for tests: returns the text of /proc/<pid>/status. */
  readStatus?: (pid: number) => string;
  now?: () => number;
}

const EMPTY: readonly number[] = Object.freeze([]);

export function parseGroups(status: string): number[] {
  const m = /^Groups:[ \t]*(.*)$/m.exec(status);
  if (!m || !m[1]) return [];
  return m[1]
    .trim()
    .split(/\s+/)
    .filter((s) => s.length > 0)
    .map((s) => Number(s))
    .filter((n) => Number.isInteger(n) && n >= 0);
}

export class GroupCache {
  private readonly ttlMs: number;
  private readonly entriesMax: number;
  private readonly readStatus: (pid: number) => string;
  private readonly now: () => number;
  private readonly cache = new Map<number, { groups: readonly number[]; at: number; uid: number }>();

  constructor(opts: GroupCacheOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 1000;
    this.entriesMax = opts.entriesMax ?? 4096;
    this.readStatus = opts.readStatus ?? ((pid) => readFileSync(`/proc/${pid}/status`, 'utf8'));
    this.now = opts.now ?? Date.now;
  }

  groups(pid: number, uid: number): readonly number[] {
    if (uid === 0 || pid === 0) return EMPTY;
    const t = this.now();
    const hit = this.cache.get(pid);
    // A pid reused by another user, or a process that called setgroups: both show up within ttl.
    if (hit && hit.uid === uid && t - hit.at < this.ttlMs) return hit.groups;
    let groups: readonly number[] = EMPTY;
    try {
      groups = Object.freeze(parseGroups(this.readStatus(pid)));
    } catch {
      // The thread is gone (or /proc unreadable): no supplementary groups.
    }
    if (this.cache.size >= this.entriesMax) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.delete(pid);
    this.cache.set(pid, { groups, at: t, uid });
    return groups;
  }

  identity(uid: number, gid: number, pid: number): Identity {
    return { uid, gid, groups: this.groups(pid, uid), pid };
  }
}
