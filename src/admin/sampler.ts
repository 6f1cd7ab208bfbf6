/**
 * Request rates for the overview charts, sampled in-process from the Prometheus metrics (util
 * metrics) every `intervalMs`, keeping the last `windowMs`. A rate is the counter's increase over
 * one interval divided by its length, so the first sample has no rate yet.
 */
import { metrics } from '../util/index.ts';

/** The series the overview draws, with the unit each is shown in. */
export const SERIES = {
  storeRequestsPerSec: { label: 'store requests/s', unit: '/s' },
  storePutBytesPerSec: { label: 'bytes PUT/s', unit: 'B/s' },
  storeGetBytesPerSec: { label: 'bytes GET/s', unit: 'B/s' },
  opsPerSec: { label: 'file-system ops/s', unit: '/s' },
  commitsPerSec: { label: 'commits/s', unit: '/s' },
  dirtyBytes: { label: 'dirty bytes', unit: 'B' },
} as const;

export type SeriesName = keyof typeof SERIES;

export interface Sample {
  timeMs: number;
  values: Record<SeriesName, number>;
}

interface Totals {
  storeRequests: number;
  storePut: number;
  storeGet: number;
  ops: number;
  commits: number;
}

interface CounterLike {
  get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }>;
}

async function sum(c: CounterLike, label?: [string, string]): Promise<number> {
  let n = 0;
  for (const v of (await c.get()).values) if (!label || v.labels[label[0]] === label[1]) n += v.value;
  return n;
}

async function totals(): Promise<Totals> {
  return {
    storeRequests: await sum(metrics.storeRequests),
    storePut: await sum(metrics.storeBytes, ['direction', 'put']),
    storeGet: await sum(metrics.storeBytes, ['direction', 'get']),
    ops: await sum(metrics.ops),
    commits: await sum(metrics.commits),
  };
}

export interface RateSamplerOptions {
  intervalMs: number;
  windowMs: number;
  /** Bytes held in memory that are not yet durable, now. */
  dirtyBytes: () => number;
  nowMs: () => number;
}

export class RateSampler {
  private readonly samples: Sample[] = [];
  private last: { timeMs: number; t: Totals } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly max: number;

  constructor(private readonly opts: RateSamplerOptions) {
    this.max = Math.max(2, Math.ceil(opts.windowMs / opts.intervalMs));
  }

  start(): void {
    if (this.timer) return;
    const take = (): void => void this.sample().catch(() => {}); // a missed sample is only a gap in a chart
    take();
    this.timer = setInterval(take, this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Take one sample now (the timer calls this; tests may too). */
  async sample(): Promise<void> {
    const now = this.opts.nowMs();
    const t = await totals();
    const prev = this.last;
    this.last = { timeMs: now, t };
    if (!prev || now <= prev.timeMs) return;
    const dt = (now - prev.timeMs) / 1000;
    const rate = (a: number, b: number): number => Math.max(0, (a - b) / dt);
    this.samples.push({
      timeMs: now,
      values: {
        storeRequestsPerSec: rate(t.storeRequests, prev.t.storeRequests),
        storePutBytesPerSec: rate(t.storePut, prev.t.storePut),
        storeGetBytesPerSec: rate(t.storeGet, prev.t.storeGet),
        opsPerSec: rate(t.ops, prev.t.ops),
        commitsPerSec: rate(t.commits, prev.t.commits),
        dirtyBytes: this.opts.dirtyBytes(),
      },
    });
    while (this.samples.length > this.max) this.samples.shift();
  }

  /** The samples in the window, oldest first. */
  history(): readonly Sample[] {
    return this.samples;
  }

  get intervalMs(): number {
    return this.opts.intervalMs;
  }
  get windowMs(): number {
    return this.opts.windowMs;
  }
}
