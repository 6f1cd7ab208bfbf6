/**
 * Crash campaign on real processes and a real FUSE mount (test/reliability/crash-driver.ts):
 * a seeded workload of ordinary syscalls through `silt mount`, kill -9 of the server at seeded
 * moments, stale-mount cleanup, remount, verification against the model (every fsync'd byte
 * present, every operation all-or-nothing where the contract says so), fsck clean after every
 * crash. Bounded for npm test; scripts/crash-campaign.sh runs the long version.
 *
 * SILT_SEED replays a run's operations and kill points (kill timing within an operation is
 * wall-clock); SILT_CRASH_POINTS and SILT_CRASH_SECONDS change its size.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ensureTools, fuseUnavailable } from '../support/mount.ts';
import { runCrashCampaign } from './crash-driver.ts';

const seed = process.env['SILT_SEED'] !== undefined ? Number(process.env['SILT_SEED']) : Math.floor(Math.random() * 2 ** 31);
const crashPoints = Number(process.env['SILT_CRASH_POINTS'] ?? 100);
const seconds = Number(process.env['SILT_CRASH_SECONDS'] ?? 80);
const lanes = Number(process.env['SILT_CRASH_LANES'] ?? 3);

describe('crash campaign: kill -9 of silt mount under a syscall workload', { skip: fuseUnavailable(), timeout: (seconds + 240) * 1000 }, () => {
  test(`${crashPoints} crash points (seed ${seed}): every fsync'd byte survives, operations are all-or-nothing, fsck clean`, async () => {
    await ensureTools();
    console.log(`# crash campaign seed ${seed} (replay: SILT_SEED=${seed})`);
    let report;
    try {
      report = await runCrashCampaign({ seed, crashPoints, seconds, lanes, opsBeforeKillMax: 60, log: (l) => console.log(l) });
    } catch (e) {
      console.log(`# crash campaign FAILED, seed ${seed} (replay: SILT_SEED=${seed})`);
      throw e;
    }
    console.log(`# crash campaign: ${JSON.stringify(report)}`);
    assert.equal(report.bytesLost, 0);
    // A loaded machine gets fewer crash points in the same time; a harness that crashes nothing fails.
    assert.ok(report.crashPoints >= Math.min(crashPoints, 10), `only ${report.crashPoints} crash points in ${seconds} s`);
    assert.ok(report.fsyncsAcknowledged > 0 && report.durableBytesVerified > 0, 'the workload made data durable before crashes');
    assert.ok(report.recoveryCrashes + report.recoveryCrashesAfterMount > 0, 'no crash during recovery');
    assert.ok(report.staleCleanups.fusermount3 > 0 && report.staleCleanups.umount > 0 && report.staleCleanups.server > 0);
  });
});
