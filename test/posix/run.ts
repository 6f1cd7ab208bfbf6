/**
 * Run the POSIX case table against a directory from the command line:
 *   node --import tsx test/posix/run.ts DIR [case ...]
 * DIR may be a FUSE mount, or a local directory as a reference. Prints one line per case.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { posixCases } from './cases.ts';

const [root, ...only] = process.argv.slice(2);
if (!root) {
  process.stderr.write('usage: run.ts DIR [case ...]\n');
  process.exit(2);
}
let failed = 0;
for (const [name, fn] of Object.entries(posixCases)) {
  if (only.length && !only.includes(name)) continue;
  const dir = path.join(root, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const t = Date.now();
  try {
    await fn(dir);
    process.stdout.write(`ok   ${name} (${Date.now() - t} ms)\n`);
  } catch (e) {
    failed++;
    process.stdout.write(`FAIL ${name} (${Date.now() - t} ms): ${e instanceof Error ? e.message : String(e)}\n`);
  }
}
process.exit(failed ? 1 : 0);
