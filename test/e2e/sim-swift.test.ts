/**
 * The seeded crash simulation against a real Swift cluster (issue 4): the same workload, faults
 * and crash points as test/simulation/sim.test.ts, but the store that survives each crash is a
 * SwiftStore on loopback, so recovery, fsck and the model check run over real HTTP, listing and
 * conditional-create behaviour. Bounded in time; SILT_SEED replays one seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SwiftStore } from '../../src/objstore/index.ts';
import { Simulation, crashSimOptions } from '../simulation/harness.ts';
import { ensureSwift } from '../support/swift.ts';

test('crash-recovery simulation over real Swift (bounded)', { timeout: 15 * 60_000 }, async () => {
  const local = await ensureSwift();
  const budgetMs = Number(process.env['SILT_SWIFT_SIM_SECONDS'] ?? 30) * 1000;
  const seeds = process.env['SILT_SEED'] !== undefined ? [Number(process.env['SILT_SEED'])] : [];
  const t0 = Date.now();
  let runs = 0;
  let crashes = 0;
  let ops = 0;
  for (let i = 0; seeds.length ? i < seeds.length : Date.now() - t0 < budgetMs || runs === 0; i++) {
    const seed = seeds[i] ?? (Date.now() ^ (i * 0x9e3779b1)) >>> 0;
    const container = `silt-sim-${process.pid}-${seed}`;
    const store = await SwiftStore.open({ authUrl: `${local.endpoint}/auth/v1.0`, user: local.user, key: local.key, container });
    console.log(`# swift sim seed ${seed} (replay: SILT_SEED=${seed} node --import tsx --test test/e2e/sim-swift.test.ts)`);
    try {
      const s = await new Simulation({ seed, ...crashSimOptions, rounds: 4, store }).run();
      runs++;
      crashes += s.crashes;
      ops += s.ops;
    } finally {
      await store.close();
    }
  }
  console.log(`# swift sim: ${runs} seeds, ${ops} ops, ${crashes} crashes in ${Date.now() - t0} ms`);
  assert.ok(runs >= 1 && crashes >= 1, 'at least one crash was recovered on Swift');
});
