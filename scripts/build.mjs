#!/usr/bin/env node
// Compile src/ to dist/ (what `silt` runs: no TypeScript transformer at run time, so a faster
// start and a smaller, cheaper server process), then stamp the build with the newest source time
// so bin/silt.mjs can tell a current build from a stale one. Run by `npm ci` (prepare) and
// `npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
rmSync(join(root, 'dist'), { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
let newest = 0;
const walk = (d) => {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
};
walk(join(root, 'src'));
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'BUILD.json'), JSON.stringify({ sourcesNewestMtimeMs: newest, builtAt: new Date().toISOString() }) + '\n');
