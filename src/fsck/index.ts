/**
 * fsck: the consistency checker as a library, shared by `silt fsck` and every simulation and crash
 * test. Read-only: it opens the newest valid commit and never writes to the store.
 */
export { checkVolume, type FsckOptions, type FsckProblem, type FsckProgress, type FsckReport, type FsckStats } from './check.ts';
