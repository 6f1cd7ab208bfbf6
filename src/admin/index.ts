/**
 * admin: the operator's web pages on `silt serve` (docs/ADMIN.md) — overview, jobs (fsck, gc),
 * snapshots and a file browser — each server-rendered HTML with a JSON endpoint behind it, over
 * node:http, with nothing fetched from anywhere else (no CDN, no fonts, inline CSS/JS/SVG).
 *
 * Invariants:
 * - No page, JSON endpoint or download answers without credentials: a session cookie from the
 *   login form (HttpOnly, SameSite=Strict) or HTTP Basic, both checked against the object API's
 *   (user, key) pairs. Only /login answers anonymously.
 * - Every state-changing request (POST, DELETE) also carries the caller's CSRF token, which only an
 *   authenticated GET hands out, and is refused from a foreign Origin.
 * - At most one job of each kind (fsck, gc) runs at a time; a running job's progress is readable
 *   at any moment, and its final report stays readable afterwards (the last 50 jobs, in memory).
 * - Reading pages changes nothing in the volume: browsing and downloads read through the fs
 *   layer as root; extent listings read the extent map under the volume lock. Only jobs and
 *   snapshot create/delete write, through the same library calls as the CLI.
 * - gc started here deletes an object only after it stayed unreferenced for a grace period, so a
 *   read in flight in this server never finds its segment gone.
 * - Every dynamic string in a page is HTML-escaped; scripts and styles carry a per-response CSP nonce.
 */
export { startAdminServer, statusOf, type AdminServer, type AdminServerOptions } from './server.ts';
export type { AdminCredential } from './auth.ts';
export type { Job, JobKind, JobProgress, FsckJobOptions, GcJobOptions, FsckJobReport, GcJobReport } from './jobs.ts';
export type { OverviewView, VolumeStatView, OwnerLeaseView, ServerView, BrowseView, EntryView, ExtentView, SegmentUseView, AttrView, SnapshotView } from './info.ts';
