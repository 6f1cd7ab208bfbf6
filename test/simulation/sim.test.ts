/**
 * Crash-recovery simulation. Each seed runs several rounds of: a random workload over a small
 * namespace under transient store faults -> a crash (at a named engine failpoint, at a random
 * store call, or a power cut between operations) -> reopen on the surviving objects -> fsck clean
 * -> the recovered namespace equals the model at an operation boundary at or after the last
 * acknowledged sync and no later than the crash. The next round continues on the recovered volume
 * (multi-crash). See harness.ts for what exactly is compared.
 *
 *   SILT_SEED=n             replay exactly one seed (every fault and crash point is the same)
 *   SILT_SIM_SEEDS=n        at most n seeds (default 1000), starting at seed 1
 *   SILT_SIM_BUDGET_S=s     stop starting new seeds after s seconds (default 75)
 *   SILT_SIM_SECONDS=s      release mode: fresh random seeds for s seconds
 *   SILT_SIM_LOG=all        print the whole op log on failure, not its tail
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Simulation, crashSimOptions, type SimStats } from './harness.ts';


function summary(seed: number, s: SimStats, ms: number): string {
  const points = Object.entries(s.crashPoints)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
  return `seed ${seed}: ${s.ops} ops, ${s.crashes} crashes [${points}], ${s.syncsAcked} syncs acked, ${s.syncsFailed} failed, ${s.faults} faults, ${ms} ms`;
}

test('crash-recovery simulation', { timeout: 60 * 60_000 }, async () => {
  const one = process.env.SILT_SEED;
  const release = Number(process.env.SILT_SIM_SECONDS ?? 0);
  const maxSeeds = one !== undefined ? 1 : release > 0 ? Infinity : Number(process.env.SILT_SIM_SEEDS ?? 1000);
  const budgetMs = 1000 * (release > 0 ? release : Number(process.env.SILT_SIM_BUDGET_S ?? 75));
  const base = one !== undefined ? Number(one) : release > 0 ? 1_000_000 + (Date.now() % 1_000_000_000) : 1;
  if (release > 0) console.log(`release mode: seeds from ${base} for ${release} s`);
  const total: SimStats = {
    ops: 0,
    crashes: 0,
    restarts: 0,
    syncsAcked: 0,
    syncsFailed: 0,
    eioOps: 0,
    faults: 0,
    crashPoints: {},
    lostOps: 0,
    storeCalls: 0,
    failpointHits: {},
    fileBytesChecked: 0,
    gcDeleted: 0,
    recordsCleaned: 0,
    timeMs: {},
  };
  const start = Date.now();
  let n = 0;
  for (let seed = base; n < maxSeeds && (one !== undefined || Date.now() - start < budgetMs); seed++, n++) {
    const t0 = Date.now();
    const s = await new Simulation({ seed, ...crashSimOptions }).run();
    console.log(summary(seed, s, Date.now() - t0));
    for (const k of ['ops', 'crashes', 'restarts', 'syncsAcked', 'syncsFailed', 'eioOps', 'faults', 'lostOps', 'storeCalls', 'fileBytesChecked', 'gcDeleted', 'recordsCleaned'] as const) {
      total[k] += s[k];
    }
    for (const [k, v] of Object.entries(s.crashPoints)) total.crashPoints[k] = (total.crashPoints[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.timeMs)) total.timeMs[k] = (total.timeMs[k] ?? 0) + v;
  }
  console.log(
    `${n} seeds (${base}..${base + n - 1}): ${total.ops} ops, ${total.crashes} crash points, ${total.restarts} restarts, ` +
      `${total.syncsAcked} syncs acked, ${total.syncsFailed} failed, ${total.faults} faults, ${total.lostOps} unsynced ops rolled back, ` +
      `${total.gcDeleted} objects deleted by online gc, ${total.recordsCleaned} records moved by the cleaner, ${Math.round(total.fileBytesChecked / 1048576)} MiB verified after crashes, ${Date.now() - start} ms\n` +
      `  crash points: ${JSON.stringify(total.crashPoints)}\n  time by phase (ms): ${JSON.stringify(total.timeMs)}`,
  );
  assert.ok(total.crashes >= n * (crashSimOptions.rounds - 1), 'every round should end in a crash');
});
