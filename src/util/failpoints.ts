import { CrashError } from './errors.ts';

/**
 * Named failpoints on the commit path (bbolt-style). Inert in production: `hit` costs one Map
 * lookup. A test arms a name (optionally after N hits); when it fires, `onCrash` runs (the
 * simulation freezes the store so nothing after this point lands) and CrashError is thrown.
 */
export class Failpoints {
  private armed = new Map<string, number>();
  private crashed = false;
  readonly hits = new Map<string, number>();
  onCrash: ((name: string) => void) | undefined;

  arm(name: string, afterHits = 0): void {
    this.armed.set(name, afterHits);
  }
  disarmAll(): void {
    this.armed.clear();
  }
  get hasCrashed(): boolean {
    return this.crashed;
  }
  hit(name: string): void {
    if (this.crashed) throw new CrashError(name);
    this.hits.set(name, (this.hits.get(name) ?? 0) + 1);
    const left = this.armed.get(name);
    if (left === undefined) return;
    if (left > 0) {
      this.armed.set(name, left - 1);
      return;
    }
    this.crashed = true;
    this.onCrash?.(name);
    throw new CrashError(name);
  }
}

/** The failpoint names the engine hits, in commit order. */
export const FAILPOINTS = [
  'before-data-put',
  'after-data-put',
  'before-commit-seal',
  // A checkpoint after its trees are written into the open commit segment, before it is sealed.
  'before-checkpoint-seal',
  'before-commit-put',
  'after-commit-put',
  'before-head-put',
  // gc and the cleaner (headhunter/gc.ts GC_FAILPOINTS, inode/cleaner.ts CLEANER_FAILPOINTS): the
  // simulation arms these too, so crashes land in the middle of online gc and compaction.
  'gc-before-delete',
  'gc-mid-delete',
  'cleaner-after-move',
  'cleaner-before-commit',
] as const;

/**
 * Failpoints of recovery (armed before a volume is opened, not by the round's crash plan): between
 * the journals of two delta commits while they are replayed.
 */
export const RECOVERY_FAILPOINTS = ['during-replay'] as const;
