/**
 * The long POSIX run (not part of `npm test`): a 1 GiB file compared by sha256 and a readdir of
 * 10,000 entries under concurrent creates, on a real mount of the real engine over a file: store,
 * then unmount and a full fsck (every data record checksummed).
 *
 *   node --import tsx test/posix/long-run.ts [--large-mib 1024] [--keep]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { checkVolume } from '../../src/fsck/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { ensureTools, forceUnmount, fuseUnavailable, startServer, tempDir } from '../support/mount.ts';
import { posixCases } from './cases.ts';

const { values } = parseArgs({ options: { 'large-mib': { type: 'string', default: '1024' }, keep: { type: 'boolean', default: false } } });
const why = fuseUnavailable();
if (why) {
  process.stderr.write(`cannot run: ${why}\n`);
  process.exit(2);
}
process.env['SILT_POSIX_LARGE_MIB'] = values['large-mib'];
await ensureTools();
const tmp = tempDir('silt-posix-long-');
const mnt = path.join(tmp, 'mnt');
const storeUrl = `file:${path.join(tmp, 'store')}`;
const server = await startServer({ mountpoint: mnt, store: storeUrl, mkfs: true });
let failed = 0;
try {
  for (const name of ['large-file-sha256', 'readdir-while-creating']) {
    const fn = posixCases[name]!;
    const dir = path.join(mnt, name);
    fs.mkdirSync(dir);
    const t = Date.now();
    try {
      await fn(dir);
      process.stdout.write(`ok   ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)\n`);
    } catch (e) {
      failed++;
      process.stdout.write(`FAIL ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  await server.unmount();
  const t = Date.now();
  const report = await checkVolume(await openStore(storeUrl), 'default');
  const errors = report.problems.filter((p) => p.severity === 'error');
  process.stdout.write(`fsck ${report.clean ? 'clean' : 'NOT CLEAN'} (${((Date.now() - t) / 1000).toFixed(1)} s, ${report.stats.fileBytes} file bytes)\n`);
  for (const p of errors) process.stdout.write(`  ${p.where}: ${p.message}\n`);
  if (!report.clean) failed++;
} finally {
  await forceUnmount(mnt);
  if (!values.keep) fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
