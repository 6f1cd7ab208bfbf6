import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics, one registry per process, every name prefixed `silt_`. Layers record into
 * the metrics below; `serveMetrics` exposes them at /metrics (`silt mount|serve --metrics ADDR`).
 * Recording is cheap (a label lookup and an add), so it stays on in production.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'silt_' });

/**
 * Volumes whose dirty bytes are read at scrape time (weakly held: a volume nobody closed does not
 * stay alive for the metrics' sake). The read function must not capture the volume.
 */
const dirtySources = new Set<{ ref: WeakRef<object>; read: (o: object) => number }>();

/** Count `owner`'s dirty bytes in silt_dirty_bytes until the returned function is called. */
export function registerDirtySource<T extends object>(owner: T, read: (o: T) => number): () => void {
  const entry = { ref: new WeakRef<object>(owner), read: read as (o: object) => number };
  dirtySources.add(entry);
  return () => void dirtySources.delete(entry);
}

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const metrics = {
  storeRequests: new Counter({
    name: 'silt_store_requests_total',
    help: 'Object-store requests by verb and outcome (ok, or the StoreError kind)',
    labelNames: ['verb', 'outcome'] as const,
    registers: [registry],
  }),
  storeSeconds: new Histogram({
    name: 'silt_store_request_seconds',
    help: 'Object-store request latency by verb',
    labelNames: ['verb'] as const,
    buckets: latencyBuckets,
    registers: [registry],
  }),
  storeBytes: new Counter({
    name: 'silt_store_bytes_total',
    help: 'Bytes sent to (put) and received from (get) the object store',
    labelNames: ['direction'] as const,
    registers: [registry],
  }),
  storeRetries: new Counter({
    name: 'silt_store_retries_total',
    help: 'Object-store requests retried after a retryable failure',
    labelNames: ['verb'] as const,
    registers: [registry],
  }),
  commits: new Counter({ name: 'silt_commits_total', help: 'Durable commits', registers: [registry] }),
  commitFailures: new Counter({ name: 'silt_commit_failures_total', help: 'Commits the store did not take', registers: [registry] }),
  commitSeconds: new Histogram({
    name: 'silt_commit_seconds',
    help: 'Time from sealing a commit to its durable PUT (data segments included)',
    buckets: latencyBuckets,
    registers: [registry],
  }),
  commitBytes: new Counter({ name: 'silt_commit_bytes_total', help: 'Bytes of commit segments PUT', registers: [registry] }),
  dataSegmentBytes: new Counter({ name: 'silt_data_segment_bytes_total', help: 'Bytes of data segments PUT', registers: [registry] }),
  commitLingers: new Counter({ name: 'silt_commit_lingers_total', help: 'Commits that waited for more sync callers to join (group commit)', registers: [registry] }),
  syncWaiters: new Counter({ name: 'silt_syncs_total', help: 'fsync/flush/sync-on-close calls that waited for a commit', registers: [registry] }),
  commitSequence: new Gauge({ name: 'silt_commit_sequence', help: 'Sequence of the newest durable commit', registers: [registry] }),
  commitTimestamp: new Gauge({ name: 'silt_commit_timestamp_seconds', help: 'Unix time of the newest durable commit (age = now - this)', registers: [registry] }),
  dirtyBytes: new Gauge({
    name: 'silt_dirty_bytes',
    help: 'Bytes held in memory that are not yet durable (open and in-flight segments), at scrape time',
    registers: [registry],
    collect() {
      if (dirtySources.size === 0) return;
      let n = 0;
      for (const e of dirtySources) {
        const o = e.ref.deref();
        if (o === undefined) dirtySources.delete(e);
        else n += e.read(o);
      }
      this.set(n);
    },
  }),
  checkpointAge: new Gauge({
    name: 'silt_checkpoint_age_seconds',
    help: 'Seconds since the newest durable commit (checkpoint), at scrape time; absent before the first commit',
    registers: [registry],
    async collect() {
      const t = (await registry.getSingleMetric('silt_commit_timestamp_seconds')?.get())?.values[0]?.value;
      if (t !== undefined && t > 0) this.set(Math.max(0, Date.now() / 1000 - t));
    },
  }),
  readSlabBytes: new Gauge({
    name: 'silt_read_slab_bytes',
    help: 'Memory of the segment reader read-ahead slabs (allocated once, reused; bounded by the cache size)',
    registers: [registry],
  }),
  cacheHits: new Counter({ name: 'silt_cache_hits_total', help: 'Segment reader cache hits', registers: [registry] }),
  cacheMisses: new Counter({ name: 'silt_cache_misses_total', help: 'Segment reader cache misses (ranged GETs)', registers: [registry] }),
  inodeCacheHits: new Counter({ name: 'silt_inode_cache_hits_total', help: 'Inode lookups answered from memory', registers: [registry] }),
  inodeCacheMisses: new Counter({ name: 'silt_inode_cache_misses_total', help: 'Inode lookups that read the inode table', registers: [registry] }),
  cacheHitRatio: new Gauge({
    name: 'silt_cache_hit_ratio',
    help: 'Cache hits / (hits + misses) since start, by cache (segment: the segment reader; inode: the inode cache), at scrape time',
    labelNames: ['cache'] as const,
    registers: [registry],
    async collect() {
      const value = async (name: string): Promise<number> => (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
      for (const [cache, h, m] of [
        ['segment', 'silt_cache_hits_total', 'silt_cache_misses_total'],
        ['inode', 'silt_inode_cache_hits_total', 'silt_inode_cache_misses_total'],
      ] as const) {
        const hits = await value(h);
        const misses = await value(m);
        if (hits + misses > 0) this.set({ cache }, hits / (hits + misses));
      }
    },
  }),
  ops: new Counter({
    name: 'silt_ops_total',
    help: 'File-system operations by front end, operation and outcome (ok or errno)',
    labelNames: ['frontend', 'op', 'outcome'] as const,
    registers: [registry],
  }),
  opSeconds: new Histogram({
    name: 'silt_op_seconds',
    help: 'File-system operation latency by front end and operation',
    labelNames: ['frontend', 'op'] as const,
    buckets: latencyBuckets,
    registers: [registry],
  }),
  gcDeletedObjects: new Counter({ name: 'silt_gc_deleted_objects_total', help: 'Segment objects deleted by gc (counted as each is deleted)', registers: [registry] }),
  gcBytesFreed: new Counter({ name: 'silt_gc_bytes_freed_total', help: 'Bytes freed by gc (counted as each object is deleted)', registers: [registry] }),
  gcObjectsScanned: new Counter({ name: 'silt_gc_objects_scanned_total', help: 'Objects gc listed and examined (counted as it goes)', registers: [registry] }),
  gcPasses: new Counter({ name: 'silt_gc_passes_total', help: 'Completed gc passes (not dry runs)', registers: [registry] }),
  gcLastPassTimestamp: new Gauge({ name: 'silt_gc_last_pass_timestamp_seconds', help: 'Unix time the last gc pass ended', registers: [registry] }),
  gcLastPassSeconds: new Gauge({ name: 'silt_gc_last_pass_seconds', help: 'Duration of the last gc pass', registers: [registry] }),
  cleanerSegmentsCleaned: new Counter({ name: 'silt_cleaner_segments_cleaned_total', help: 'Segments the cleaner emptied (live records moved)', registers: [registry] }),
  cleanerBytesMoved: new Counter({ name: 'silt_cleaner_bytes_moved_total', help: 'Live bytes the cleaner rewrote', registers: [registry] }),
  segmentObjects: new Gauge({ name: 'silt_segment_objects', help: 'Segment objects (commit and data) in the store after the last gc pass', registers: [registry] }),
  liveBytes: new Gauge({ name: 'silt_live_bytes', help: 'Bytes referenced by the newest commit (from the last gc pass)', registers: [registry] }),
  storedBytes: new Gauge({ name: 'silt_stored_bytes', help: 'Bytes of segment objects in the store (from the last gc pass)', registers: [registry] }),
};

/** Count one retry of an object-store request; `what` is the backend's description ("PUT key", "auth"). */
export function countStoreRetry(what: string): void {
  metrics.storeRetries.inc({ verb: (what.split(' ')[0] ?? 'other').toLowerCase() });
}

/** Time an async call into a histogram (seconds) and count its outcome. */
export async function timed<T>(
  frontend: string,
  op: string,
  fn: () => Promise<T>,
  outcomeOf: (err: unknown) => string,
): Promise<T> {
  const end = metrics.opSeconds.startTimer({ frontend, op });
  try {
    const r = await fn();
    metrics.ops.inc({ frontend, op, outcome: 'ok' });
    return r;
  } catch (err) {
    metrics.ops.inc({ frontend, op, outcome: outcomeOf(err) });
    throw err;
  } finally {
    end();
  }
}

/** Serve GET /metrics in the Prometheus text format. Resolves once listening. */
export async function serveMetrics(host: string, port: number): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics lives here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, host, port, 'metrics')));
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const a = server.address();
  const address = typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a);
  return { server, address };
}

/** A listen failure as one line naming the address and the fix; `code` (EADDRINUSE, ...) kept. */
export function listenError(e: NodeJS.ErrnoException, host: string, port: number, what: string): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const why =
    e.code === 'EADDRINUSE'
      ? `the address is in use (EADDRINUSE): stop what listens there, or choose another port`
      : e.code === 'EACCES'
        ? `permission denied (EACCES): ports below 1024 need root; choose a port above 1023`
        : e.code === 'EADDRNOTAVAIL'
          ? `no such local address (EADDRNOTAVAIL): use an address of this machine, or 127.0.0.1`
          : e.message;
  return Object.assign(new Error(`cannot serve ${what} on ${where}: ${why}`, { cause: e }), { code: e.code });
}

/** Parse "HOST:PORT" (or ":PORT", or "[v6]:PORT"); loopback when the host is omitted. */
export function parseListen(spec: string, defaultPort: number): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(spec.trim());
  if (!m) throw new RangeError(`bad address ${JSON.stringify(spec)}: use HOST:PORT`);
  const host = m[1] ?? (m[2] || '127.0.0.1');
  const port = m[3] !== undefined ? Number(m[3]) : defaultPort;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port in ${JSON.stringify(spec)}`);
  return { host, port };
}
